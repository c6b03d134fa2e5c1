"""The benchmark's table (Markdown, with ratios and targets) and its chart (time against hosts)."""

from pathlib import Path

MIB = 1024 * 1024


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(r: dict) -> str:
    out = [f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, "
           f"{r['machine']['memory_gib']} GiB, Linux {r['machine']['kernel']}, "
           f"{r['machine']['date']}{' (--quick)' if r['quick'] else ''}; load average (1/5/15 min) "
           f"{r['machine']['load_average_at_start']} at start, "
           f"{r['machine'].get('load_average_at_end')} at end.", ""]
    if "converged" in r:
        c = r["converged"]
        fleet = c["restate-fleet"]["median"]
        out += ["### 1. Converged re-run, 3 hosts, Restate running "
                f"(median of {c['reps']}; restarts: {c['restarts']})", "",
                "| tool | median s | min s | max s | restate-fleet is |", "|---|---|---|---|---|"]
        for peer in ("restate-fleet", "ansible", "pyinfra"):
            p = c[peer]
            ratio = "" if peer == "restate-fleet" else f"{p['median'] / fleet:.1f}x faster"
            out.append(f"| {peer} | {p['median']:.3f} | {p['min']:.3f} | {p['max']:.3f} | {ratio} |")
        out += ["", f"Targets: >= 20x faster than Ansible: "
                f"{_verdict(c['ansible']['median'] / fleet >= 20)} "
                f"({c['ansible']['median'] / fleet:.1f}x); under 0.5 s: "
                f"{_verdict(fleet < 0.5)} ({fleet:.3f} s).", ""]
    if "fleet" in r:
        f = r["fleet"]
        out += [f"### 2. Reaching a fleet of fresh hosts (forks {r['forks']}; seconds)", "",
                "| hosts | lab up | restate-fleet check 1st | 2nd | exit | peak RSS MiB | "
                "agent bytes 2nd | ansible 1st | 2nd | pyinfra 1st | 2nd | Ansible/fleet 2nd | "
                "pyinfra/fleet 2nd |", "|" + "---|" * 13]
        for count, row in f.items():
            fl1, fl2 = row["fleet_first"], row["fleet_second"]
            out.append(
                f"| {count} | {row['lab_up_seconds']:.1f} | {fl1['seconds']:.2f} | "
                f"{fl2['seconds']:.2f} | {fl1['rc']}/{fl2['rc']} | "
                f"{max(fl1['max_rss_kib'], fl2['max_rss_kib']) / 1024:.1f} | "
                f"{fl2['agent_bytes_uploaded']} | {row['ansible_first']['seconds']:.2f} | "
                f"{row['ansible_second']['seconds']:.2f} | {row['pyinfra_first']['seconds']:.2f} | "
                f"{row['pyinfra_second']['seconds']:.2f} | "
                f"{row['ansible_second']['seconds'] / fl2['seconds']:.1f}x | "
                f"{row['pyinfra_second']['seconds'] / fl2['seconds']:.1f}x |")
        if all("hosts_cpu_seconds" in row["fleet_second"] for row in f.values()):
            out += ["", "CPU seconds spent, second run: by the tool on this machine / by all lab "
                    "hosts together (sshd, shells, agent or Python modules), per host:", "",
                    "| hosts | restate-fleet | ansible | pyinfra |", "|---|---|---|---|"]
            for count, row in f.items():
                cells = [f"{row[f'{t}_second']['cpu_seconds']:.2f} / "
                         f"{row[f'{t}_second']['hosts_cpu_seconds']:.2f} "
                         f"({row[f'{t}_second']['hosts_cpu_seconds'] / int(count) * 1000:.0f} ms/host)"
                         for t in ("fleet", "ansible", "pyinfra")]
                out.append(f"| {count} | " + " | ".join(cells) + " |")
        big = f[max(f, key=int)]
        second = big["fleet_second"]["seconds"]
        rss = max(big["fleet_first"]["max_rss_kib"], big["fleet_second"]["max_rss_kib"]) / 1024
        out += ["", f"Targets at {max(f, key=int)} hosts: second run under 3 s: "
                f"{_verdict(second < 3)} ({second:.2f} s); peak memory under 100 MB: "
                f"{_verdict(rss * MIB < 100e6)} ({rss:.1f} MiB).", ""]
    if "scale_out" in r:
        s = r["scale_out"]
        ratio = s["fleet_median"] / s["floor_median"]
        out += [f"### 3. Scale-out 1 -> 3 (median of {len(s['fleet'])})", "",
                "| | median s | runs s |", "|---|---|---|",
                f"| restate-fleet apply | {s['fleet_median']:.2f} | "
                f"{', '.join(f'{x:.2f}' for x in s['fleet'])} |",
                f"| floor (bench/floor-scaleout.sh) | {s['floor_median']:.2f} | "
                f"{', '.join(f'{x:.2f}' for x in s['floor'])} |", "",
                f"Target: within 1.3x of the floor: {_verdict(ratio <= 1.3)} ({ratio:.2f}x).", "",
                "Floor steps (s): " + "; ".join(
                    ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
                    for steps in s["floor_steps"]), ""]
    if "traffic" in r:
        t = r["traffic"]
        out += ["### 5. Scale-out 1 -> 3 under traffic (20 calls/s, idempotency keys)", ""]
        out += _clients_view(t, "by hand (floor script)")
        gap = t["fleet"]["longest_gap_ms"] / 1000
        out += ["", f"Targets: nothing lost or doubled, every timer and workflow done: "
                f"{_verdict(t['fleet']['verified'])}; longest outage no more than one restart "
                f"of the single node (about 3 s): {_verdict(gap <= 3.5)} ({gap:.2f} s).", ""]
    if "rolling" in r:
        t = r["rolling"]
        out += ["### 6. Rolling config change of 3 members, replication 2, under traffic", ""]
        out += _clients_view(t, "by hand (edit, restart, next when Alive)")
        gap = t["fleet"]["longest_gap_ms"] / 1000
        out += ["", f"Targets: nothing lost or doubled, every timer and workflow done: "
                f"{_verdict(t['fleet']['verified'])}; longest outage under 1 s: "
                f"{_verdict(gap < 1.0)} ({gap:.2f} s).", ""]
    if "agent" in r:
        a = r["agent"]
        out += ["### 4. Agent", "",
                f"Stripped release binary: {a['stripped_bytes']} bytes "
                f"({a['stripped_bytes'] / MIB:.2f} MiB); target at most 1.5 MiB: "
                f"{_verdict(a['stripped_bytes'] <= 1.5 * MIB)}."]
        if "fleet" in r:
            uploaded = [row["fleet_second"]["agent_bytes_uploaded"] for row in r["fleet"].values()]
            out.append(f"Bytes uploaded on a second run: {max(uploaded)}; target 0: "
                       f"{_verdict(max(uploaded) == 0)}.")
        out.append("")
    return "\n".join(out)


def _clients_view(t: dict, hand: str) -> list[str]:
    """The driver's report of restate-fleet's run and the hand run, one row each."""
    rows = ["| | operation s | calls | retries | lost | doubled | timers fired | workflows "
            "done | longest stretch without a success s | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for who, label in (("fleet", "restate-fleet apply"), ("hand", hand)):
        x = t[who]
        rows.append(
            f"| {label} | {x['operation_seconds']:.2f} | {x['calls']} | {x['retries']} | "
            f"{x['lost']} | {x['doubled']} | {x['timers']['fired']}/{x['timers']['armed']} | "
            f"{x['workflows']['done']}/{x['workflows']['started']} | "
            f"{x['longest_gap_ms'] / 1000:.2f} | {x['latency_ms']['p50']} | "
            f"{x['latency_ms']['p99']} | {x['latency_ms']['max']} |")
    return rows


def chart(r: dict, path: Path) -> None:
    """Time of the first and second run against the number of hosts, one line per tool and run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(r["fleet"].items(), key=lambda kv: int(kv[0]))
    hosts = [int(k) for k, _ in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for tool, label, color in (("fleet", "restate-fleet check", "tab:blue"),
                               ("ansible", "ansible-playbook (pipelining)", "tab:red"),
                               ("pyinfra", "pyinfra", "tab:green")):
        for run, style in (("first", "--"), ("second", "-")):
            ax.plot(hosts, [row[f"{tool}_{run}"]["seconds"] for _, row in rows], style,
                    marker="o", color=color, label=f"{label}, {run} run")
    ax.set_xlabel("hosts")
    ax.set_ylabel("seconds (wall)")
    ax.set_title(f"Reaching fresh hosts and gathering facts (forks {r['forks']}, 2 cores)")
    ax.set_xticks(hosts)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

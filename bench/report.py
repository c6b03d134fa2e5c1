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
    if "shapes" in r:
        out += _shapes(r["shapes"])
    if "traffic" in r:
        out += _traffic(r["traffic"])
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


def _shapes(shapes: dict) -> list[str]:
    """Case 3: per shape, restate-fleet against the same steps by hand, and where the time goes."""
    out = ["### 3. Growth shapes: restate-fleet against the same steps by hand", "",
           "| shape | restate-fleet s | by hand s | ratio | runs (fleet / hand) |",
           "|---|---|---|---|---|"]
    worst = 0.0
    for row in shapes.values():
        ratio = row["fleet_median"] / row["hand_median"]
        worst = max(worst, ratio)
        runs = (", ".join(f"{x:.1f}" for x in row["fleet"]) + " / "
                + ", ".join(f"{x:.1f}" for x in row["hand"]))
        out.append(f"| {row['title']} | {row['fleet_median']:.2f} | {row['hand_median']:.2f} | "
                   f"{ratio:.2f}x | {runs} |")
    out += ["", f"Target: every shape at or below the hand run (<= 1.0x): {_verdict(worst <= 1.0)} "
            f"(worst {worst:.2f}x).", ""]
    for row in shapes.values():
        fleet = "; ".join(f"{name} {sec:.1f}" for name, sec in row["fleet_steps"])
        hand = "; ".join(f"{name} {sec:.1f}" for name, sec in row["hand_steps"][-1].items())
        out += [f"- {row['title']}: restate-fleet (last run): {fleet}", f"  by hand: {hand}"]
    return out + [""]


def _traffic(traffic: dict) -> list[str]:
    """Case 5: the clients' view of each operation, restate-fleet against the guide by hand."""
    out = ["### 5. Operations under traffic (20 calls/s, idempotency keys)", "",
           "| operation | who | operation s | calls | retries | lost | doubled | timers fired | "
           "workflows done | longest stretch without a success s | p50 ms | p99 ms | max ms |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for key, row in traffic.items():
        for who, label in (("fleet", "restate-fleet"), ("hand", "by hand")):
            if who not in row:
                continue
            x = row[who]
            out.append(
                f"| {row['title']} | {label} | {x['operation_seconds']:.2f} | {x['calls']} | "
                f"{x['retries']} | {x['lost']} | {x['doubled']} | "
                f"{x['timers']['fired']}/{x['timers']['armed']} | "
                f"{x['workflows']['done']}/{x['workflows']['started']} | "
                f"{x['longest_gap_ms'] / 1000:.2f} | {x['latency_ms']['p50']} | "
                f"{x['latency_ms']['p99']} | {x['latency_ms']['max']} |")
        gap = row["fleet"]["longest_gap_ms"] / 1000
        # Growing a single node restarts it once: about 3 s here. A replicated cluster's
        # members hand their partitions over first: under 1 s.
        limit = 3.5 if key.startswith(("grow-1", "upgrade-grow-1")) else 1.0
        verdicts.append(f"{row['title']}: {_verdict(row['fleet']['verified'] and gap < limit)} "
                        f"({gap:.2f} s, target under {limit} s)")
    out += ["", "Targets: nothing lost or doubled, every timer and workflow done, and the "
            "longest outage: " + "; ".join(verdicts) + ".", ""]
    return out


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


def shapes_chart(r: dict, path: Path) -> None:
    """Case 3: restate-fleet and the hand run side by side per shape (medians, with each run)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(r["shapes"].values())
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.38
    for offset, who, label, color in ((-width / 2, "fleet", "restate-fleet apply", "tab:blue"),
                                      (width / 2, "hand", "by hand (same steps)", "tab:gray")):
        xs = [i + offset for i in range(len(rows))]
        ax.bar(xs, [row[f"{who}_median"] for row in rows], width, color=color, label=label)
        for x, row in zip(xs, rows):
            ax.plot([x] * len(row[who]), row[who], "k.", markersize=4)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([textwrap.fill(row["title"], 20) for row in rows], fontsize=7)
    ax.set_ylabel("seconds (wall), median; dots: each run")
    ax.set_title("Growth shapes: restate-fleet against the same steps by hand (2 cores)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""restate-fleet against Ansible and pyinfra on the lab (cases 1, 2 and 4), and against the same
operations done by hand on clusters of every shape (case 3: time; case 5: the clients' view under
live traffic; see shapes.py).

Run through `bash bench/run` (it installs the peers and builds release binaries first). Each case
brings up its own lab, measures every peer in the same run on the same hosts, and takes the lab down.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import peers
import report
import shapes
from lab import ROOT, Lab, env_without_proxies

VENV = ROOT / ".lab" / "bench-venv"
WORK = ROOT / ".lab" / "bench"
RESULTS = ROOT / "bench" / "results"
LOGS = WORK / "logs"  # -vv traces of restate-fleet: large, kept out of git
RUN_TIMEOUT = 600  # seconds: no single measured command may take longer
WORKLOAD = ROOT / "tests" / "workload"
WORKLOAD_MODULES = ROOT / ".lab" / "workload" / "node_modules"


class Tools:
    def __init__(self, bin_dir: Path):
        self.fleet = bin_dir / "restate-fleet"
        self.agent = bin_dir / "restate-fleet-agent"
        self.lab = bin_dir / "restate-lab"
        for path in (self.fleet, self.agent, self.lab):
            if not path.exists():
                sys.exit(f"bench: {path} is missing: cargo build --release --workspace --bins")


def timed(argv, *, cwd=None, env=None, stdin=None, check=True) -> dict:
    """Runs argv under GNU time: wall seconds, peak RSS (KiB, of the largest process), CPU seconds
    (user + system, with its waited-for children), exit code, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        start = time.monotonic()
        out = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", tf.name, *map(str, argv)],
                             cwd=cwd, env=env if env is not None else env_without_proxies(),
                             input=stdin, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        seconds = time.monotonic() - start
        rss, user, system = (tf.read().strip().splitlines() or ["0 0 0"])[-1].split()
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {out.returncode}:\n"
                           f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return {"seconds": seconds, "max_rss_kib": int(rss), "cpu_seconds": float(user) + float(system),
            "rc": out.returncode,
            "stdout": out.stdout, "stderr": out.stderr}


def fleet_argv(tools: Tools, lab: Lab, *args) -> list:
    return [tools.fleet, "-i", lab.inventory, "--known-hosts", lab.known_hosts,
            "--agent", tools.agent, *args]


def restate_pids(lab: Lab) -> dict[str, str]:
    pids = {}
    for name, folder in lab.host_dirs.items():
        pidfile = folder / "var-lib-restate" / "restate-server.pid"
        pids[name] = pidfile.read_text().strip() if pidfile.exists() else None
    return pids


def summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def case_converged(tools: Tools, reps: int) -> dict:
    """1. A converged 3-node cluster: a re-run that must change and restart nothing."""
    print("case 1: converged re-run on 3 hosts", flush=True)
    with Lab(tools.lab, 3, existing=["n1"]) as lab:
        grow = timed(fleet_argv(tools, lab, "apply", "--yes"))
        templates = {name: lab.config_of(name) for name in lab.hosts}
        work = WORK / lab.id
        peers.write_projects(lab, work, templates)
        before = restate_pids(lab)
        runs = {
            "restate-fleet": lambda: timed(fleet_argv(tools, lab, "apply", "--yes")),
            "ansible": lambda: timed(peers.ansible_playbook(work, VENV, "converge.yml", 100),
                                     env=peers.ansible_env(work, VENV)),
            "pyinfra": lambda: timed(peers.pyinfra(work, VENV, "converge.py", 100), cwd=work),
        }
        result = {"grow_seconds": grow["seconds"], "reps": reps}
        for peer, run in runs.items():
            samples = []
            for _ in range(reps):
                r = run()
                samples.append(r["seconds"])
            result[peer] = summary(samples)
            result[peer]["last_output"] = r["stdout"][-1500:]
            print(f"  {peer:<14} median {result[peer]['median']:.3f} s", flush=True)
        if re.search(r"changed=[1-9]", result["ansible"]["last_output"]):
            raise RuntimeError("ansible changed something on a converged lab:\n"
                               + result["ansible"]["last_output"])
        after = restate_pids(lab)
        if before != after:
            raise RuntimeError(f"a converged re-run restarted Restate: {before} -> {after}")
        result["restarts"] = 0
        profile = timed(fleet_argv(tools, lab, "-vv", "apply", "--yes"))
        (LOGS / "converged-apply-vv.log").write_text(profile["stderr"] + profile["stdout"])
    return result


def case_fleet(tools: Tools, sizes: list[int], forks: int) -> dict:
    """2. Reaching a fleet of fresh hosts (sshd, restate-server installed, not running)."""
    result = {}
    for count in sizes:
        print(f"case 2: check on {count} fresh hosts", flush=True)
        with Lab(tools.lab, count) as lab:
            work = WORK / lab.id
            peers.write_projects(lab, work)
            row = {"lab_up_seconds": lab.up_seconds}
            for run in ("first", "second"):
                hosts_cpu = lab.hosts_cpu_seconds()
                r = timed(fleet_argv(tools, lab, "--forks", str(forks), "--output", "json", "check"),
                          check=False)
                hosts_cpu = lab.hosts_cpu_seconds() - hosts_cpu
                try:
                    doc = json.loads(r["stdout"])
                except ValueError:
                    raise RuntimeError(f"check printed no JSON (exit {r['rc']}):\n{r['stderr'][-3000:]}")
                hosts = doc.get("hosts", [])
                row[f"fleet_{run}"] = {
                    "seconds": r["seconds"], "rc": r["rc"], "max_rss_kib": r["max_rss_kib"],
                    "cpu_seconds": r["cpu_seconds"], "hosts_cpu_seconds": hosts_cpu,
                    "hosts": len(hosts),
                    "agent_bytes_uploaded": sum(h.get("agent_bytes_uploaded", 0) for h in hosts),
                }
            peer_runs = {
                "ansible": lambda: timed(peers.ansible_playbook(work, VENV, "facts.yml", forks),
                                         env=peers.ansible_env(work, VENV)),
                "pyinfra": lambda: timed(peers.pyinfra(work, VENV, "facts.py", forks), cwd=work),
            }
            for peer, run_peer in peer_runs.items():
                for run in ("first", "second"):
                    hosts_cpu = lab.hosts_cpu_seconds()
                    r = run_peer()
                    row[f"{peer}_{run}"] = {
                        "seconds": r["seconds"], "max_rss_kib": r["max_rss_kib"],
                        "cpu_seconds": r["cpu_seconds"],
                        "hosts_cpu_seconds": lab.hosts_cpu_seconds() - hosts_cpu,
                    }
            if count == max(sizes):
                profile = timed(fleet_argv(tools, lab, "--forks", str(forks), "-vv", "check"),
                                check=False)
                (LOGS / f"check-{count}-vv.log").write_text(profile["stderr"])
            result[str(count)] = row
            print("  " + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in row.items()
                                   if isinstance(v, dict)), flush=True)
    return result




def fleet_run(tools: Tools, lab: Lab, inventory: Path, *args) -> dict:
    """restate-fleet with `inventory` and `args` (the operation first); fails the benchmark
    when it fails."""
    return timed([tools.fleet, "-i", inventory, "--known-hosts", lab.known_hosts,
                  "--agent", tools.agent, *args])


PROGRESS_STEP = re.compile(r"^\[\s*([0-9.]+)s\] == (.*)$", re.M)


def fleet_steps(stderr: str, total: float) -> list[tuple[str, float]]:
    """restate-fleet's own step lines (`[  3.4s] == n1: ...`) as (step, seconds) pairs."""
    marks = [(float(m[1]), m[2]) for m in PROGRESS_STEP.finditer(stderr)]
    ends = [t for t, _ in marks[1:]] + [total]
    return [(name, end - start) for (start, name), end in zip(marks, ends)]


def prepared(tools: Tools, shape: shapes.Shape):
    """A fresh lab at the shape's starting point, and the operation's inventory."""
    lab = shapes.lab_for(tools.lab, shape)
    try:
        inventory = shapes.prepare(lab, shape, lambda inv, *a: fleet_run(tools, lab, inv, "apply", "--yes", *a))
    except BaseException:
        lab.down()
        raise
    return lab, inventory


def case_shapes(tools: Tools, reps: int, keys: list[str]) -> dict:
    """3. Every growth shape: restate-fleet apply against the same steps by hand (bench/hand),
    each on a fresh lab; medians of `reps`."""
    result = {}
    for shape in (shapes.by_key(k) for k in keys):
        row = {"title": shape.title, "fleet": [], "hand": [], "hand_steps": []}
        for rep in range(reps):
            print(f"case 3: {shape.title}, repetition {rep + 1}/{reps}", flush=True)
            lab, inventory = prepared(tools, shape)
            with lab:
                r = fleet_run(tools, lab, inventory, *shapes.fleet_args(shape))
                row["fleet"].append(r["seconds"])
                row["fleet_steps"] = fleet_steps(r["stderr"], r["seconds"])
            lab, _ = prepared(tools, shape)
            with lab:
                argv, env = shapes.hand_run(lab, shape, gentle=True)
                r = timed(argv, env=env)
                row["hand"].append(r["seconds"])
                row["hand_steps"].append(shapes.steps(r["stdout"]))
            print(f"  restate-fleet {row['fleet'][-1]:.2f} s, by hand {row['hand'][-1]:.2f} s",
                  flush=True)
        row["fleet_median"] = statistics.median(row["fleet"])
        row["hand_median"] = statistics.median(row["hand"])
        result[shape.key] = row
    return result


def case_agent(tools: Tools) -> dict:
    """4. The agent: stripped size (the bytes a first run uploads to each host)."""
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "agent"
        shutil.copy(tools.agent, stripped)
        subprocess.run(["strip", stripped], check=True)
        return {"stripped_bytes": stripped.stat().st_size,
                "release_bytes": tools.agent.stat().st_size}


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    version = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": os.uname().release,
        # The machine may be shared: the load says how much else ran beside the benchmark.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "python": sys.version.split()[0],
        "ansible-core": version([str(VENV / "bin" / "ansible"), "--version"]).split("\n")[0],
        "pyinfra": version([str(VENV / "bin" / "pyinfra"), "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def under_traffic(lab: Lab, action) -> dict:
    """Runs `action` (returns its seconds) while the workload (tests/workload) drives 20 calls/s
    with idempotency keys at every host's ingress; returns the driver's report: calls, retries,
    the longest stretch without a successful call, latencies, and its verdict (nothing lost or
    doubled, every timer fired, every workflow done)."""
    gateway = json.loads((lab.dir / "lab.json").read_text())["gateway"]
    log = open(WORK / f"workload-{lab.id}.log", "w")
    service = subprocess.Popen(["node", WORKLOAD / "service.js", gateway, "9080"],
                               env=os.environ | {"NODE_PATH": str(WORKLOAD_MODULES)},
                               stdout=log, stderr=log)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        body = json.dumps({"uri": f"http://{gateway}:9080"}).encode()
        for _ in range(240):
            try:
                opener.open(urllib.request.Request(
                    f"http://{lab.hosts['n1']}:9070/deployments", data=body,
                    headers={"content-type": "application/json"}), timeout=5)
                break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError("the workload service could not be registered")
        out, stop = WORK / f"traffic-{lab.id}.json", WORK / f"traffic-{lab.id}.stop"
        trace = LOGS / f"traffic-{lab.id}.attempts.jsonl"  # every attempt, for the analysis
        ingress = ",".join(f"http://{a}:8080" for a in lab.hosts.values())
        driver = subprocess.Popen(["node", WORKLOAD / "driver.js", "--ingress", ingress,
                                   "--out", out, "--stop", stop, "--rate", "20", "--timers", "6",
                                   "--timer-ms", "10000", "--jobs", "3", "--trace", trace],
                                  stdout=log, stderr=log)
        time.sleep(2)
        seconds = action()
        time.sleep(2)
        stop.touch()
        driver.wait(timeout=400)
        result = json.loads(out.read_text())
        result["operation_seconds"] = seconds
        return result
    finally:
        service.terminate()
        service.wait()
        log.close()


def case_traffic(tools: Tools, keys: list[str]) -> dict:
    """5. Operations under live traffic: restate-fleet apply against the guide's steps by hand
    (members restart plainly), each on a fresh lab, the clients' view of each."""
    result = {}
    for shape in (shapes.by_key(k) for k in keys):
        result[shape.key] = {"title": shape.title}
        for who in ("fleet",) if shape.tls else ("fleet", "hand"):
            print(f"case 5: {shape.title} under traffic, {who}", flush=True)
            lab, inventory = prepared(tools, shape)
            with lab:
                if who == "fleet":
                    args = shapes.fleet_args(shape)
                    action = lambda: fleet_run(tools, lab, inventory, *args)["seconds"]
                else:
                    argv, env = shapes.hand_run(lab, shape, gentle=False)
                    action = lambda: timed(argv, env=env)["seconds"]
                result[shape.key][who] = under_traffic(lab, action)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 20 hosts only")
    parser.add_argument("--case", type=int, action="append", choices=[1, 2, 3, 4, 5])
    parser.add_argument("--shape", action="append", choices=[s.key for s in shapes.SHAPES],
                        help="the shapes of cases 3 and 5 (default: "
                        f"{', '.join(shapes.GROWTH)} for case 3, "
                        f"{', '.join(shapes.TRAFFIC)} for case 5)")
    parser.add_argument("--forks", type=int, default=100)
    parser.add_argument("--hosts", help="fleet sizes of case 2, comma-separated (default 20,50,100)")
    args = parser.parse_args()
    tools = Tools(args.bin_dir)
    cases = set(args.case or [1, 2, 3, 4, 5])
    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)

    results = {"quick": args.quick, "forks": args.forks, "machine": machine()}
    results["machine"]["restate-fleet"] = subprocess.run(
        [str(tools.fleet), "--version"], capture_output=True, text=True).stdout.strip()
    if 4 in cases:
        results["agent"] = case_agent(tools)
    if 1 in cases:
        results["converged"] = case_converged(tools, 3 if args.quick else 7)
    if 2 in cases:
        sizes = [int(n) for n in args.hosts.split(",")] if args.hosts else (
            [20] if args.quick else [20, 50, 100])
        results["fleet"] = case_fleet(tools, sizes, args.forks)
    if 3 in cases:
        keys = args.shape or shapes.GROWTH
        results["shapes"] = case_shapes(tools, 1 if args.quick else 3, keys)
    if 5 in cases:
        results["traffic"] = case_traffic(tools, args.shape or shapes.TRAFFIC)

    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    # A partial run (some cases, other sizes) never overwrites the full results.
    name = "results-quick" if args.quick else "results" if not (args.case or args.hosts) else (
        "results-operations" if cases <= {3, 5} and not (args.shape or args.hosts)
        else "results-partial")
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = report.table(results)
    (RESULTS / f"{name}.md").write_text(table)
    print("\n" + table)
    if "fleet" in results:
        report.chart(results, RESULTS / f"{name}-hosts.png")
    if "shapes" in results:
        report.shapes_chart(results, RESULTS / f"{name}-shapes.png")


if __name__ == "__main__":
    main()

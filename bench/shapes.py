"""The operations users run on clusters of every shape, each done twice on fresh labs of the same
shape: by `restate-fleet apply`, and by hand (bench/hand/*.sh: ssh and restatectl, as fast as a
person could type them, ending when restatectl shows the end state). Case 3 times both (issue
18); case 5 runs both under the workload's traffic and reports the clients' view (issue 16).
"""

import re
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lab import ROOT, Lab, env_without_proxies

HAND = ROOT / "bench" / "hand"
NPM = ROOT / ".lab" / "npm" / "node_modules" / "@restatedev"
RESTATECTL = NPM / "restatectl-linux-x64" / "bin" / "restatectl"
SERVER = NPM / "restate-server-linux-x64" / "bin" / "restate-server"
OLD_SERVER = (ROOT / ".lab" / "npm-1.6.2" / "node_modules" / "@restatedev" / "restate-server-linux-x64"
              / "bin" / "restate-server")
STEP_LINE = re.compile(r"^step (\S+) ([0-9.]+)$", re.M)
MEMORY_BEFORE, MEMORY_AFTER = "512 MiB", "384 MiB"


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    hosts: int
    # In the cluster before the operation (grown by restate-fleet, not measured, when more than
    # one; a single node is the lab's provisioned n1).
    members: tuple[str, ...]
    new: tuple[str, ...] = ()
    worker_only: tuple[str, ...] = ()
    # The operation's --replication; a cluster of several members starts with replication 2.
    replication: int | None = None
    # The members run restate-server 1.6.2 and the operation upgrades them (first, for a growth).
    upgrade: bool = False
    # A rolling change of rocksdb-total-memory-size on every member.
    rolling: bool = False
    # `restate-fleet restart`: every member restarted as it is (by hand: a plain restart each).
    restart: bool = False
    # Nothing to change: restate-fleet's converged re-run, and by hand the clients alone for
    # IDLE_SECONDS, the noise floor of case 5's figures.
    idle: bool = False
    # Fabric TLS (issue 35): the mode the members are at before (None: no [cluster.tls]) and
    # the one the operation moves them to, with a CA restate-fleet manages. restate-fleet only:
    # no tool or guide does this rollout, so there is no hand run to compare with.
    tls: tuple[str | None, str] | None = None


def _names(count: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, count + 1))


SHAPES = [
    Shape("grow-1-3", "grow 1 -> 3", 3, ("n1",), ("n2", "n3")),
    Shape("grow-1-3-r2", "grow 1 -> 3, replication 2", 3, ("n1",), ("n2", "n3"), replication=2),
    Shape("grow-1-4", "grow 1 -> 4, n4 worker-only, replication 2", 4, ("n1",),
          ("n2", "n3", "n4"), worker_only=("n4",), replication=2),
    Shape("grow-3-5", "grow 3 -> 5, replication 2", 5, _names(3), ("n4", "n5"), replication=2),
    Shape("upgrade-grow-1-3", "upgrade 1.6.2 -> 1.7.12, then grow 1 -> 3", 3, ("n1",),
          ("n2", "n3"), upgrade=True),
    Shape("rolling-5", "rolling config change of 5 members, replication 2", 5, _names(5),
          replication=2, rolling=True),
    Shape("rolling-upgrade-3", "rolling upgrade 1.6.2 -> 1.7.12 of 3 members, replication 2", 3,
          _names(3), replication=2, upgrade=True, rolling=True),
    Shape("restart-3", "rolling restart of 3 members, replication 2", 3, _names(3),
          replication=2, rolling=True, restart=True),
    Shape("idle-5", "no change on 5 members, replication 2 (by hand: 19 s of traffic alone)", 5,
          _names(5), replication=2, idle=True),
    Shape("tls-allow", "fabric TLS off -> allow, 3 members, replication 2", 3, _names(3),
          replication=2, tls=(None, "allow")),
    Shape("tls-prefer", "fabric TLS allow -> prefer, 3 members, replication 2", 3, _names(3),
          replication=2, tls=("allow", "prefer")),
    Shape("tls-require", "fabric TLS prefer -> require, 3 members, replication 2", 3, _names(3),
          replication=2, tls=("prefer", "require")),
]
# The three mode steps of one rollout, each measured on its own.
TLS = ["tls-allow", "tls-prefer", "tls-require"]
# As long as restate-fleet's live change of rolling-5 takes under traffic (docs/benchmarks.md 5c).
IDLE_SECONDS = 19
# Case 3 by default: the shapes of issue 18 (rolling-upgrade-3 on request: its upload of the
# 216 MiB binary dominates). Case 5: the operations of issue 16.
GROWTH = ["grow-1-3", "grow-1-4", "grow-3-5", "upgrade-grow-1-3", "rolling-5"]
TRAFFIC = ["grow-1-3", "upgrade-grow-1-3", "grow-3-5", "rolling-5", "rolling-upgrade-3"]


def by_key(key: str) -> Shape:
    return next(s for s in SHAPES if s.key == key)


def lab_for(tool: Path, shape: Shape) -> Lab:
    return Lab(tool, shape.hosts, existing=["n1"],
               old_server=list(shape.members) if shape.upgrade else [])


def _with_server(text: str, path: Path, version: str) -> str:
    return text.replace("[cluster]\n", f'[cluster]\nrestate-server = {{ path = "{path}", '
                        f'version = "{version}" }}\n', 1)


def _with_tls(text: str, lab: Lab, mode: str) -> str:
    return text.replace("[cluster.snapshots]", f'[cluster.tls]\nca = "managed"\n'
                        f'ca-dir = "{lab.dir / "fleet-ca"}"\nmode = "{mode}"\n\n'
                        "[cluster.snapshots]", 1)


def inventory_text(lab: Lab, shape: Shape) -> str:
    """The lab's inventory for the end state of `shape`."""
    text = lab.inventory.read_text()
    if shape.tls:
        text = _with_tls(text, lab, shape.tls[1])
    if shape.upgrade:
        text = _with_server(text, SERVER, "1.7.12")
    for host in shape.worker_only:
        text = re.sub(rf'(\[hosts\.{host}\]\naddress = "[^"]*"\n)',
                      r'\1roles = ["worker", "http-ingress"]\n', text)
    if shape.rolling and not (shape.upgrade or shape.restart):
        text = text.replace(MEMORY_BEFORE, MEMORY_AFTER)
    return text


def prepare(lab: Lab, shape: Shape, apply) -> Path:
    """Brings the lab to the shape's starting point (not measured) and returns the inventory
    the operation runs with. `apply(inventory, *args)` runs restate-fleet apply."""
    target = lab.dir / f"{shape.key}.toml"
    text = inventory_text(lab, shape)
    target.write_text(text)
    if len(shape.members) > 1:
        start = lab.inventory.read_text()
        first_new = f"\n[hosts.{shape.new[0]}]" if shape.new else None
        if first_new:
            start = start[:start.index(first_new)] + "\n"
        if shape.upgrade:
            start = _with_server(start, OLD_SERVER, "1.6.2")
        before = lab.dir / f"{shape.key}-before.toml"
        before.write_text(start)
        apply(before, "--replication", "2")
        wait_settled(lab, 2)
    if shape.tls and shape.tls[0]:
        at = lab.dir / f"{shape.key}-at-{shape.tls[0]}.toml"
        at.write_text(_with_tls(lab.inventory.read_text(), lab, shape.tls[0]))
        apply(at)
        wait_settled(lab, 2)
    return target


def wait_settled(lab: Lab, copies: int, timeout: float = 120.0) -> None:
    """Waits until every partition runs on `copies` nodes with a leader and every log's tail is
    replicated to as many. Restate places the copies seconds after replication is raised; an
    operation started before that would be timed with the placement."""
    url = f"http://{lab.hosts['n1']}:5122"
    tls: dict[str, str] = {}
    ca = lab.dir / "fleet-ca"
    if (ca / "restate-fleet.pem").exists():
        # From prefer on, restatectl follows the nodes' https:// addresses.
        url = url.replace("http://", "https://")
        tls = {"RESTATECTL_TLS_CA": str(ca / "ca.pem"),
               "RESTATECTL_TLS_CERT": str(ca / "restate-fleet.pem"),
               "RESTATECTL_TLS_KEY": str(ca / "restate-fleet.key")}

    def rows(*args: str) -> list[str]:
        out = subprocess.run([str(RESTATECTL), "--address", url, *args], capture_output=True,
                             text=True, env=env_without_proxies() | {"NO_COLOR": "1"} | tls,
                             timeout=30)
        return [line for line in out.stdout.splitlines() if re.match(r"^\s*\d+\s", line)]

    deadline = time.monotonic() + timeout
    while True:
        processors: dict[str, list[str]] = {}
        for line in rows("partitions", "list"):
            cols = line.split()
            processors.setdefault(cols[0], []).append(cols[2])
        tails = [re.search(r"\{node: (\d+)\}", line) for line in rows("logs", "list")]
        placed = (len(processors) > 0
                  and all(len(m) >= copies and "Leader" in m for m in processors.values()))
        replicated = len(tails) > 0 and all(t and int(t[1]) >= copies for t in tails)
        if placed and replicated:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"lab {lab.id}: partitions or logs not at {copies} copies after "
                               f"{timeout:.0f} s")
        time.sleep(0.5)


def fleet_args(shape: Shape) -> list[str]:
    """What follows `restate-fleet -i INVENTORY`: the operation and its flags."""
    if shape.restart:
        return ["restart", "--yes"]
    replication = shape.replication or (2 if len(shape.members) > 1 else None)
    return ["apply", "--yes"] + (["--replication", str(replication)] if replication else [])


def hand_run(lab: Lab, shape: Shape, gentle: bool) -> tuple[list[str], dict]:
    """The hand script of `shape` and its environment. `gentle`: a member's partition leaders
    and log sequencers move away before its restart, as restate-fleet does (case 3 compares the
    same steps); without it members restart plainly, as the guide has them (case 5)."""
    if shape.idle:
        return ["sleep", str(IDLE_SECONDS)], env_without_proxies()
    inv = tomllib.loads(lab.inventory.read_text())
    snapshots = "\n".join(["[worker.snapshots]"] + [
        f'{k} = {_toml(v)}' for k, v in inv["cluster"]["snapshots"].items()])
    env = env_without_proxies() | {
        "LAB_DIR": str(lab.dir), "RESTATECTL": str(RESTATECTL),
        "HOSTS": " ".join(f"{n}={a}" for n, a in lab.hosts.items()),
        "MEMBERS": " ".join(shape.members), "GENTLE": "1" if gentle else "0",
    }
    if shape.upgrade:
        env["UPGRADE"] = str(SERVER)
    if shape.rolling:
        env["SERVERS"] = str(len(shape.members))
        if shape.restart:
            env["RESTART_ONLY"] = "1"
        elif not shape.upgrade:
            env |= {"FROM": MEMORY_BEFORE, "TO": MEMORY_AFTER}
        return ["bash", str(HAND / "rolling.sh")], env
    env |= {"CLUSTER": inv["cluster"]["name"], "SNAPSHOTS": snapshots,
            "NEW": " ".join(shape.new), "WORKER_ONLY": " ".join(shape.worker_only)}
    if shape.replication and len(shape.members) == 1:
        env["REPLICATION"] = str(shape.replication)
    return ["bash", str(HAND / "grow.sh")], env


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def steps(stdout: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in STEP_LINE.finditer(stdout)}

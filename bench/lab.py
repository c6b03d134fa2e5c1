"""Labs for the benchmark: brought up with `restate-lab up`, always taken down again.

Every lab this process brings up is recorded, and taken down on exit, on SIGINT/SIGTERM and when the
`with` block ends, so a failed or interrupted benchmark leaves no namespaces or servers behind.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_UP: dict[str, Path] = {}  # lab id -> restate-lab binary
# Installed dependencies come from this checkout's .lab/, whichever checkout the binary was built
# from; running labs keep their files machine-wide (see tests/src/paths.rs).
_ENV = {**os.environ, "RESTATE_LAB_ROOT": str(ROOT)}
LABS = Path(os.environ.get("RESTATE_LAB_STATE", "/var/lib/restate-lab")) / "labs"


def _down_all() -> None:
    for lab_id, tool in list(_UP.items()):
        subprocess.run([str(tool), "down", lab_id], env=_ENV, stdout=subprocess.DEVNULL,
                       check=False)
        _UP.pop(lab_id, None)


def _on_signal(signum, _frame) -> None:
    _down_all()
    sys.exit(128 + signum)


atexit.register(_down_all)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGTERM, _on_signal)


def _adopt_new_lab(labs: Path, before: set[str], tool: Path) -> None:
    """Records the lab `up` made, even a half-built one (it outlives its process). Other people's
    labs may appear meanwhile: only a single new lab made by `restate-lab up` is taken as ours."""
    new = []
    for lab_id in (set(os.listdir(labs)) - before) if labs.exists() else ():
        try:
            state = json.loads((labs / lab_id / "lab.json").read_text())
        except (OSError, ValueError):
            continue
        if state.get("owner_pid") is None:
            new.append(lab_id)
    if len(new) == 1:
        _UP[new[0]] = tool
    elif new:
        print(f"bench: several new labs appeared ({', '.join(new)}); take down yours with "
              "restate-lab down ID", file=sys.stderr)


class Lab:
    """One lab: its id, folder, hosts (name -> address) and the client files restate-lab wrote."""

    def __init__(self, tool: Path, count: int, existing: list[str] = (),
                 old_server: list[str] = ()):
        self.tool = tool
        argv = [str(tool), "up", str(count)]
        if existing:
            argv += ["--existing", ",".join(existing)]
        if old_server:
            argv += ["--old-server", ",".join(old_server)]
        labs = LABS
        before = set(os.listdir(labs)) if labs.exists() else set()
        start = time.monotonic()
        try:
            out = subprocess.run(argv, env=_ENV, capture_output=True, text=True, timeout=900)
        finally:
            _adopt_new_lab(labs, before, tool)
        self.up_seconds = time.monotonic() - start
        first = out.stdout.split("\n", 1)[0].split()
        if out.returncode != 0 or len(first) < 2 or first[0] != "lab":
            raise RuntimeError(f"restate-lab up {count} failed:\n{out.stdout}\n{out.stderr}")
        self.id = first[1]
        self.dir = LABS / self.id
        state = json.loads((self.dir / "lab.json").read_text())
        self.hosts = {h["name"]: h["address"] for h in state["hosts"]}
        self.host_dirs = {h["name"]: Path(h["dir"]) for h in state["hosts"]}
        self.namespaces = [h["ns"] for h in state["hosts"]]
        self.inventory = self.dir / "inventory.toml"
        self.known_hosts = self.dir / "known_hosts"
        self.key = self.dir / "id_ed25519"
        self.ssh_config = self.dir / "ssh_config"

    def config_of(self, host: str) -> str:
        """The host's /etc/restate/restate.toml, read through the lab's private folder."""
        return (self.host_dirs[host] / "etc-restate" / "restate.toml").read_text()

    def hosts_cpu_seconds(self) -> float:
        """CPU time spent so far by every process on the lab hosts, ended ones included: a
        process's time adds to its parent's when reaped, and every process on a host descends from
        the host's sshd. Live ones (e.g. sessions Ansible keeps open) count with their own time."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for ns in self.namespaces:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # A live process's own time plus that of the children it reaped; a live child
                # is not yet in its parent's, so nothing counts twice.
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return total / ticks

    def down(self) -> None:
        if self.id in _UP:
            subprocess.run([str(self.tool), "down", self.id], env=_ENV,
                           stdout=subprocess.DEVNULL, check=False)
            _UP.pop(self.id, None)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *_exc) -> None:
        self.down()


def env_without_proxies() -> dict[str, str]:
    """Lab traffic never goes through a proxy."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

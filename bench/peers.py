"""The peers: Ansible and pyinfra projects written for a lab, doing what restate-fleet does.

Converge: ensure each host's restate.toml has the given content (a template) and restart Restate only
when it changed. Facts: the restate-server version and a stat of the config file on every host.
"""

from pathlib import Path

from lab import Lab

CONFIG = "/etc/restate/restate.toml"
SERVICE = "/usr/local/bin/restate-service"
SERVER = "/usr/local/bin/restate-server"

ANSIBLE_CONVERGE = f"""\
- hosts: lab
  gather_facts: false
  tasks:
    - name: restate.toml
      ansible.builtin.template:
        src: "templates/{{{{ inventory_hostname }}}}.toml.j2"
        dest: {CONFIG}
      notify: restart restate
  handlers:
    - name: restart restate
      ansible.builtin.command: {SERVICE} restart
"""

ANSIBLE_FACTS = f"""\
- hosts: lab
  gather_facts: false
  tasks:
    - name: restate-server version
      ansible.builtin.command: {SERVER} --version
      register: version
      changed_when: false
    - name: config file
      ansible.builtin.stat:
        path: {CONFIG}
      register: config
"""

PYINFRA_CONVERGE = f"""\
from pyinfra import host
from pyinfra.operations import files, server

config = files.template(
    name="restate.toml", src=f"templates/{{host.name}}.toml.j2", dest="{CONFIG}"
)
server.shell(name="restart restate", commands=["{SERVICE} restart"], _if=config.did_change)
"""

PYINFRA_FACTS = f"""\
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command

host.get_fact(Command, command="{SERVER} --version")
host.get_fact(File, path="{CONFIG}")
"""


def write_projects(lab: Lab, work: Path, templates: dict[str, str] | None = None) -> None:
    """Writes the Ansible and pyinfra projects for `lab` into `work` (templates: host -> content)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "ansible-home").mkdir(exist_ok=True)
    lines = ["[lab]"] + [f"{name} ansible_host={addr}" for name, addr in lab.hosts.items()]
    lines += [
        "[lab:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={lab.key}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={lab.known_hosts} "
        "-o StrictHostKeyChecking=yes'",
        # The interpreter is named so that no discovery round trip is added to Ansible's time.
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    (work / "hosts.ini").write_text("\n".join(lines) + "\n")
    (work / "converge.yml").write_text(ANSIBLE_CONVERGE)
    (work / "facts.yml").write_text(ANSIBLE_FACTS)

    hosts = [
        (name, {
            "ssh_hostname": addr,
            "ssh_user": "root",
            "ssh_key": str(lab.key),
            "ssh_known_hosts_file": str(lab.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        })
        for name, addr in lab.hosts.items()
    ]
    # pyinfra takes (name, data) tuples: Python's own repr writes them.
    (work / "inventory.py").write_text(f"lab = {hosts!r}\n")
    (work / "converge.py").write_text(PYINFRA_CONVERGE)
    (work / "facts.py").write_text(PYINFRA_FACTS)

    if templates:
        (work / "templates").mkdir(exist_ok=True)
        for name, content in templates.items():
            if "{" in content:
                # TOML inline tables could read as Jinja: keep the text verbatim.
                content = "{% raw %}" + content + "{% endraw %}"
            (work / "templates" / f"{name}.toml.j2").write_text(content)


def ansible_env(work: Path, venv: Path) -> dict[str, str]:
    """Ansible's default settings plus pipelining, with its state kept inside `work`."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work / "ansible-home"),
        "ANSIBLE_HOME": str(work / "ansible-home"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "ansible-home" / "cp"),
        "ANSIBLE_NOCOLOR": "1",
        "LANG": "C.UTF-8",
    }


def ansible_playbook(work: Path, venv: Path, playbook: str, forks: int) -> list[str]:
    return [str(venv / "bin" / "ansible-playbook"), "-i", str(work / "hosts.ini"),
            "-f", str(forks), str(work / playbook)]


def pyinfra(work: Path, venv: Path, deploy: str, parallel: int) -> list[str]:
    return [str(venv / "bin" / "pyinfra"), "-y", "--parallel", str(parallel),
            "inventory.py", deploy]

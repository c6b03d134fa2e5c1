//! One lab host: a network namespace with its own sshd, hostname and private `/etc/restate`,
//! `/var/lib/restate`, `/var/lib/restate-fleet`, `/usr/local/bin`, `/tmp` and `/root` (bind mounts in
//! a mount namespace of its own), so that what one host's SSH session writes the others never see.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{cmd, paths, systemd};

/// Directories each host gets a private copy of: (folder name under the host dir, path on the host).
const PRIVATE_DIRS: [(&str, &str); 6] = [
    ("etc-restate", "/etc/restate"),
    ("var-lib-restate", "/var/lib/restate"),
    ("var-lib-restate-fleet", "/var/lib/restate-fleet"),
    ("usr-local-bin", "/usr/local/bin"),
    ("tmp", "/tmp"),
    // A fresh machine's root home: sshd runs every command through root's login shell, which
    // sources ~/.bashrc; this machine's own (pyenv init, ~0.13 CPU-s per command) is no lab host's.
    ("root", "/root"),
];

/// The service script lab hosts use in place of systemd (the inventory's `command` manager).
pub const SERVICE_SCRIPT: &str = "/usr/local/bin/restate-service";
/// Where that script has restate-server write its output (`restate-service.sh`).
pub const SERVICE_LOG: &str = "/var/lib/restate/restate-server.log";

/// What a host looks like when the lab brings it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// restate-server installed, not configured, not running.
    Fresh,
    /// A provisioned single node, running, configured the current way.
    Existing,
    /// A provisioned single node, running, configured the old way: no `log-server` role, the local
    /// loglet pinned, no snapshot repository.
    OldStyle,
    /// sshd only: no restate-server on the machine.
    Bare,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub ns: String,
    pub veth: String,
    pub dir: PathBuf,
    pub kind: Kind,
    /// restate-server is [`paths::OLD_SERVER_VERSION`] (`/usr/local/bin/restate-server` links to it).
    #[serde(default)]
    pub old_server: bool,
    /// systemd runs as the host's PID 1 (see [`crate::systemd`]).
    #[serde(default)]
    pub systemd: bool,
    /// The process whose namespaces are the host's: its sshd, or its systemd (PID 1 inside) as
    /// it first booted ([`Host::ns_pid`] follows reboots).
    pub sshd_pid: u32,
    /// A systemd host's boot loop (the shell that boots it again after a reboot).
    #[serde(default)]
    pub boot_pid: Option<u32>,
    /// The line of the lab's known_hosts file for this host.
    pub known_hosts_line: String,
}

impl Host {
    /// The process whose namespaces are the host's now: a systemd host's current PID 1 (its boot
    /// loop writes it to `pid1` at each boot), else its sshd.
    pub fn ns_pid(&self) -> u32 {
        if !self.systemd {
            return self.sshd_pid;
        }
        fs::read_to_string(self.dir.join("pid1"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(self.sshd_pid)
    }

    pub fn fabric(&self) -> SocketAddr {
        SocketAddr::from((self.address, 5122))
    }

    pub fn advertised_address(&self) -> String {
        format!("http://{}:5122/", self.address)
    }

    /// A path on this host, as seen from the root namespace (for tests to read what the host sees).
    pub fn path(&self, on_host: &str) -> Result<PathBuf> {
        if self.systemd {
            // The whole file system is the host's own: reach it through its PID 1's root.
            let relative = on_host.trim_start_matches('/');
            return Ok(PathBuf::from(format!("/proc/{}/root", self.ns_pid())).join(relative));
        }
        for (folder, mount) in PRIVATE_DIRS {
            if let Ok(rest) = Path::new(on_host).strip_prefix(mount) {
                return Ok(self.dir.join(folder).join(rest));
            }
        }
        bail!("{on_host} is not private to lab host {}", self.name)
    }

    /// Runs a command inside the host (its network, mount and UTS namespaces), as its sshd would.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        let mut command = self.command(argv);
        cmd::checked(&mut command).with_context(|| format!("on lab host {}", self.name))
    }

    pub fn command(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.ns_pid().to_string(), "-n", "-m", "-u"]);
        if self.systemd {
            // Its pid, IPC and cgroup namespaces too, and its root: systemctl talks to PID 1.
            command.args(["-p", "-i", "-C", "-r", "-w"]);
        }
        command.arg("--").args(argv).stdin(Stdio::null());
        command
    }

    /// Starts restate-server through the host's service (script or unit) and waits until it
    /// reports Alive.
    pub fn start_restate(&self, timeout: Duration) -> Result<()> {
        if self.systemd {
            self.exec(&["systemctl", "start", systemd::UNIT])?;
        } else {
            self.exec(&[SERVICE_SCRIPT, "start"])?;
        }
        self.wait_alive(timeout)
    }

    pub fn stop_restate(&self) -> Result<()> {
        if self.systemd {
            return self.exec(&["systemctl", "stop", systemd::UNIT]).map(drop);
        }
        self.exec(&[SERVICE_SCRIPT, "stop"]).map(drop)
    }

    /// The pid (in the machine's namespace) of the host's restate-server, if it runs.
    pub fn restate_pid(&self) -> Option<u32> {
        if self.systemd {
            return systemd::main_pid(self, systemd::UNIT);
        }
        let pidfile = self.path("/var/lib/restate/restate-server.pid").ok()?;
        let pid: u32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains("restate-server")
            .then_some(pid)
    }

    pub fn health(&self) -> Result<String> {
        Ok(crate::http::get(self.fabric(), "/health")?.body)
    }

    pub fn wait_alive(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match self.health() {
                Ok(body) if body.contains("\"Alive\"") => return Ok(()),
                Ok(body) => last = body,
                Err(err) => last = format!("{err:#}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = if self.systemd {
            systemd::journal(self, systemd::UNIT, 15)
        } else {
            self.path("/var/lib/restate/restate-server.log")
                .ok()
                .and_then(|p| fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        bail!(
            "restate-server on lab host {} is not Alive after {timeout:?}: {last}\nlast log lines:\n{}",
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

/// Everything needed to bring a host up.
pub struct Spec<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub old_server: bool,
    pub address: Ipv4Addr,
    pub ns: String,
    pub veth: String,
    pub dir: PathBuf,
    pub authorized_keys: &'a Path,
    /// Boot systemd as the host's PID 1 (see [`crate::systemd`]).
    pub systemd: bool,
    /// restatectl in `/usr/local/bin` beside restate-server.
    pub restatectl: bool,
}

/// Creates the host's folders, its sshd (running inside the namespace) and its service script.
/// Returns the host and the sshd child (kept by the lab so it can be reaped).
pub fn create(spec: Spec<'_>) -> Result<(Host, Child)> {
    if spec.systemd {
        return systemd::create(&spec);
    }
    let dir = &spec.dir;
    for (folder, mount) in PRIVATE_DIRS {
        fs::create_dir_all(dir.join(folder))?;
        // The mount point must exist in the root namespace; an empty folder there is harmless.
        fs::create_dir_all(mount).with_context(|| format!("cannot create mount point {mount}"))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fresh_root_home(&dir.join("root"))?;
    fs::create_dir_all("/run/sshd")?; // sshd's privilege separation directory
    install_binaries(&spec)?;

    let ssh = dir.join("ssh");
    fs::create_dir_all(&ssh)?;
    let host_key = ssh.join("ssh_host_ed25519_key");
    cmd::ssh_keygen(&host_key, spec.name)?;
    let public = fs::read_to_string(ssh.join("ssh_host_ed25519_key.pub"))?;
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    let known_hosts_line = format!("{} {}", spec.address, key.join(" "));

    let config = ssh.join("sshd_config");
    fs::write(
        &config,
        format!(
            "# sshd of lab host {name}\n\
             ListenAddress {addr}:22\n\
             HostKey {key}\n\
             PidFile none\n\
             AuthorizedKeysFile {auth}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             StrictModes no\n\
             AllowTcpForwarding yes\n\
             MaxStartups 500\n\
             MaxSessions 200\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            name = spec.name,
            addr = spec.address,
            key = host_key.display(),
            auth = spec.authorized_keys.display(),
        ),
    )?;

    let log = fs::File::create(ssh.join("sshd.log"))?;
    // `ip netns exec` and `unshare` exec in place, and so does `sh`'s `exec`: the child's pid is
    // sshd's, which is what the lab records and later ends.
    let mut mounts = String::new();
    // A folder that holds the project (a checkout under /tmp, as CI may use) or the lab's state
    // stays shared: hiding it would hide the binaries and the lab's own files from the host.
    let shared = [paths::project_root(), paths::state_home()];
    for (folder, mount) in PRIVATE_DIRS
        .into_iter()
        .filter(|(_, m)| !shared.iter().any(|dir| dir.starts_with(m)))
    {
        mounts.push_str(&format!("mount --bind \"$1/{folder}\" {mount} && "));
    }
    // Each machine its own id, as installed (not cloned) machines have.
    fs::write(dir.join("machine-id"), new_machine_id()?)?;
    mounts.push_str("mount --bind \"$1/machine-id\" /etc/machine-id && ");
    let script = format!("{mounts}hostname \"$2\" && exec /usr/sbin/sshd -D -e -f \"$3\"");
    let child = Command::new("ip")
        .args(["netns", "exec", &spec.ns, "unshare", "--mount", "--uts"])
        .args([
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "lab-host",
        ])
        .arg(dir)
        .arg(spec.name)
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start sshd in the lab host's namespace")?;
    let host = Host {
        name: spec.name.to_string(),
        address: spec.address,
        ns: spec.ns,
        veth: spec.veth,
        dir: spec.dir,
        kind: spec.kind,
        old_server: spec.old_server,
        systemd: false,
        sshd_pid: child.id(),
        boot_pid: None,
        known_hosts_line,
    };
    wait_listening(&host, Duration::from_secs(10))?;
    Ok((host, child))
}

/// A fresh `/etc/machine-id` line: 32 lowercase hex digits.
pub(crate) fn new_machine_id() -> Result<String> {
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    Ok(format!("{}\n", uuid.trim().replace('-', "")))
}

fn install_binaries(spec: &Spec<'_>) -> Result<()> {
    let bin = spec.dir.join("usr-local-bin");
    let script = bin.join("restate-service");
    fs::write(&script, include_str!("restate-service.sh"))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    if spec.kind != Kind::Bare {
        let server = if spec.old_server {
            paths::old_restate_server()?
        } else {
            paths::restate_server()?
        };
        std::os::unix::fs::symlink(server, bin.join("restate-server"))?;
        if spec.restatectl {
            std::os::unix::fs::symlink(paths::restatectl()?, bin.join("restatectl"))?;
        }
    }
    Ok(())
}

/// Debian's skeleton dotfiles for root, as a fresh install has them (empty where base-files is not
/// installed).
pub(crate) fn fresh_root_home(home: &Path) -> Result<()> {
    fs::set_permissions(home, fs::Permissions::from_mode(0o700))?;
    for name in ["bashrc", "profile"] {
        let skeleton = Path::new("/usr/share/base-files").join(format!("dot.{name}"));
        let text = fs::read(&skeleton).unwrap_or_default();
        fs::write(home.join(format!(".{name}")), text)?;
    }
    Ok(())
}

pub(crate) fn wait_listening(host: &Host, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from((host.address, 22));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = fs::read_to_string(host.dir.join("ssh/sshd.log")).unwrap_or_default();
    bail!(
        "sshd of lab host {} does not listen on {addr} after {timeout:?}: {log}",
        host.name
    )
}

/// The host's restate.toml when the lab makes it an existing node. Comments and layout are the kind
/// an operator writes by hand, so that tests can check they survive.
pub fn existing_config(host: &Host, cluster: &str, old_style: bool) -> String {
    let mut text = format!(
        "# Restate on {name}: hand-written by the operator.\n\
         # Keep these comments: restate-fleet must not lose them.\n\
         cluster-name = \"{cluster}\"\n\
         node-name = \"{name}\"  # never change this once the node has data\n\
         advertised-address = \"{adv}\"\n\
         \n\
         # Small memory budget: the lab runs several nodes on one machine.\n\
         rocksdb-total-memory-size = \"512 MiB\"\n",
        name = host.name,
        adv = host.advertised_address(),
    );
    if old_style {
        text.push_str(
            "roles = [\"worker\", \"admin\", \"metadata-server\", \"http-ingress\"]\n\
             \n\
             [bifrost]\n\
             # Written before the replicated loglet existed.\n\
             default-provider = \"local\"\n",
        );
    }
    text.push_str("\n[admin]\nbind-address = \"0.0.0.0:9070\"\n");
    text
}

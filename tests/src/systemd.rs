//! Lab hosts that boot the machine's own systemd as PID 1, as real fleets run: their own PID,
//! mount, UTS, cgroup and network namespaces, an overlay of `/` whose upper directory is the
//! host's own (so nothing of the machine's `/etc`, `/var`, `/root` or `/home` changes), Debian's
//! `ssh.service` with host keys generated for this host, and a deploy user `admin` with
//! passwordless sudo, as a cloud image has.
//!
//! Each host gets a cgroup of its own in every hierarchy (`/restate-lab/<lab>-<host>`), joined
//! before its cgroup namespace is made: two systemd hosts would otherwise manage the same
//! `system.slice/*.service` cgroups, and stopping a unit on one would kill the other's processes.
//! SIGKILL of PID 1 from outside ends the whole host; teardown then removes its cgroups.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::host::{self, Host};
use crate::{cmd, paths};

/// The deploy user of every systemd host (key login, passwordless sudo).
pub const DEPLOY_USER: &str = "admin";
/// The unit an existing systemd host runs restate-server under.
pub const UNIT: &str = "restate.service";
/// The service user of that unit.
pub const SERVICE_USER: &str = "restate";
/// What the operator's drop-in sets; it must still be in force after any rollout.
pub const DROP_IN_ENVIRONMENT: &str = "RESTATE_LOG_FORMAT=compact";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Units the machine has enabled that a lab host must not run (everything but sshd).
const KEEP_ENABLED: [&str; 1] = ["ssh.service"];

/// The host's cgroup, relative to each hierarchy's root.
pub fn cgroup(ns: &str) -> String {
    format!("restate-lab/{ns}")
}

/// Boots the host: prepares its overlay upper directory, starts systemd in its namespaces and
/// waits until it is running, then adds the deploy user.
pub fn create(spec: &host::Spec<'_>) -> Result<(Host, Child)> {
    let dir = &spec.dir;
    let (upper, work, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    for folder in [&upper, &work, &root] {
        fs::create_dir_all(folder)?;
    }
    prepare_upper(&upper, spec)?;

    let cgroup = cgroup(&spec.ns);
    let log = fs::File::create(dir.join("boot.log"))?;
    // A reboot inside the host (`systemctl reboot`) ends its PID 1 with SIGHUP, as reboot(2) does
    // in a PID namespace: the loop boots it again on the same upper directory, as a machine comes
    // back with its disk. Each boot writes its PID 1 (as the machine sees it) to `pid1`.
    let script = format!(
        r#"join() {{
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h/{cgroup}"
    if [ -f "$h/cpuset.cpus" ]; then
      for f in cpuset.cpus cpuset.mems; do
        cat "$h/$f" > "$h/restate-lab/$f"; cat "$h/$f" > "$h/{cgroup}/$f"
      done
    fi
    echo $$ > "$h/{cgroup}/cgroup.procs"
  done
}}
# This shell leaves the host's cgroups (for the lab's shared parent) once the host runs, so that,
# once the host ends, nothing but reaped processes were ever in them: its own exit status would
# keep them busy.
leave() {{
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] && echo $$ > "$h/restate-lab/cgroup.procs"
  done
}}
while :; do
  set -e
  join
  ip netns exec "$1" unshare --pid --fork --mount --uts --cgroup --propagation private \
    sh -c 'set -e
      read -r pid rest < /proc/self/stat
      echo "$pid" > "$6/pid1.new" && mv "$6/pid1.new" "$6/pid1"
      mount -t overlay overlay -o "lowerdir=/,upperdir=$2,workdir=$3" "$4"
      mount -t proc proc "$4/proc"
      mount --rbind /sys "$4/sys"
      mount --rbind /dev "$4/dev"
      mount -t tmpfs -o mode=755 tmpfs "$4/run"
      mount -t tmpfs -o mode=1777 tmpfs "$4/tmp"
      hostname "$5"
      exec chroot "$4" /lib/systemd/systemd --system --unit=multi-user.target' \
    lab-host "$1" "$2" "$3" "$4" "$5" "$6" &
  leave
  set +e
  wait $!
  status=$?
  # 129: PID 1 ended by SIGHUP, a reboot. Anything else (SIGKILL at teardown) ends the host.
  [ "$status" = 129 ] || exit "$status"
  echo "lab host rebooted"
done"#
    );
    let mut child = Command::new("sh")
        .args(["-c", &script, "lab-systemd"])
        .arg(&spec.ns)
        .arg(&upper)
        .arg(&work)
        .arg(&root)
        .arg(spec.name)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the lab host's systemd")?;
    let booted = wait_for_pid1(&mut child, dir).and_then(|pid1| {
        let host = finish_boot(spec, &upper, pid1, child.id());
        if host.is_err() {
            // Not recorded in the lab yet: end it here, or nothing would; its cgroups can go
            // once every process in them has.
            let _ = Command::new("kill")
                .args(["-KILL", &pid1.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && crate::running(pid1) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        host
    });
    match booted {
        Ok(host) => Ok((host, child)),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            remove_cgroups(&spec.ns);
            Err(err.context(format!(
                "lab host {} did not boot; its boot log: {}",
                spec.name,
                fs::read_to_string(dir.join("boot.log")).unwrap_or_default()
            )))
        }
    }
}

/// The host record once systemd runs, with sshd up and the deploy user added.
fn finish_boot(spec: &host::Spec<'_>, upper: &Path, pid1: u32, boot: u32) -> Result<Host> {
    let public = fs::read_to_string(upper.join("etc/ssh/ssh_host_ed25519_key.pub"))?;
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    let host = Host {
        name: spec.name.to_string(),
        address: spec.address,
        ns: spec.ns.clone(),
        veth: spec.veth.clone(),
        dir: spec.dir.clone(),
        kind: spec.kind,
        old_server: spec.old_server,
        systemd: true,
        sshd_pid: pid1,
        boot_pid: Some(boot),
        known_hosts_line: format!("{} {}", spec.address, key.join(" ")),
    };
    wait_running(&host)?;
    add_deploy_user(&host, spec.authorized_keys)?;
    host::wait_listening(&host, Duration::from_secs(10))?;
    Ok(host)
}

/// Everything the host needs before it boots, written into its overlay's upper directory.
fn prepare_upper(upper: &Path, spec: &host::Spec<'_>) -> Result<()> {
    fs::create_dir_all(upper.join("etc/ssh"))?;
    fs::write(upper.join("etc/hostname"), format!("{}\n", spec.name))?;
    fs::write(upper.join("etc/machine-id"), host::new_machine_id()?)?;
    // This host's own host keys, as a fresh machine generates them on first boot.
    cmd::run("ssh-keygen", ["-A", "-f", &upper.to_string_lossy()])?;
    let units = upper.join("etc/systemd/system");
    fs::create_dir_all(&units)?;
    for unit in enabled_units() {
        if !KEEP_ENABLED.contains(&unit.as_str()) {
            std::os::unix::fs::symlink("/dev/null", units.join(&unit))
                .with_context(|| format!("cannot mask {unit}"))?;
        }
    }
    // root logs in with the lab's key too (the lab's own tools use it), into a fresh home.
    let root_home = upper.join("root");
    fs::create_dir_all(root_home.join(".ssh"))?;
    fs::set_permissions(&root_home, fs::Permissions::from_mode(0o700))?;
    host::fresh_root_home(&root_home)?;
    fs::copy(spec.authorized_keys, root_home.join(".ssh/authorized_keys"))?;
    let bin = upper.join("usr/local/bin");
    fs::create_dir_all(&bin)?;
    if spec.kind != host::Kind::Bare {
        let server = if spec.old_server {
            paths::old_restate_server()?
        } else {
            paths::restate_server()?
        };
        link_or_copy(&server, &bin.join("restate-server"))?;
        if spec.restatectl {
            link_or_copy(&paths::restatectl()?, &bin.join("restatectl"))?;
        }
    }
    Ok(())
}

/// A hard link (the binaries are ~200 MB; the lab's state and the checkout share a filesystem
/// in most setups), else a copy. Either way the host's service user can run it, which a symlink
/// into a checkout under `/root` would not allow.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Units the machine enables through `*.wants` folders (services, timers, sockets).
fn enabled_units() -> Vec<String> {
    let mut units = vec![
        "getty@tty1.service".to_string(),
        "console-getty.service".to_string(),
        "systemd-timesyncd.service".to_string(),
    ];
    for entry in fs::read_dir("/etc/systemd/system")
        .into_iter()
        .flatten()
        .flatten()
    {
        if !entry.file_name().to_string_lossy().ends_with(".wants") {
            continue;
        }
        for unit in fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let name = unit.file_name().to_string_lossy().into_owned();
            let kind_ok = [".service", ".timer", ".socket", ".path"]
                .iter()
                .any(|suffix| name.ends_with(suffix));
            if kind_ok && !units.contains(&name) {
                units.push(name);
            }
        }
    }
    units
}

/// The pid (in the machine's namespace) of the host's systemd: the child of `unshare`.
fn wait_for_pid1(child: &mut Child, dir: &Path) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the lab host's namespace setup ended ({status}): {}",
                fs::read_to_string(dir.join("boot.log")).unwrap_or_default()
            );
        }
        // Somewhere below the child (ip and unshare may fork), once `chroot` has exec'd it.
        if let Some(pid) = descendant_named(child.id(), "systemd") {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "the lab host's systemd did not start within 10 s: {}",
        fs::read_to_string(dir.join("boot.log")).unwrap_or_default()
    )
}

/// The first process below `pid` whose command name is `name`.
fn descendant_named(pid: u32, name: &str) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find_map(|child| {
            let comm = fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.trim() == name {
                Some(child)
            } else {
                descendant_named(child, name)
            }
        })
}

fn wait_running(host: &Host) -> Result<()> {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = host.command(&["systemctl", "is-system-running"]).output();
        if let Ok(out) = out {
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // `degraded`: some unit failed, which a test looks at itself; sshd is what matters.
            if last == "running" || last == "degraded" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let failed = host
        .command(&["systemctl", "--failed", "--no-pager"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    bail!(
        "systemd on lab host {} is not running after {BOOT_TIMEOUT:?} ({last}):\n{failed}",
        host.name
    )
}

fn add_deploy_user(host: &Host, authorized_keys: &Path) -> Result<()> {
    let keys = fs::read_to_string(authorized_keys)?;
    let script = format!(
        "set -e
useradd --create-home --shell /bin/bash --groups sudo {DEPLOY_USER}
echo '{DEPLOY_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
install -d -m 0700 -o {DEPLOY_USER} -g {DEPLOY_USER} /home/{DEPLOY_USER}/.ssh
printf '%s' \"$1\" > /home/{DEPLOY_USER}/.ssh/authorized_keys
chown {DEPLOY_USER}:{DEPLOY_USER} /home/{DEPLOY_USER}/.ssh/authorized_keys
chmod 0600 /home/{DEPLOY_USER}/.ssh/authorized_keys"
    );
    host.exec(&["sh", "-c", &script, "add-user", &keys])
        .map(drop)
}

/// Makes `host` run restate-server under a unit written the way an operator would, with a
/// drop-in that sets an environment variable, enabled and started.
pub fn install_operator_unit(host: &Host) -> Result<()> {
    let unit = format!(
        "# Written by hand by the operator.\n\
         [Unit]\n\
         Description=Restate server\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         User={SERVICE_USER}\n\
         Group={SERVICE_USER}\n\
         WorkingDirectory=/var/lib/restate\n\
         ExecStart=/usr/local/bin/restate-server --config-file /etc/restate/restate.toml\n\
         Restart=on-failure\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    );
    let script = format!(
        "set -e
useradd --system --user-group --no-create-home --home-dir /var/lib/restate --shell /usr/sbin/nologin {SERVICE_USER}
install -d -m 0750 -o {SERVICE_USER} -g {SERVICE_USER} /var/lib/restate
chgrp {SERVICE_USER} /etc/restate/restate.toml
chmod 0640 /etc/restate/restate.toml
printf '%s' \"$1\" > /etc/systemd/system/{UNIT}
mkdir -p /etc/systemd/system/{UNIT}.d
printf '[Service]\\nEnvironment={DROP_IN_ENVIRONMENT}\\n' > /etc/systemd/system/{UNIT}.d/override.conf
systemctl daemon-reload
systemctl enable --now {UNIT}"
    );
    host.exec(&["sh", "-c", &script, "install-unit", &unit])
        .map(drop)
}

/// The pid (in the machine's namespace) of the unit's main process, if it runs.
pub fn main_pid(host: &Host, unit: &str) -> Option<u32> {
    let out = host
        .command(&[
            "systemctl",
            "show",
            "--property",
            "MainPID",
            "--value",
            unit,
        ])
        .output()
        .ok()?;
    let inside: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (inside != 0).then_some(())?;
    machine_pid(host.ns_pid(), inside)
}

/// Maps a pid of the host's pid namespace to the machine's.
fn machine_pid(pid1: u32, inside: u32) -> Option<u32> {
    let namespace = fs::read_link(format!("/proc/{pid1}/ns/pid")).ok()?;
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
        if fs::read_link(entry.path().join("ns/pid")).ok()? != namespace {
            return None;
        }
        let status = fs::read_to_string(entry.path().join("status")).ok()?;
        let nspid = status.lines().find(|l| l.starts_with("NSpid:"))?;
        (nspid.split_whitespace().last()?.parse::<u32>().ok()? == inside).then_some(pid)
    })
}

/// The last lines of the unit's journal on the host.
pub fn journal(host: &Host, unit: &str, lines: usize) -> String {
    host.command(&[
        "journalctl",
        "--no-pager",
        "-u",
        unit,
        "-n",
        &lines.to_string(),
    ])
    .output()
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap_or_default()
}

/// Removes the host's cgroups (bottom up) once its processes are gone, retrying for a few seconds
/// while the last of them are being reaped; says what it could not remove.
pub fn remove_cgroups(ns: &str) {
    let relative = cgroup(ns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut left = Vec::new();
        for hierarchy in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let top = hierarchy.path().join(&relative);
            if top.is_dir() {
                remove_tree(&top, &mut left);
            }
            // The shared parent goes when the last lab host's cgroup has.
            let _ = fs::remove_dir(hierarchy.path().join("restate-lab"));
        }
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "lab teardown: cannot remove cgroups (still busy): {}",
                left.join(", ")
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remove_tree(dir: &Path, left: &mut Vec<String>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path(), left);
        }
    }
    // A cgroup is removed with rmdir, never by deleting its control files.
    if fs::remove_dir(dir).is_err() {
        left.push(dir.display().to_string());
    }
}

//! A lab's record on disk (`/var/lib/restate-lab/labs/<id>/lab.json`), written after every step of bringing it up,
//! so that `restate-lab down` or `gc` can remove a lab from another process, even a half-built one.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::host::Host;
use crate::user::{self, LabUser};
use crate::{cmd, net, paths};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub id: String,
    pub dir: PathBuf,
    pub bridge: String,
    pub gateway: Ipv4Addr,
    pub cluster_name: String,
    /// The process whose lab this is; `None` for labs made by `restate-lab up`, which live until
    /// `restate-lab down`.
    pub owner_pid: Option<u32>,
    pub moto_pid: Option<u32>,
    /// The workload's service (`node service.js`), when a test started it.
    #[serde(default)]
    pub workload_pid: Option<u32>,
    pub hosts: Vec<Host>,
    /// Login users made for this lab's hosts (machine-wide accounts).
    #[serde(default)]
    pub users: Vec<LabUser>,
    /// restatectl is on no host and in no inventory, only on the coordinator's PATH.
    #[serde(default)]
    pub laptop_restatectl: bool,
}

/// A fresh 24-bit lab id: names built from it (bridge, veths, namespaces) must not collide with
/// another lab's, also one that lingers from an earlier run.
pub fn seed() -> u32 {
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = (nanos ^ std::process::id().rotate_left(13)) & 0xff_ffff;
        let id = format!("{seed:06x}");
        if !paths::labs_dir().join(&id).exists()
            && !std::path::Path::new("/sys/class/net")
                .join(format!("rfb{id}"))
                .exists()
        {
            return seed;
        }
    }
}

impl LabState {
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join("lab.json");
        let tmp = self.dir.join("lab.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn restatectl(&self, host: &str, args: &[&str]) -> Result<Output> {
        let host = self
            .hosts
            .iter()
            .find(|h| h.name == host)
            .with_context(|| format!("lab {} has no host {host}", self.id))?;
        let mut command = std::process::Command::new(paths::restatectl()?);
        command
            .args(["--address", &format!("http://{}:5122", host.address)])
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd::checked(&mut command)
    }

    /// Ends every process the lab started (all live inside its namespaces, plus the S3 store), then
    /// removes its links, namespaces, bridge and folder. Never fails: what it cannot remove it says.
    pub fn teardown(&self) {
        // A systemd host ends with its PID 1: SIGKILL from outside takes everything inside along
        // (SIGTERM would only make systemd start its shutdown, or restart what it lost). Its boot
        // loop goes first, so that no reboot brings it back meanwhile.
        let loops: Vec<u32> = self
            .hosts
            .iter()
            .filter_map(|h| h.boot_pid.filter(|p| h.systemd && running(*p)))
            // Only while it still is the lab's shell (`sh -c ... lab-systemd`).
            .filter(|p| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("lab-systemd"))
            })
            .collect();
        signal(&loops, "KILL");
        let inits: Vec<u32> = self
            .hosts
            .iter()
            .filter(|h| h.systemd && running(h.ns_pid()))
            .map(|h| h.ns_pid())
            .collect();
        signal(&inits, "KILL");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && inits.iter().any(|p| running(*p)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut pids: Vec<u32> = self
            .hosts
            .iter()
            .flat_map(|h| net::pids_in(&h.ns))
            .collect();
        // Processes of the root namespace, by pid, only while they still are what the lab started.
        for (pid, what) in [(self.moto_pid, "moto"), (self.workload_pid, "service.js")] {
            if let Some(pid) = pid
                && fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(what))
            {
                pids.push(pid);
            }
        }
        end_processes(&pids);
        for host in self.hosts.iter().filter(|h| h.systemd) {
            crate::systemd::remove_cgroups(&host.ns);
        }
        self.users.iter().for_each(user::remove);
        for host in &self.hosts {
            net::remove_host(&host.ns, &host.veth);
        }
        net::remove_bridge(&self.bridge);
        if std::env::var_os("RESTATE_LAB_KEEP").is_some() {
            eprintln!("lab {}: files kept in {}", self.id, self.dir.display());
        } else if let Err(err) = fs::remove_dir_all(&self.dir) {
            eprintln!("lab teardown: cannot remove {}: {err}", self.dir.display());
        }
    }
}

fn end_processes(pids: &[u32]) {
    signal(pids, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && pids.iter().any(|p| running(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|p| running(*p)).collect();
    signal(&left, "KILL");
}

/// Whether a process runs: it exists and is not a zombie waiting for a parent that is not us.
pub fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn signal(pids: &[u32], name: &str) {
    if pids.is_empty() {
        return;
    }
    let mut args = vec![format!("-{name}")];
    args.extend(pids.iter().map(u32::to_string));
    // `kill` of a process that just exited fails; that is the point, not an error.
    let _ = std::process::Command::new("kill")
        .args(&args)
        .stderr(std::process::Stdio::null())
        .status();
}

/// Every lab recorded on disk.
pub fn list() -> Vec<LabState> {
    let Ok(entries) = fs::read_dir(paths::labs_dir()) else {
        return Vec::new();
    };
    let mut labs: Vec<LabState> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read(e.path().join("lab.json")).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    labs.sort_by(|a, b| a.id.cmp(&b.id));
    labs
}

pub fn load(id: &str) -> Result<LabState> {
    let path = paths::labs_dir().join(id).join("lab.json");
    let bytes = fs::read(&path).with_context(|| {
        format!(
            "no lab {id} ({} missing); `restate-lab list` shows the labs",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))
}

/// Removes the labs whose owning process is gone (a test killed before its Drop ran).
pub fn gc() -> Vec<String> {
    list()
        .into_iter()
        .filter(|lab| {
            lab.owner_pid
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|lab| {
            lab.teardown();
            lab.id
        })
        .collect()
}

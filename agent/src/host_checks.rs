//! The `host_checks` operation: what a host looks like beyond restate-server (its clock, machine
//! id, free space, open-files limit, who holds the ports). Changes nothing; the coordinator
//! decides what each figure means.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use restate_fleet_proto::agent::{
    DEFAULT_WORKING_DIR, FreeSpace, HostChecks, Listener, NodeTarget, OpenFiles, ServiceManager,
};

use crate::setup::System;
use crate::{facts, service};

const MACHINE_ID: &str = "/etc/machine-id";
/// `/proc/net/tcp*`'s state column for a listening socket.
const TCP_LISTEN: &str = "0A";

pub fn gather(node: &NodeTarget, ports: &[u16]) -> HostChecks {
    let timeout = Duration::from_millis(node.service_timeout_ms);
    let checks = HostChecks {
        clock_unix_ms: 0,
        machine_id: fs::read_to_string(MACHINE_ID)
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty()),
        space: free_space(&data_home(node, &System::host())),
        open_files: node.service.as_ref().and_then(|m| open_files(m, timeout)),
        listeners: listeners(ports),
    };
    // Read last, so that the coordinator's round trip brackets it tightly.
    HostChecks {
        clock_unix_ms: now_unix_ms(),
        ..checks
    }
}

fn now_unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Where the node's data is, or where a first start will make it: under the working directory
/// its unit names, else under the one restate-fleet's own unit gets.
fn data_home(node: &NodeTarget, system: &System) -> PathBuf {
    if let Ok(Some(found)) = facts::find_data_dir(node, system) {
        return found;
    }
    match &node.service {
        Some(ServiceManager::Systemd { unit }) => system.unit_working_dir(unit),
        _ => None,
    }
    .or_else(|| node.working_dir.clone())
    .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKING_DIR))
}

/// The filesystem of `dir`, or of its nearest existing parent when it does not exist yet.
fn free_space(dir: &Path) -> Option<FreeSpace> {
    let existing = dir.ancestors().find(|a| a.is_dir())?;
    let path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data that statvfs(3) fills; `path` is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    Some(FreeSpace {
        path: existing.to_path_buf(),
        available_bytes: (stat.f_bavail as u64).saturating_mul(block),
        total_bytes: (stat.f_blocks as u64).saturating_mul(block),
    })
}

/// The limit the service starts with: its unit's, or (command manager) the agent's own, which
/// the commands it runs inherit. `None` for a unit that does not exist yet (restate-fleet writes
/// its own with `LimitNOFILE=65536`).
fn open_files(manager: &ServiceManager, timeout: Duration) -> Option<OpenFiles> {
    match manager {
        ServiceManager::Systemd { unit } => {
            let argv = [
                "systemctl",
                "show",
                "--property=LoadState,LimitNOFILE,LimitNOFILESoft",
                unit.as_str(),
            ]
            .map(String::from);
            let done = service::run(&argv, timeout).ok()?;
            let shown = parse_show(&done.stdout);
            if shown.get("LoadState").map(String::as_str) != Some("loaded") {
                return None;
            }
            Some(OpenFiles {
                soft: limit(shown.get("LimitNOFILESoft")?)?,
                hard: limit(shown.get("LimitNOFILE")?)?,
                source: format!("LimitNOFILE of {unit}"),
            })
        }
        ServiceManager::Command { .. } => {
            // SAFETY: rlimit is plain old data that getrlimit fills.
            let mut own: libc::rlimit = unsafe { std::mem::zeroed() };
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) } != 0 {
                return None;
            }
            Some(OpenFiles {
                soft: own.rlim_cur,
                hard: own.rlim_max,
                source: "the limit the service commands inherit from the agent's sudo session"
                    .to_string(),
            })
        }
    }
}

fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// systemd prints `infinity` for no limit.
fn limit(value: &str) -> Option<u64> {
    match value {
        "infinity" => Some(u64::MAX),
        number => number.parse().ok(),
    }
}

/// Listening TCP sockets on `ports`, each with the process that holds it when one can be found.
fn listeners(ports: &[u16]) -> Vec<Listener> {
    let mut found: Vec<(Listener, String)> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| parse_tcp(&text, ports))
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    let owners = socket_owners();
    for (listener, inode) in &mut found {
        if let Some(pid) = owners.get(inode.as_str()) {
            listener.pid = Some(*pid);
            listener.process = fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|c| c.trim().to_string());
        }
    }
    found.into_iter().map(|(l, _)| l).collect()
}

/// Rows of a `/proc/net/tcp` or `tcp6` table that listen on one of `ports`, with their inode.
fn parse_tcp(text: &str, ports: &[u16]) -> Vec<(Listener, String)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != TCP_LISTEN {
                return None;
            }
            let (address, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            ports.contains(&port).then(|| {
                (
                    Listener {
                        port,
                        address: address_text(address),
                        pid: None,
                        process: None,
                    },
                    inode.to_string(),
                )
            })
        })
        .collect()
}

/// The kernel's hex address (each 32-bit word in host byte order) as text.
fn address_text(hex: &str) -> String {
    let words: Vec<u32> = (0..hex.len() / 8)
        .filter_map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok())
        .collect();
    match words.as_slice() {
        [v4] => std::net::Ipv4Addr::from(v4.to_le_bytes()).to_string(),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, word) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            std::net::Ipv6Addr::from(bytes).to_string()
        }
        _ => hex.to_string(),
    }
}

/// Socket inode -> pid, from every process's open descriptors (the agent runs as root).
fn socket_owners() -> BTreeMap<String, u32> {
    let mut owners = BTreeMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let fds: PathBuf = entry.path().join("fd");
        for fd in fs::read_dir(fds).into_iter().flatten().flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
            {
                owners.entry(inode.to_string()).or_insert(pid);
            }
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2382 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
   3: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4545 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_rows_on_the_asked_ports_only() {
        let found = parse_tcp(TCP, &[9090, 8080]);
        let rows: Vec<(u16, &str, &str)> = found
            .iter()
            .map(|(l, inode)| (l.port, l.address.as_str(), inode.as_str()))
            .collect();
        assert_eq!(
            rows,
            [(9090, "0.0.0.0", "4242"), (8080, "127.0.0.1", "4343")],
            "the connected socket on 9090 and sshd's 22 are not listeners asked for"
        );
        let six = parse_tcp(TCP6, &[9090]);
        assert_eq!(six[0].0.address, "::");
    }

    #[test]
    fn systemd_limits_read_with_infinity() {
        let shown = parse_show("LoadState=loaded\nLimitNOFILE=524288\nLimitNOFILESoft=1024\n");
        assert_eq!(shown["LoadState"], "loaded");
        assert_eq!(limit(&shown["LimitNOFILE"]), Some(524_288));
        assert_eq!(limit("infinity"), Some(u64::MAX));
        assert_eq!(limit("lots"), None);
    }

    #[test]
    fn free_space_of_a_directory_not_made_yet_is_its_parents() {
        let dir = std::env::temp_dir().join("restate-fleet-no-such-dir/deeper");
        let space = free_space(&dir).expect("the temp dir's filesystem");
        assert_eq!(space.path, std::env::temp_dir());
        assert!(space.total_bytes >= space.available_bytes);
    }
}

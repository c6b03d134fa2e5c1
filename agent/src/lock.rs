//! The node lock: one run at a time may change a node.
//!
//! `flock(LOCK_EX | LOCK_NB)` on `.restate-fleet.lock` next to the config. The kernel drops the lock
//! when the holding process exits, however it exits, so a killed coordinator (SSH channel closed,
//! agent gone) never leaves a stale lock. The file's content only says who holds it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use restate_fleet_proto::agent::{AgentError, ErrorKind, LockInfo};

use crate::{clock, files, host};

pub const LOCK_FILE: &str = ".restate-fleet.lock";

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct NodeLock {
    // Never read: holding the open file is what holds the flock.
    _file: File,
    pub info: LockInfo,
}

pub fn lock_path(config: &Path) -> PathBuf {
    match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(LOCK_FILE),
        _ => PathBuf::from(LOCK_FILE),
    }
}

/// Takes the lock of the node whose config is `config`, or says who holds it.
pub fn acquire(config: &Path, holder: Option<&str>) -> Result<NodeLock, AgentError> {
    let path = lock_path(config);
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| files::io_error("create the directory", dir, &e))?;
    }
    // No truncation before the lock is ours: the holder's record must survive for the message.
    // std opens with O_CLOEXEC, so a server started by the agent never inherits the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| files::io_error("open the lock file", &path, &e))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(held_by_other(&mut file, &path));
        }
        return Err(files::io_error("lock", &path, &err));
    }
    let info = LockInfo {
        path: path.clone(),
        pid: std::process::id(),
        since: clock::rfc3339(SystemTime::now()),
        holder: holder
            .map(str::to_string)
            .unwrap_or_else(host::default_holder),
    };
    let record = serde_json::to_string(&info).unwrap_or_default();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(format!("{record}\n").as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| files::io_error("write the lock file", &path, &e))?;
    Ok(NodeLock { _file: file, info })
}

fn held_by_other(file: &mut File, path: &Path) -> AgentError {
    let mut record = String::new();
    let _ = file.read_to_string(&mut record);
    let message = match serde_json::from_str::<LockInfo>(record.trim()) {
        Ok(info) => format!("node is {info}"),
        Err(_) => "node is locked by another process (its lock record is unreadable)".to_string(),
    };
    AgentError::new(ErrorKind::Locked, message)
        .with_path(path)
        .with_hint(
            "another restate-fleet run is changing this node; wait for it to finish (the lock \
             goes away with that process; an agent whose run is gone, a killed coordinator or a \
             lost link, ends by itself within 30 s of its last word from it)",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_told_who_holds_it_and_drop_releases() {
        let dir = std::env::temp_dir().join(format!("rfa-lock-{}", std::process::id()));
        let config = dir.join("etc/restate.toml");
        let first = acquire(&config, Some("alice@laptop")).unwrap();
        assert_eq!(first.info.pid, std::process::id());
        let err = acquire(&config, Some("bob@desk")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Locked);
        assert!(
            err.message
                .contains(&format!("locked by pid {}", std::process::id()))
                && err.message.contains("alice@laptop"),
            "{}",
            err.message
        );
        drop(first);
        let again = acquire(&config, Some("bob@desk")).unwrap();
        assert_eq!(again.info.holder, "bob@desk");
        drop(again);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

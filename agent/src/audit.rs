//! The host's own record of what restate-fleet changed on it: one JSON line per change in
//! `/var/lib/restate-fleet/audit.log` (0600, root), so that an operator logged into a node sees
//! who changed its restate.toml, when, from where and in which run, without the laptop's
//! journal. Best effort: a line that cannot be written is said on stderr, never a failed change.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use restate_fleet_proto::agent::{AUDIT_LOG, Operation, Reply, ServiceAction};
use serde::Serialize;

/// Who asks for the changes of a session: the run and its coordinator, as the lock names them.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub run: Option<String>,
    pub holder: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Line<'a> {
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a str>,
    /// The SSH client's address, when sudo kept `SSH_CLIENT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub change: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<&'a Path>,
    pub restarted: bool,
    pub result: &'static str,
}

/// The line a reply is worth, when it changed something (pure).
pub fn line<'a>(reply: &'a Reply, asker: &'a Asker, config: &Path) -> Option<Line<'a>> {
    let line = |change, keys, backup, restarted, result| {
        stamped(asker, change, keys, backup, restarted, result)
    };
    let file = config.display();
    match reply {
        Reply::Apply(report) if report.preview.changed => Some(line(
            format!("{file} changed"),
            report.preview.changed_keys.clone(),
            report.backup.as_deref(),
            report.restart.is_some(),
            match report.rollback {
                Some(_) => "did not come back: the previous file restored and restarted",
                None => "ok",
            },
        )),
        // Written before it is done (`before`): the reboot may end the agent first.
        Reply::Service(report) if report.action == ServiceAction::Reboot => None,
        Reply::Service(report) => Some(line(
            format!("restate-server {}", report.action),
            Vec::new(),
            None,
            report.action == ServiceAction::Restart,
            if report.healthy() {
                "ok"
            } else {
                "not healthy"
            },
        )),
        Reply::Rollback(report) => Some(line(
            format!("{file} rolled back"),
            Vec::new(),
            report.restored_from.as_deref(),
            true,
            if report.restart.healthy() {
                "ok"
            } else {
                "not healthy"
            },
        )),
        Reply::Retire(report) => Some(line(
            format!(
                "node retired{}",
                report
                    .disabled
                    .as_ref()
                    .map(|u| format!(", {u} disabled"))
                    .unwrap_or_default()
            ),
            Vec::new(),
            None,
            false,
            "ok",
        )),
        _ => None,
    }
}

/// The line a request is worth before it is carried out: a host reboot, which may end the agent
/// (and its session) before any answer (pure).
pub fn before<'a>(op: &Operation, asker: &'a Asker) -> Option<Line<'a>> {
    let Operation::Service {
        action: ServiceAction::Reboot,
        ..
    } = op
    else {
        return None;
    };
    Some(stamped(
        asker,
        "host reboot".to_string(),
        Vec::new(),
        None,
        false,
        "asked",
    ))
}

/// A line of now, by `asker`, from the SSH client sudo kept.
fn stamped<'a>(
    asker: &'a Asker,
    change: String,
    keys: Vec<String>,
    backup: Option<&'a Path>,
    restarted: bool,
    result: &'static str,
) -> Line<'a> {
    Line {
        at: restate_fleet_clock::rfc3339(SystemTime::now()),
        run: asker.run.as_deref(),
        by: asker.holder.as_deref(),
        from: std::env::var("SSH_CLIENT")
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string)),
        change,
        keys,
        backup,
        restarted,
        result,
    }
}

/// Appends `line` to the log at `path`, on disk before it returns.
pub fn append(path: &Path, line: &Line) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        let text = serde_json::to_string(line).unwrap_or_default();
        file.write_all(format!("{text}\n").as_bytes())?;
        file.sync_data()
    };
    if let Err(e) = write() {
        eprintln!(
            "restate-fleet-agent: cannot append to {}: {e}",
            path.display()
        );
    }
}

pub fn default_path() -> PathBuf {
    PathBuf::from(AUDIT_LOG)
}

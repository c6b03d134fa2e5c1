//! Appending to a run's journal: one line per record, synced before the run goes on, so the
//! file is as far as the run got even after a SIGKILL or a power cut.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::Value;

use crate::JournalError;
use crate::record::{Header, Record};

const REDACTED: &str = "<redacted>";

/// A run's journal, open for appending. Shared by the steps of the run (hence the lock).
pub struct Journal {
    path: PathBuf,
    id: String,
    file: Mutex<File>,
    secrets: Vec<String>,
}

/// `2026-12-03T11-01-26.123Z-4242`: sorts like the time it started, unique per process.
pub fn new_run_id(at: SystemTime) -> String {
    format!(
        "{}-{}",
        restate_fleet_clock::file_stamp(at),
        std::process::id()
    )
}

impl Journal {
    /// Creates `dir` (0700: who ran what is nobody else's business) and the run's file in it
    /// (0600), and writes the header. `secrets`: values no line may contain.
    pub fn create(dir: &Path, header: Header, secrets: Vec<String>) -> Result<Self, JournalError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| JournalError::io(dir, "create the journal directory", e))?;
        let path = dir.join(format!("{}.jsonl", header.id));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "create the run's journal", e))?;
        let journal = Journal {
            id: header.id.clone(),
            path,
            file: Mutex::new(file),
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        };
        journal.record(&Record::Started(header))?;
        Ok(journal)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` and syncs it to disk.
    pub fn record(&self, record: &Record) -> Result<(), JournalError> {
        let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
        redact(&mut value, &self.secrets);
        let mut line = value.to_string();
        line.push('\n');
        // A panic elsewhere while holding the lock left a whole line behind at most.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| JournalError::io(&self.path, "append to the run's journal", e))
    }
}

/// Every string in `value` with each secret replaced: at the value level, so that the line
/// stays valid JSON whatever the secret is.
fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => {
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    *text = text.replace(secret.as_str(), REDACTED);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secrets)),
        Value::Object(fields) => fields.values_mut().for_each(|v| redact(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Ending, Outcome};

    pub(crate) fn header(id: &str) -> Header {
        Header {
            id: id.into(),
            command: "apply".into(),
            started: "2026-12-03T11:01:26.123Z".into(),
            user: "alice".into(),
            machine: "laptop".into(),
            inventory: "/home/alice/fleet/inventory.toml".into(),
            inventory_sha256: "ab".repeat(32),
            argv: vec!["restate-fleet".into(), "apply".into(), "--yes".into()],
        }
    }

    #[test]
    fn no_secret_reaches_the_file_and_every_line_parses() {
        let dir = std::env::temp_dir().join(format!("rfj-redact-{}", std::process::id()));
        let secret = "s3cr3t\"with\\quotes";
        let journal =
            Journal::create(&dir, header("r1"), vec![secret.into(), String::new()]).unwrap();
        journal
            .record(&Record::StepEnded {
                index: 1,
                seconds: 0.5,
                changes: vec![format!("n1: key {secret} written")],
                backups: vec![],
                error: Some(format!("record {secret}")),
            })
            .unwrap();
        journal
            .record(&Record::Ended(Ending {
                at: "t".into(),
                outcome: Outcome::Done,
                error: None,
                hosts: vec![],
                cluster_changes: vec![],
                cluster_after: None,
            }))
            .unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("n1: key <redacted> written"), "{text}");
        for line in text.lines() {
            serde_json::from_str::<Record>(line).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(journal.path())), (0o700, 0o600));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

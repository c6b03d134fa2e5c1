//! The run journal: every `apply` and `rollback` leaves a file of JSON lines on the operator's
//! machine (`$XDG_STATE_HOME/restate-fleet/runs/<run id>.jsonl`), appended and synced record by
//! record, so that a run killed at any point leaves a readable story: who ran what, the plan,
//! each step as it started and ended, and how the run ended (no end record: it was killed).
//! [`history`] reads the files back. No secret reaches a file: every line is redacted against the
//! inventory's secret values before it is written.

mod history;
mod record;
mod writer;

use std::path::PathBuf;

pub use history::{Run, RunState, StepLine, StepState, find, list, newest, steps_now};
pub use record::{Ending, Header, HostLine, Outcome, Record};
pub use writer::{Journal, new_run_id};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{path}, line {line}: not a journal record ({source}); the file was not written by restate-fleet, or was edited"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("no run {id} in {dir}; `restate-fleet history` lists the runs there")]
    NotFound { id: String, dir: PathBuf },
}

impl JournalError {
    fn io(path: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        JournalError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
}

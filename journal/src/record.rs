//! What one line of a journal says. The file format is a contract of its own (operators grep
//! it and scripts read it): extend it, never change what a record means.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// Always the first line.
    Started(Header),
    /// The steps the run means to take, as `plan` prints them.
    Plan { steps: Vec<String> },
    /// The cluster as the run found it, in one line.
    ClusterBefore { summary: String },
    StepStarted {
        /// 1-based, as in "step 5 of 8".
        index: usize,
        step: String,
        at: String,
    },
    StepEnded {
        index: usize,
        seconds: f64,
        /// What the step changed, per host (`n1: restate.toml: set ..., restarted`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
        /// The copies of restate.toml kept before it changed (`n1: /etc/restate/...`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        backups: Vec<String>,
        /// Why it failed; `None`: it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Always the last line of a run that was not killed.
    Ended(Ending),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub id: String,
    /// `apply` or `rollback`.
    pub command: String,
    pub started: String,
    /// Who ran it: the local user and machine.
    pub user: String,
    pub machine: String,
    pub inventory: String,
    pub inventory_sha256: String,
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ending {
    pub at: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The recap, host by host.
    pub hosts: Vec<HostLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Finished: the fleet matches the inventory.
    Done,
    /// Stopped before its first change (a refusal, a confirmation declined).
    Refused,
    /// A step failed.
    Failed,
    /// SIGINT or SIGTERM: the step in progress finished, no further one started.
    Interrupted,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostLine {
    pub host: String,
    /// As the recap says it: ok, changed, failed, unreachable, stopped.
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

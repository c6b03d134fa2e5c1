//! The end of a run, per host: ok, changed, unreachable or failed, with what changed; and for the
//! cluster, what changed and how long each step took.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Changed,
    Unreachable,
    Failed,
    /// A member whose restate-server is not running, and the run did not start it.
    Stopped,
}

impl Status {
    /// As the recap prints it.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Unreachable => "unreachable",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecap {
    pub host: String,
    pub status: Status,
    pub changes: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: Step,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recap {
    pub hosts: Vec<HostRecap>,
    pub cluster_changes: Vec<String>,
    pub steps: Vec<StepTiming>,
    /// What the run did less well than it could have, and how to avoid it next time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Recap {
    pub fn new<'a>(hosts: impl Iterator<Item = &'a str>) -> Self {
        Recap {
            hosts: hosts
                .map(|h| HostRecap {
                    host: h.to_string(),
                    status: Status::Ok,
                    changes: Vec::new(),
                    error: None,
                })
                .collect(),
            ..Recap::default()
        }
    }

    fn entry(&mut self, host: &str) -> &mut HostRecap {
        if let Some(index) = self.hosts.iter().position(|h| h.host == host) {
            return &mut self.hosts[index];
        }
        self.hosts.push(HostRecap {
            host: host.to_string(),
            status: Status::Ok,
            changes: Vec::new(),
            error: None,
        });
        let last = self.hosts.len() - 1;
        &mut self.hosts[last]
    }

    pub fn changed(&mut self, host: &str, what: &str) {
        let entry = self.entry(host);
        if entry.status == Status::Ok {
            entry.status = Status::Changed;
        }
        entry.changes.push(what.to_string());
    }

    pub fn failed(&mut self, host: &str, why: &str) {
        let entry = self.entry(host);
        entry.status = Status::Failed;
        entry.error = Some(why.to_string());
    }

    /// Members left as they were found, not running: never `ok`.
    pub fn still_stopped<'a>(&mut self, hosts: impl Iterator<Item = &'a str>) {
        for host in hosts {
            let entry = self.entry(host);
            if entry.status == Status::Ok {
                entry.status = Status::Stopped;
                entry.error = Some("restate-server is not running".to_string());
            }
        }
    }

    pub fn unreachable(&mut self, host: &str, why: &str) {
        let entry = self.entry(host);
        entry.status = Status::Unreachable;
        entry.error = Some(why.to_string());
    }

    pub fn warn(&mut self, what: &str) {
        self.warnings.push(what.to_string());
    }

    pub fn cluster_changed(&mut self, what: &str) {
        self.cluster_changes.push(what.to_string());
    }

    pub fn step_done(&mut self, step: &Step, took: Duration) {
        self.steps.push(StepTiming {
            step: step.clone(),
            seconds: took.as_secs_f64(),
        });
    }

    /// Every change so far as `host: what` (`cluster: what`), for the run's journal.
    pub fn change_lines(&self) -> Vec<String> {
        self.hosts
            .iter()
            .flat_map(|h| h.changes.iter().map(move |c| format!("{}: {c}", h.host)))
            .chain(self.cluster_changes.iter().map(|c| format!("cluster: {c}")))
            .collect()
    }

    /// Also a host that failed after a change (a restart rolled back is two restarts).
    pub fn anything_changed(&self) -> bool {
        !self.cluster_changes.is_empty()
            || self
                .hosts
                .iter()
                .any(|h| h.status == Status::Changed || !h.changes.is_empty())
    }

    /// Hosts to re-run with `--limit`, when some failed or were not reached.
    pub fn retry_limit(&self) -> Option<String> {
        let bad: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| matches!(h.status, Status::Failed | Status::Unreachable))
            .map(|h| h.host.as_str())
            .collect();
        (!bad.is_empty()).then(|| bad.join(","))
    }
}

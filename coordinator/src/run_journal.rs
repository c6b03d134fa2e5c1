//! This machine's record of every `apply` and `rollback` (restate-fleet-journal), from the
//! command's side: where the journals live, who runs what, and the records a run writes as it
//! goes. A journal that cannot be written is warned about once; it never stops a run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use restate_fleet_inventory::Fleet;
use restate_fleet_journal::{Ending, Header, HostLine, Journal, Outcome, Record, Run};

use crate::admin::ClusterView;
use crate::cli::Global;
use crate::progress::Progress;
use crate::rollout::recap::Recap;

/// A run's journal, shared by its steps.
#[derive(Clone)]
pub struct RunJournal {
    journal: Arc<Journal>,
    warned: Arc<AtomicBool>,
}

/// `--journal`, else `$XDG_STATE_HOME/restate-fleet/runs`, else
/// `~/.local/state/restate-fleet/runs`; `None` without any of them.
pub fn dir(global: &Global) -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    global
        .journal
        .clone()
        .or_else(|| env("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("restate-fleet/runs")))
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state/restate-fleet/runs")))
}

impl RunJournal {
    /// Starts the journal of a `command` run; `None`, with a warning, when it cannot be written.
    pub fn start(
        global: &Global,
        fleet: &Fleet,
        command: &str,
        progress: &Progress,
    ) -> Option<RunJournal> {
        let Some(dir) = dir(global) else {
            progress.warn("no journal for this run: set --journal DIR, HOME or XDG_STATE_HOME");
            return None;
        };
        let now = SystemTime::now();
        let (user, machine) = crate::commands::common::who();
        let inventory =
            std::fs::canonicalize(&global.inventory).unwrap_or_else(|_| global.inventory.clone());
        let header = Header {
            id: restate_fleet_journal::new_run_id(now),
            command: command.to_string(),
            started: restate_fleet_clock::rfc3339(now),
            user,
            machine,
            inventory: inventory.display().to_string(),
            inventory_sha256: std::fs::read(&inventory)
                .map(|bytes| crate::ssh::sha256_hex(&bytes))
                .unwrap_or_default(),
            argv: std::env::args().collect(),
        };
        match Journal::create(&dir, header, fleet.secret_values()) {
            Ok(journal) => Some(RunJournal {
                journal: Arc::new(journal),
                warned: Arc::new(AtomicBool::new(false)),
            }),
            Err(e) => {
                progress.warn(&format!("no journal for this run: {e}"));
                None
            }
        }
    }

    pub fn id(&self) -> &str {
        self.journal.id()
    }

    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// After a run that did not succeed: where its story is.
    pub fn point_to(&self) {
        eprintln!(
            "this run is on record: restate-fleet history show {} ({})",
            self.id(),
            self.path().display()
        );
    }

    /// Appends `record`; a failure is said once, and the run goes on.
    pub fn record(&self, record: Record, progress: &Progress) {
        if let Err(e) = self.journal.record(&record)
            && !self.warned.swap(true, Ordering::SeqCst)
        {
            progress.warn(&format!("the run's journal stops here: {e}"));
        }
    }

    pub fn step_started(&self, index: usize, step: String, progress: &Progress) {
        let at = restate_fleet_clock::rfc3339(SystemTime::now());
        self.record(Record::StepStarted { index, step, at }, progress);
    }

    /// The end of step `index`, which began at `started`: what it changed, the backups it kept,
    /// and its error.
    pub fn step_ended(
        &self,
        index: usize,
        started: std::time::Instant,
        changes: Vec<String>,
        backups: Vec<String>,
        error: Option<String>,
        progress: &Progress,
    ) {
        let record = Record::StepEnded {
            index,
            seconds: started.elapsed().as_secs_f64(),
            changes,
            backups,
            error,
        };
        self.record(record, progress);
    }

    /// The end of the run: how it ended and its recap.
    pub fn ended(
        &self,
        outcome: Outcome,
        error: Option<String>,
        recap: &Recap,
        cluster_after: Option<&ClusterView>,
        progress: &Progress,
    ) {
        let ending = Ending {
            at: restate_fleet_clock::rfc3339(SystemTime::now()),
            outcome,
            error,
            hosts: recap
                .hosts
                .iter()
                .map(|h| HostLine {
                    host: h.host.clone(),
                    status: h.status.word().to_string(),
                    changes: h.changes.clone(),
                    error: h.error.clone(),
                })
                .collect(),
            cluster_changes: recap.cluster_changes.clone(),
            cluster_after: cluster_after.map(summary),
        };
        self.record(Record::Ended(ending), progress);
    }
}

/// How a run ended, for its journal: `changed` says whether anything was changed before it
/// stopped (nothing: a refusal).
pub fn outcome(succeeded: bool, interrupted: bool, changed: bool) -> Outcome {
    match (succeeded, interrupted, changed) {
        (true, ..) => Outcome::Done,
        (false, true, _) => Outcome::Interrupted,
        (false, false, true) => Outcome::Failed,
        (false, false, false) => Outcome::Refused,
    }
}

/// The cluster in one line: its nodes with their ids and whether alive, and its replication.
pub fn summary(view: &ClusterView) -> String {
    let nodes: Vec<String> = view
        .nodes
        .iter()
        .map(|n| format!("{} N{}{}", n.name, n.id, if n.alive { "" } else { " dead" }))
        .collect();
    format!(
        "cluster {}: {}; {} partitions, partition replication {}, log replication {}",
        view.cluster_name,
        nodes.join(", "),
        view.config.num_partitions,
        view.config
            .partition_replication
            .as_deref()
            .unwrap_or("unset"),
        view.config.log_replication.as_deref().unwrap_or("unset")
    )
}

/// The last `command` run on this inventory that got to its steps (a refused run between does
/// not hide it), when it did not finish: what the next run says first.
pub fn stopped_before(global: &Global, command: &str) -> Option<Run> {
    runs_of_inventory(global)
        .into_iter()
        .rev()
        .find(|r| r.header.command == command && !r.steps.is_empty())
        .filter(Run::stopped_part_way)
}

/// The newest run on this inventory, of any command.
pub fn latest(global: &Global) -> Option<Run> {
    runs_of_inventory(global).pop()
}

/// How many of the newest runs `apply` and `collect` look at for this inventory's last one.
const RECENT_RUNS: usize = 200;

/// This inventory's runs among the journal's newest, oldest first.
fn runs_of_inventory(global: &Global) -> Vec<Run> {
    let Some(dir) = dir(global) else {
        return Vec::new();
    };
    let inventory = std::fs::canonicalize(&global.inventory)
        .unwrap_or_else(|_| global.inventory.clone())
        .display()
        .to_string();
    let (mut runs, _) = restate_fleet_journal::newest(&dir, RECENT_RUNS);
    runs.retain(|r| r.header.inventory == inventory);
    runs
}

/// What `apply` says of the run that stopped before it, against its own plan (pure).
pub fn stopped_note(run: &Run, plan_now: &[String]) -> String {
    let total = run.planned.len();
    let at = run.stopped_at();
    let (index, step, why) = match at {
        Some(s) => (
            s.index,
            s.step.as_str(),
            // A step's gate may fail after the step itself ended (the last restart's): then the
            // run's own end says why.
            s.error
                .clone()
                .or_else(|| run.ending.as_ref().and_then(|e| e.error.clone()))
                .unwrap_or_else(|| "it was killed in this step (no end record)".to_string()),
        ),
        None => (0, "", "it stopped".to_string()),
    };
    let states = restate_fleet_journal::steps_now(run, plan_now);
    let numbers = |done: bool| -> String {
        let picked: Vec<String> = states
            .iter()
            .enumerate()
            .filter(|(_, (_, d))| *d == done)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if picked.is_empty() {
            "none".to_string()
        } else {
            picked.join(", ")
        }
    };
    format!(
        "the run {} of {} stopped at step {index} of {total} ({step}): {why}; by what the survey sees now, its steps {} are done and {} are still to do; this run is planned from the cluster as it is, never replayed (restate-fleet history show {})",
        run.header.id,
        run.header.started,
        numbers(true),
        numbers(false),
        run.header.id
    )
}

/// The recap's change lines (`host: what`, `cluster: what`) that `after` has beyond `before`.
pub fn changes_since(before: &[String], after: Vec<String>) -> Vec<String> {
    let mut left: Vec<&String> = before.iter().collect();
    after
        .into_iter()
        .filter(|line| match left.iter().position(|b| *b == line) {
            Some(i) => {
                left.swap_remove(i);
                false
            }
            None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use restate_fleet_journal::Record;

    #[test]
    fn outcomes() {
        // (succeeded, interrupted, changed)
        let cases = [
            ((true, false, true), Outcome::Done),
            ((true, false, false), Outcome::Done),
            ((false, true, true), Outcome::Interrupted),
            ((false, false, true), Outcome::Failed),
            ((false, false, false), Outcome::Refused),
        ];
        for ((s, i, c), want) in cases {
            assert_eq!(outcome(s, i, c), want, "{s} {i} {c}");
        }
    }

    #[test]
    fn a_stopped_run_is_named_with_where_it_stopped_and_what_is_left() {
        let header = Header {
            id: "2026-12-03T11-01-26.123Z-42".into(),
            command: "apply".into(),
            started: "2026-12-03T11:01:26.123Z".into(),
            user: "alice".into(),
            machine: "laptop".into(),
            inventory: "/inv.toml".into(),
            inventory_sha256: String::new(),
            argv: vec![],
        };
        let run = Run::from_records(
            vec![
                Record::Started(header),
                Record::Plan {
                    steps: vec!["a".into(), "b".into(), "c".into()],
                },
                Record::StepStarted {
                    index: 1,
                    step: "a".into(),
                    at: "t".into(),
                },
                Record::StepEnded {
                    index: 1,
                    seconds: 1.0,
                    changes: vec![],
                    backups: vec![],
                    error: None,
                },
                Record::StepStarted {
                    index: 2,
                    step: "b".into(),
                    at: "t".into(),
                },
            ],
            "x".into(),
        )
        .expect("a header");
        let note = stopped_note(&run, &["b".to_string(), "c".to_string()]);
        assert_eq!(
            note,
            "the run 2026-12-03T11-01-26.123Z-42 of 2026-12-03T11:01:26.123Z stopped at step 2 of 3 (b): it was killed in this step (no end record); by what the survey sees now, its steps 1 are done and 2, 3 are still to do; this run is planned from the cluster as it is, never replayed (restate-fleet history show 2026-12-03T11-01-26.123Z-42)"
        );
        // A run that ended on an error after its step (the last restart's gate) says that error.
        let mut failed = run;
        failed.ending = Some(restate_fleet_journal::Ending {
            at: "t".into(),
            outcome: restate_fleet_journal::Outcome::Failed,
            error: Some("n3: not healthy after its restart".into()),
            hosts: vec![],
            cluster_changes: vec![],
            cluster_after: None,
        });
        let note = stopped_note(&failed, &["b".to_string(), "c".to_string()]);
        assert!(
            note.contains("(b): n3: not healthy after its restart; by what"),
            "{note}"
        );
    }

    #[test]
    fn the_changes_of_a_step_are_what_the_recap_gained() {
        let before = vec!["n1: a".to_string(), "n1: a".to_string()];
        let after = vec![
            "n1: a".to_string(),
            "n1: a".to_string(),
            "n1: a".to_string(),
            "n2: b".to_string(),
        ];
        assert_eq!(changes_since(&before, after), ["n1: a", "n2: b"]);
    }
}

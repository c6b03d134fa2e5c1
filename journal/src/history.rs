//! The journals read back: each file folded into a [`Run`] (what it planned, how far it got, how
//! it ended), for `restate-fleet history` and for the `apply` that follows a run that stopped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::JournalError;
use crate::record::{Ending, Header, Outcome, Record};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    #[serde(flatten)]
    pub header: Header,
    pub state: RunState,
    pub planned: Vec<String>,
    pub steps: Vec<StepLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Done,
    Refused,
    Failed,
    Interrupted,
    /// No end record: the run was killed (or is still running).
    Stopped,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunState::Done => "done",
            RunState::Refused => "refused",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::Stopped => "stopped (killed)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLine {
    pub index: usize,
    pub step: String,
    pub at: String,
    pub state: StepState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Done,
    Failed,
    /// Started, never ended: the run was killed in it.
    InProgress,
}

impl Run {
    /// Folds a journal's records; `None` without a header.
    pub fn from_records(records: Vec<Record>, path: PathBuf) -> Option<Run> {
        let mut records = records.into_iter();
        let Some(Record::Started(header)) = records.next() else {
            return None;
        };
        let mut run = Run {
            header,
            state: RunState::Stopped,
            planned: Vec::new(),
            steps: Vec::new(),
            cluster_before: None,
            ending: None,
            path,
        };
        for record in records {
            match record {
                Record::Started(_) => {}
                Record::Plan { steps } => run.planned = steps,
                Record::ClusterBefore { summary } => run.cluster_before = Some(summary),
                Record::StepStarted { index, step, at } => run.steps.push(StepLine {
                    index,
                    step,
                    at,
                    state: StepState::InProgress,
                    seconds: None,
                    changes: Vec::new(),
                    backups: Vec::new(),
                    error: None,
                }),
                Record::StepEnded {
                    index,
                    seconds,
                    changes,
                    backups,
                    error,
                } => {
                    if let Some(step) = run.steps.iter_mut().rev().find(|s| s.index == index) {
                        step.state = match error {
                            None => StepState::Done,
                            Some(_) => StepState::Failed,
                        };
                        step.seconds = Some(seconds);
                        step.changes = changes;
                        step.backups = backups;
                        step.error = error;
                    }
                }
                Record::Ended(ending) => {
                    run.state = match ending.outcome {
                        Outcome::Done => RunState::Done,
                        Outcome::Refused => RunState::Refused,
                        Outcome::Failed => RunState::Failed,
                        Outcome::Interrupted => RunState::Interrupted,
                    };
                    run.ending = Some(ending);
                }
            }
        }
        Some(run)
    }

    /// It changed something and did not finish: the next `apply` says so first.
    pub fn stopped_part_way(&self) -> bool {
        matches!(
            self.state,
            RunState::Failed | RunState::Interrupted | RunState::Stopped
        ) && !self.steps.is_empty()
    }

    /// The step it stopped in or at: the one in progress when it was killed, else the failed one.
    pub fn stopped_at(&self) -> Option<&StepLine> {
        self.steps
            .iter()
            .find(|s| s.state != StepState::Done)
            .or_else(|| self.steps.last().filter(|_| self.stopped_part_way()))
    }

    /// The hosts it changed, in recap order (from the steps when it has no end record).
    pub fn hosts_changed(&self) -> Vec<String> {
        let mut hosts: Vec<String> = match &self.ending {
            Some(ending) => ending
                .hosts
                .iter()
                .filter(|h| !h.changes.is_empty())
                .map(|h| h.host.clone())
                .collect(),
            None => self
                .steps
                .iter()
                .flat_map(|s| &s.changes)
                .filter_map(|c| c.split_once(": ").map(|(host, _)| host.to_string()))
                .collect(),
        };
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }
}

/// Every run in `dir`, oldest first, with a line for each file that could not be read; no
/// directory yet: no runs.
pub fn list(dir: &Path) -> (Vec<Run>, Vec<JournalError>) {
    newest(dir, usize::MAX)
}

/// The `count` newest runs in `dir`, oldest first: a run's file name starts with its start
/// time, so only those files are read, however long the journal grew.
pub fn newest(dir: &Path, count: usize) -> (Vec<Run>, Vec<JournalError>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    let paths = paths.split_off(paths.len().saturating_sub(count));
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match read(&path) {
            Ok(Some(run)) => runs.push(run),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    (runs, problems)
}

/// The run `id` in `dir`.
pub fn find(dir: &Path, id: &str) -> Result<Run, JournalError> {
    let path = dir.join(format!("{id}.jsonl"));
    let not_found = || JournalError::NotFound {
        id: id.to_string(),
        dir: dir.to_path_buf(),
    };
    // An id is a file name, never a path.
    if id.is_empty() || id.contains('/') || !path.is_file() {
        return Err(not_found());
    }
    read(&path)?.ok_or_else(not_found)
}

fn read(path: &Path) -> Result<Option<Run>, JournalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JournalError::io(path, "read the run's journal", e))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (at, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push(record),
            // A run killed in the middle of writing its last line: the lines before it stand.
            Err(_) if at + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(source) => {
                return Err(JournalError::Parse {
                    path: path.to_path_buf(),
                    line: at + 1,
                    source,
                });
            }
        }
    }
    Ok(Run::from_records(records, path.to_path_buf()))
}

/// The stopped run's steps against the plan made now: a step the new plan no longer has is
/// done (the survey sees its effect); one it still has is still to do. Never replayed: the new
/// plan is made from the cluster as it is.
pub fn steps_now<'a>(run: &'a Run, plan_now: &[String]) -> Vec<(&'a str, bool)> {
    run.planned
        .iter()
        .map(|step| (step.as_str(), !plan_now.contains(step)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::HostLine;

    fn header() -> Header {
        Header {
            id: "2026-12-03T11-01-26.123Z-42".into(),
            command: "apply".into(),
            started: "2026-12-03T11:01:26.123Z".into(),
            user: "alice".into(),
            machine: "laptop".into(),
            inventory: "inventory.toml".into(),
            inventory_sha256: "00".into(),
            argv: vec![],
        }
    }

    fn started(index: usize, step: &str) -> Record {
        Record::StepStarted {
            index,
            step: step.into(),
            at: "t".into(),
        }
    }

    fn ended(index: usize, changes: &[&str], error: Option<&str>) -> Record {
        Record::StepEnded {
            index,
            seconds: 1.0,
            changes: changes.iter().map(|c| c.to_string()).collect(),
            backups: Vec::new(),
            error: error.map(str::to_string),
        }
    }

    fn ending(outcome: Outcome) -> Record {
        Record::Ended(Ending {
            at: "t".into(),
            outcome,
            error: None,
            hosts: vec![
                HostLine {
                    host: "n1".into(),
                    status: "changed".into(),
                    changes: vec!["restarted".into()],
                    error: None,
                },
                HostLine {
                    host: "n2".into(),
                    status: "ok".into(),
                    changes: vec![],
                    error: None,
                },
            ],
            cluster_changes: vec![],
            cluster_after: None,
        })
    }

    #[test]
    fn a_journal_says_how_far_its_run_got() {
        let plan = Record::Plan {
            steps: vec!["n1: set x".into(), "n2: join".into(), "n3: join".into()],
        };
        /// (records after the header and plan, state, stopped part way, stopped at, hosts)
        type Case = (
            Vec<Record>,
            RunState,
            bool,
            Option<usize>,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                vec![
                    started(1, "n1: set x"),
                    ended(1, &["n1: restarted"], None),
                    ending(Outcome::Done),
                ],
                RunState::Done,
                false,
                None,
                &["n1"],
            ),
            (
                vec![
                    started(1, "n1: set x"),
                    ended(1, &["n1: restarted"], None),
                    started(2, "n2: join"),
                ],
                RunState::Stopped,
                true,
                Some(2),
                &["n1"],
            ),
            (
                vec![
                    started(1, "n1: set x"),
                    ended(1, &[], Some("n1: did not come back")),
                    ending(Outcome::Failed),
                ],
                RunState::Failed,
                true,
                Some(1),
                &["n1"],
            ),
            (
                vec![ending(Outcome::Refused)],
                RunState::Refused,
                false,
                None,
                &["n1"],
            ),
        ];
        for (i, (records, state, part_way, at, hosts)) in cases.into_iter().enumerate() {
            let all = [vec![Record::Started(header()), plan.clone()], records].concat();
            let run = Run::from_records(all, "x.jsonl".into()).expect("a header");
            assert_eq!(run.state, state, "case {i}");
            assert_eq!(run.stopped_part_way(), part_way, "case {i}");
            assert_eq!(run.stopped_at().map(|s| s.index), at, "case {i}");
            assert_eq!(run.hosts_changed(), hosts, "case {i}");
        }
    }

    #[test]
    fn a_stopped_runs_steps_are_done_where_the_new_plan_no_longer_has_them() {
        let run = Run::from_records(
            vec![
                Record::Started(header()),
                Record::Plan {
                    steps: vec!["a".into(), "b".into(), "c".into()],
                },
            ],
            "x.jsonl".into(),
        )
        .expect("a header");
        assert_eq!(
            steps_now(&run, &["c".to_string()]),
            vec![("a", true), ("b", true), ("c", false)]
        );
    }

    #[test]
    fn files_are_listed_oldest_first_and_a_torn_last_line_is_ignored() {
        let dir = std::env::temp_dir().join(format!("rfj-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |r: &Record| serde_json::to_string(r).unwrap();
        let mut second = header();
        second.id = "2026-12-03T12-00-00.000Z-7".into();
        std::fs::write(
            dir.join(format!("{}.jsonl", second.id)),
            format!(
                "{}\n{}\n{{\"record\":\"step_",
                line(&Record::Started(second.clone())),
                line(&started(1, "a"))
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{}.jsonl", header().id)),
            format!(
                "{}\n{}\n",
                line(&Record::Started(header())),
                line(&ending(Outcome::Done))
            ),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a journal").unwrap();
        let (runs, problems) = list(&dir);
        assert!(problems.is_empty(), "{problems:?}");
        let ids: Vec<&str> = runs.iter().map(|r| r.header.id.as_str()).collect();
        assert_eq!(ids, [header().id.as_str(), second.id.as_str()]);
        assert_eq!(runs[1].state, RunState::Stopped);
        assert!(find(&dir, &second.id).is_ok());
        let (newest_only, _) = newest(&dir, 1);
        assert_eq!(newest_only.len(), 1);
        assert_eq!(
            newest_only[0].header.id, second.id,
            "the newest file alone is read"
        );
        assert!(matches!(
            find(&dir, "../etc/passwd"),
            Err(JournalError::NotFound { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

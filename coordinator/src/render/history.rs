//! `history` and `history show`: the runs on record, and one run's story.

use std::path::Path;

use restate_fleet_journal::{Run, StepState};

use super::table;

/// One line per run, oldest first.
pub fn history(runs: &[Run], dir: &Path) -> String {
    if runs.is_empty() {
        return format!("no runs on record in {}\n", dir.display());
    }
    let mut rows = vec![[
        "RUN".to_string(),
        "STARTED".to_string(),
        "WHO".to_string(),
        "COMMAND".to_string(),
        "RESULT".to_string(),
        "HOSTS CHANGED".to_string(),
    ]];
    for run in runs {
        let h = &run.header;
        let changed = run.hosts_changed();
        rows.push([
            h.id.clone(),
            h.started.clone(),
            format!("{}@{}", h.user, h.machine),
            h.command.clone(),
            result(run),
            if changed.is_empty() {
                "-".to_string()
            } else {
                changed.join(",")
            },
        ]);
    }
    table(&rows)
}

fn result(run: &Run) -> String {
    match run.stopped_at().filter(|_| run.stopped_part_way()) {
        Some(step) => format!(
            "{} at step {} of {}",
            run.state,
            step.index,
            run.planned.len()
        ),
        None => run.state.to_string(),
    }
}

/// One run: who, what, each step with its time and outcome, then its recap.
pub fn run(run: &Run) -> String {
    let h = &run.header;
    let mut out = format!(
        "run {}: {} by {}@{}, started {}\n  inventory {} (sha256 {})\n  command line: {}\n  result: {}\n",
        h.id,
        h.command,
        h.user,
        h.machine,
        h.started,
        h.inventory,
        h.inventory_sha256,
        h.argv.join(" "),
        result(run)
    );
    if let Some(before) = &run.cluster_before {
        out.push_str(&format!("  before: {before}\n"));
    }
    out.push_str(&format!("STEPS ({} planned)\n", run.planned.len()));
    for (i, planned) in run.planned.iter().enumerate() {
        let index = i + 1;
        let line = match run.steps.iter().find(|s| s.index == index) {
            None => "not started".to_string(),
            Some(step) => {
                let took = step
                    .seconds
                    .map(|s| format!(" in {s:.1}s"))
                    .unwrap_or_default();
                match step.state {
                    StepState::Done => format!("done{took}"),
                    StepState::Failed => format!("failed{took}"),
                    StepState::InProgress => "in progress when the run ended".to_string(),
                }
            }
        };
        out.push_str(&format!("  {index:>2}. {planned}: {line}\n"));
        if let Some(step) = run.steps.iter().find(|s| s.index == index) {
            for change in &step.changes {
                out.push_str(&format!("        {change}\n"));
            }
            for backup in &step.backups {
                out.push_str(&format!("        backup kept: {backup}\n"));
            }
            if let Some(error) = &step.error {
                out.push_str(&format!("        error: {error}\n"));
            }
        }
    }
    match &run.ending {
        None => out.push_str("no end record: the run was killed (or is still running)\n"),
        Some(ending) => {
            out.push_str(&format!("RECAP (ended {})\n", ending.at));
            let mut rows = Vec::new();
            for host in &ending.hosts {
                let mut said = host.changes.join("; ");
                if let Some(error) = &host.error {
                    said.push_str(&format!(" {error}"));
                }
                rows.push([
                    format!("  {}", host.host),
                    host.status.clone(),
                    said.trim().to_string(),
                ]);
            }
            for change in &ending.cluster_changes {
                rows.push(["  cluster".to_string(), String::new(), change.clone()]);
            }
            out.push_str(&table(&rows));
            if let Some(error) = &ending.error {
                out.push_str(&format!("error: {error}\n"));
            }
            if let Some(after) = &ending.cluster_after {
                out.push_str(&format!("  after: {after}\n"));
            }
        }
    }
    out
}

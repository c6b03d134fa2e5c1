//! `check`, `plan` and `apply`: the hosts as surveyed, the problems, the plan and the recap.

use crate::rollout::decide::server::Change;
use crate::rollout::decide::survey::Class;
use crate::rollout::{Mode, Report};

pub fn report(report: &Report, mode: Mode) -> String {
    let mut out = String::new();
    for host in &report.hosts {
        let class = match &host.class {
            Class::Member => "member".to_string(),
            Class::New => "new".to_string(),
            Class::Conflicting(_) => "CONFLICTING".to_string(),
        };
        let server = match host.server.as_ref().map(|s| (&s.change, s)) {
            Some((Change::Upgrade { .. }, s)) => {
                format!("  upgrade to {}", s.version)
            }
            Some((Change::Install { .. }, s)) => {
                format!("  install {}", s.version)
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<16} {:<12} restate-server {:<8} {}{server}\n",
            host.host,
            class,
            host.restate_version.as_deref().unwrap_or("-"),
            if host.running {
                "running"
            } else {
                "not running"
            }
        ));
    }
    if let Some(restatectl) = &report.restatectl {
        out.push_str(&format!("restatectl: {restatectl}\n"));
    }
    // The recap repeats what it warns of at the end of an apply.
    let in_recap = |w: &String| mode == Mode::Apply && report.recap.warnings.contains(w);
    for warning in report.warnings.iter().filter(|w| !in_recap(w)) {
        out.push_str(&format!("warning: {warning}\n"));
    }
    for problem in &report.problems {
        out.push_str(&format!("problem: {problem}\n"));
    }
    if let Some(plan) = &report.plan
        && mode != Mode::Apply
    {
        if mode == Mode::Plan {
            for file in &plan.files {
                out.push_str(&format!(
                    "\n{}: {}\n",
                    file.host,
                    file.preview.path.display()
                ));
                if let Some(access) = file.preview.access {
                    out.push_str(&format!("{access}\n"));
                }
                out.push_str(&file.preview.diff);
            }
        }
        if plan.steps.is_empty() {
            out.push_str("\nnothing to do: the fleet matches the inventory\n");
        } else {
            out.push_str("\nsteps apply would take:\n");
            for (i, step) in plan.steps.iter().enumerate() {
                out.push_str(&format!("  {}. {step}\n", i + 1));
            }
        }
        if mode == Mode::Check && report.succeeded() {
            out.push_str("ready: apply can run\n");
        }
    }
    if mode == Mode::Apply {
        out.push_str(&super::recap(&report.recap, !report.succeeded()));
        if let Some(err) = &report.error {
            out.push_str(&format!("error: {err}\n"));
        }
        if let Some(view) = &report.cluster
            && report.succeeded()
        {
            out.push_str(&super::cluster_table(view));
        }
    }
    out
}

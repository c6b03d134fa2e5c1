//! The end of a run, per host and for the cluster (`apply`, `rollback`).

use crate::rollout::recap::Recap;

/// `stopped`: the run ended on a refusal or a failure, so an unchanged fleet is not a converged one.
pub fn recap(recap: &Recap, stopped: bool) -> String {
    let mut out = String::from("RECAP\n");
    for h in &recap.hosts {
        let status = h.status.word();
        out.push_str(&format!("  {:<16} {status:<12}", h.host));
        if !h.changes.is_empty() {
            out.push_str(&h.changes.join("; "));
        }
        if let Some(err) = &h.error {
            out.push_str(&format!(" {err}"));
        }
        out.push('\n');
    }
    for change in &recap.cluster_changes {
        out.push_str(&format!("  cluster          {change}\n"));
    }
    if !recap.anything_changed() {
        out.push_str(if stopped {
            "  nothing changed: the run stopped before its first change\n"
        } else {
            "  nothing changed: the fleet already matches the inventory\n"
        });
    }
    for t in &recap.steps {
        out.push_str(&format!("  {:>6.1}s  {}\n", t.seconds, t.step));
    }
    for warning in &recap.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    if let Some(limit) = recap.retry_limit() {
        out.push_str(&format!(
            "  re-run just these hosts with: --limit {limit}\n"
        ));
    }
    out
}

//! Restarting a member gently: before it goes down, its partition leaders move to the other
//! workers (worker state `draining`, a handover the cluster controller does while the node still
//! runs) instead of the cluster noticing a dead leader seconds later; once it is back and
//! healthy, its worker is `active` again. Needs restatectl (see `restatectl.rs`); without it, or
//! when the other workers cannot take the partitions, the member restarts as before.

use std::time::{Duration, Instant};

use super::error::StepError;
use super::execute::Executor;
use super::leaving::current_replication;
use super::restatectl::Restatectl;
use super::survey::Surveyed;
use crate::admin::{ClusterView, gather};

/// How long the leaders get to move away; past it the restart goes ahead anyway.
const LEADERS_AWAY: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(250);

/// A member whose worker this run set to draining.
pub(super) struct Drained<'a> {
    ctl: Restatectl<'a>,
    node_id: String,
}

/// Whether draining `node` before its restart helps (it leads partitions) and is safe (it is
/// alive and active, and the other active workers alone can hold the partition replication).
pub fn worthwhile(view: &ClusterView, node: &str) -> bool {
    let active = |n: &&crate::admin::NodeView| {
        n.alive
            && n.roles.iter().any(|r| r == "worker")
            && n.worker_state.as_deref().is_none_or(|s| s == "active")
    };
    let Some(me) = view.node(node).filter(|n| active(n)) else {
        return false;
    };
    let (partition_replication, _) = current_replication(view);
    let others = view
        .nodes
        .iter()
        .filter(|n| n.name != node)
        .filter(active)
        .count();
    me.leader_partitions > 0 && others as u32 >= partition_replication.max(1)
}

impl<'a> Executor<'a> {
    /// Drains `host`'s worker when [`worthwhile`]; `None` when it was not (or could not be).
    pub(super) async fn drain_for_restart(&self, host: &Surveyed) -> Option<Drained<'a>> {
        let (name, node) = (host.name(), host.reached.host.node_name.as_str());
        let view = gather(&self.clients()).await.ok()?;
        if !worthwhile(&view, node) {
            return None;
        }
        let node_id = format!("N{}", view.node(node)?.id);
        let ctl = match self.restatectl().await {
            Ok(ctl) => ctl,
            Err(why) => {
                tracing::debug!(host = name, %why, "restart without moving leaders first");
                return None;
            }
        };
        self.progress
            .host(name, "moving its partition leaders away (worker draining)");
        if let Err(why) = set_worker(&ctl, &node_id, "draining").await {
            self.progress
                .warn(&format!("{name}: {why}; restarting it as it is"));
            return None;
        }
        let deadline = Instant::now() + LEADERS_AWAY;
        while Instant::now() < deadline {
            let leads = gather(&self.clients())
                .await
                .ok()
                .and_then(|v| v.node(node).map(|n| n.leader_partitions));
            if leads == Some(0) {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        Some(Drained { ctl, node_id })
    }

    /// The drained worker active again; a failure is the run's (the node would stay without
    /// partitions), named with the command that fixes it.
    pub(super) async fn activate(
        &mut self,
        name: &str,
        drained: Drained<'_>,
    ) -> Result<(), StepError> {
        set_worker(&drained.ctl, &drained.node_id, "active")
            .await
            .map_err(|why| {
                StepError::host(
                    name,
                    format!(
                        "{why}; its worker stays draining (no partitions) until `restatectl nodes set-worker-state --nodes {} --worker-state active` or a re-run",
                        drained.node_id
                    ),
                )
            })?;
        self.progress.host(name, "worker active again");
        Ok(())
    }
}

impl Executor<'_> {
    /// A member found draining (see `plan::Step::ActivateWorker`).
    pub(super) async fn activate_left_draining(
        &mut self,
        host: &Surveyed,
    ) -> Result<(), StepError> {
        let node = &host.reached.host.node_name;
        let view = gather(&self.clients()).await?;
        let node_id = view
            .node(node)
            .map(|n| format!("N{}", n.id))
            .ok_or_else(|| StepError::host(host.name(), "not in the cluster"))?;
        let ctl = self.restatectl().await?;
        let name = host.name().to_string();
        self.activate(&name, Drained { ctl, node_id }).await?;
        self.recap
            .changed(&name, "worker active again (was left draining)");
        Ok(())
    }
}

async fn set_worker(ctl: &Restatectl<'_>, node_id: &str, state: &str) -> Result<String, StepError> {
    ctl.run(&[
        "nodes",
        "set-worker-state",
        "--nodes",
        node_id,
        "--worker-state",
        state,
    ])
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::NodeView;
    use crate::rollout::fixtures;

    fn node(id: u32, leads: usize, worker_state: &str, alive: bool) -> NodeView {
        NodeView {
            leader_partitions: leads,
            worker_state: Some(worker_state.into()),
            alive,
            ..fixtures::node(id)
        }
    }

    fn view(nodes: Vec<NodeView>, replication: &str) -> ClusterView {
        let mut view = fixtures::cluster(nodes, &[]);
        view.config.partition_replication = Some(replication.into());
        view
    }

    #[test]
    fn when_draining_first_helps_and_is_safe() {
        let three = |r: &str| {
            view(
                vec![
                    node(1, 8, "active", true),
                    node(2, 8, "active", true),
                    node(3, 8, "active", true),
                ],
                r,
            )
        };
        let cases = [
            // Two others hold replication 2.
            (three("{node: 2}"), true),
            // Replication 3 needs all three.
            (three("{node: 3}"), false),
            // A single node: nobody to hand over to.
            (view(vec![node(1, 24, "active", true)], "{node: 1}"), false),
            // It leads nothing: nothing to move.
            (
                view(
                    vec![node(1, 0, "active", true), node(2, 24, "active", true)],
                    "{node: 1}",
                ),
                false,
            ),
            // The only other worker is dead, or draining itself.
            (
                view(
                    vec![node(1, 12, "active", true), node(2, 12, "active", false)],
                    "{node: 1}",
                ),
                false,
            ),
            (
                view(
                    vec![node(1, 24, "active", true), node(2, 0, "draining", true)],
                    "{node: 1}",
                ),
                false,
            ),
        ];
        for (view, want) in cases {
            assert_eq!(worthwhile(&view, "n1"), want, "{:?}", view.nodes);
        }
    }
}

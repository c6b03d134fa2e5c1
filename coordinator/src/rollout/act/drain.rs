//! Restarting a member gently: before it goes down, its partition leaders move to the other
//! workers (worker state `draining`, a handover the cluster controller does while the node still
//! runs); once it is back and healthy, its worker is `active` again, and the sequencers of the
//! logs it ran move too. When a drain helps is decided in `decide/drain.rs`.

use std::time::{Duration, Instant};

use super::executor::Executor;
use super::restatectl::Restatectl;
use crate::admin::{NodeLiveness, first_answer, gather};
use crate::rollout::decide::drain::{sequencer_moves, worthwhile};
use crate::rollout::decide::restatectl::reconfigure_call;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;

/// How long the leaders get to move away; past it the restart goes ahead anyway.
const LEADERS_AWAY: Duration = Duration::from_secs(15);

const POLL: Duration = Duration::from_millis(100);

/// A member whose worker this run set to draining.
pub(super) struct Drained {
    node_id: String,
}

impl<'a> Executor<'a> {
    /// Gets `host` ready to restart: drains its worker when `worthwhile` while the log
    /// sequencers it runs move; `None` when its worker was not drained. `coming_back`: the
    /// member restarted just before, whose gate is still open (see `decide/drain.rs`).
    pub(super) async fn drain_for_restart(
        &self,
        host: &Surveyed,
        coming_back: Option<&str>,
    ) -> Option<Drained> {
        let (name, node) = (host.name(), host.reached.host.node_name.as_str());
        let view = gather(&self.clients()).await.ok()?;
        let id = view.node(node)?.id;
        let ctl = match self.restatectl().await {
            Ok(ctl) => ctl,
            Err(why) => {
                tracing::debug!(host = name, %why, "restart without moving leaders first");
                return None;
            }
        };
        let drain = worthwhile(&view, node, coming_back);
        let (drained, ()) = tokio::join!(
            async { drain && self.drain_worker(&ctl, name, id).await },
            self.move_sequencers(&ctl, name, id, false)
        );
        self.move_sequencers(&ctl, name, id, true).await;
        drained.then(|| Drained {
            node_id: format!("N{id}"),
        })
    }

    /// Sets the worker draining and waits until it leads nothing (at most [`LEADERS_AWAY`]);
    /// false when it could not be set draining.
    pub(super) async fn drain_worker(&self, ctl: &Restatectl, name: &str, id: u32) -> bool {
        self.progress
            .host(name, "moving its partition leaders away (worker draining)");
        if let Err(why) = set_worker(ctl, &format!("N{id}"), "draining").await {
            self.progress
                .warn(&format!("{name}: {why}; restarting it as it is"));
            return false;
        }
        let deadline = Instant::now() + LEADERS_AWAY;
        while Instant::now() < deadline {
            // The cluster state alone (one call, not the whole view): polled often, it tells
            // the moment the last leader left.
            let state = first_answer(&self.clients(), "cluster state", |c| async move {
                c.cluster_state().await
            })
            .await;
            let leads = state.ok().and_then(|s| match s.value.nodes.get(&id) {
                Some(NodeLiveness::Alive(alive)) => Some(alive.leader_of.len()),
                _ => None,
            });
            if leads == Some(0) {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }

    /// Moves `sequencer_moves` with `restatectl logs reconfigure` (a new tail segment, same
    /// nodeset and replication). Best effort: a sequencer that stays costs a pause, not safety.
    pub(super) async fn move_sequencers(
        &self,
        ctl: &Restatectl,
        name: &str,
        node: u32,
        leaders_moved: bool,
    ) {
        let facts = first_answer(&self.clients(), "cluster state and logs", |c| async move {
            tokio::try_join!(c.cluster_state(), c.logs())
        })
        .await;
        let moves = match facts {
            Ok(answer) => sequencer_moves(&answer.value.0, &answer.value.1, node, leaders_moved),
            Err(why) => {
                tracing::debug!(host = name, %why, "sequencers not moved");
                return;
            }
        };
        if moves.is_empty() {
            return;
        }
        self.progress.host(
            name,
            &format!("moving the sequencers of {} log(s) away", moves.len()),
        );
        let calls: Vec<Vec<String>> = moves
            .iter()
            .map(|(log, to)| reconfigure_call(*log, None, Some(*to)))
            .collect();
        let failed = match ctl.run_all(&calls).await {
            Ok(failed) => failed,
            Err(why) => vec![(0, why.to_string()); calls.len()],
        };
        if let Some((_, first)) = failed.first() {
            self.progress.warn(&format!(
                "{name}: {} of {} log sequencers did not move ({first}); restarting it anyway",
                failed.len(),
                moves.len()
            ));
        }
    }

    /// The drained worker active again; a failure is the run's (the node would stay without
    /// partitions), named with the command that fixes it.
    pub(super) async fn activate(&mut self, name: &str, drained: Drained) -> Result<(), StepError> {
        // Found again: the host it ran on may have rebooted since (`restart --reboot`).
        let ctl = self.restatectl().await;
        let set = match &ctl {
            Ok(ctl) => set_worker(ctl, &drained.node_id, "active").await,
            Err(err) => Err(StepError::host(name, err.to_string())),
        };
        set.map_err(|why| {
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
        let name = host.name().to_string();
        self.activate(&name, Drained { node_id }).await?;
        self.recap
            .changed(&name, "worker active again (was left draining)");
        Ok(())
    }
}

async fn set_worker(ctl: &Restatectl, node_id: &str, state: &str) -> Result<String, StepError> {
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

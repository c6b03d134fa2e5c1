//! Shrinking: lowering replication and removing the nodes no inventory host names, as Restate
//! documents it for 1.7 ("Removing Nodes & Shrinking Clusters"; docs/scale-down.md).
//!
//! A node's storage and worker states and its removal are read-modify-writes of the nodes
//! configuration that Restate offers through restatectl only (restatedev/restate#5195 asks for an
//! RPC), so restatectl of the cluster's release runs on a member that stays. Everything else
//! (snapshots, the waits, the metadata cluster's view) goes through the admin API as elsewhere.

use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{Operation, RetireReport, ServiceAction, ServiceReport};

use super::executor::Executor;
use super::restatectl::Restatectl;
use crate::admin::{AdminClient, ClusterView, Logs, NodeView, first_answer, gather};
use crate::reach::Reached;
use crate::rollout::decide::leaving::nodesets_without;
use crate::rollout::decide::restatectl::reconfigure_call;
use crate::rollout::error::StepError;
use crate::rollout::observe::leaving::LeavingHost;

const POLL: Duration = Duration::from_millis(300);
/// How long Restate gets to move a tail off a read-only node by itself before the tail is
/// moved for it (`decide/leaving.rs`).
const TAILS_MOVE_THEMSELVES: Duration = Duration::from_secs(10);

impl<'a> Executor<'a> {
    pub(super) async fn lower_replication(&mut self, property: &str) -> Result<(), StepError> {
        self.set_replication(property, "lowered").await
    }

    pub(super) async fn remove_node(&mut self, name: &str) -> Result<(), StepError> {
        let leaving = self
            .survey
            .leaving
            .iter()
            .find(|l| l.node.name == name)
            .ok_or_else(|| StepError::host(name, "not among the nodes that leave"))?;
        let id = leaving.node.id;
        let node_id = format!("N{id}");
        let ctl = self.restatectl().await?;
        self.drain_leaving(&ctl, name, &leaving.node).await?;
        if leaving.node.metadata_member {
            self.leave_metadata_cluster(name, id).await?;
        }
        self.progress
            .host(name, "waiting until no partition runs on it");
        self.view_until(name, |view| {
            let busy = view
                .node(name)
                .filter(|n| n.alive)
                .map_or(0, |n| n.leader_partitions + n.follower_partitions);
            (busy > 0).then(|| format!("{busy} partition processors still run on it"))
        })
        .await?;
        self.progress
            .host(name, "snapshots with trim until no log segment names it");
        self.trim_until_free(name, id, &ctl).await?;

        self.release_host(name, &leaving.host).await?;
        self.progress.host(name, "removing it from the cluster");
        ctl.run_patiently(&["nodes", "remove", "--nodes", &node_id])
            .await?;
        self.view_until(name, |view| {
            view.nodes
                .iter()
                .any(|n| n.id == id)
                .then(|| "still in the nodes configuration".to_string())
        })
        .await?;
        self.recap.changed(name, "removed from the cluster");
        Ok(())
    }

    /// Its log storage read-only and its worker draining: nothing new lands on it, and what it
    /// holds moves away.
    pub(super) async fn drain_leaving(
        &mut self,
        ctl: &Restatectl,
        name: &str,
        node: &NodeView,
    ) -> Result<(), StepError> {
        let node_id = format!("N{}", node.id);
        let has = |role: &str| node.roles.iter().any(|r| r == role);
        self.progress.host(name, "draining");
        for (role, command, flag, state) in [
            (
                "log-server",
                "set-storage-state",
                "--storage-state",
                "read-only",
            ),
            ("worker", "set-worker-state", "--worker-state", "draining"),
        ] {
            if has(role) {
                ctl.run_patiently(&["nodes", command, "--nodes", &node_id, flag, state])
                    .await?;
            }
        }
        self.recap
            .changed(name, "drained (log storage read-only, worker draining)");
        Ok(())
    }

    pub(super) async fn leave_metadata_cluster(
        &mut self,
        name: &str,
        id: u32,
    ) -> Result<(), StepError> {
        self.progress.host(name, "leaving the metadata cluster");
        let view = crate::admin::gather(&self.clients()).await?;
        self.remove_metadata_member(name, id, &view).await?;
        self.view_until(name, |view| {
            view.metadata
                .members
                .contains(&id)
                .then(|| "still a metadata member".to_string())
        })
        .await?;
        self.recap.changed(name, "left the metadata cluster");
        Ok(())
    }

    /// What becomes of a leaving node's host once nothing runs on the node.
    pub(super) async fn release_host(
        &mut self,
        name: &str,
        host: &LeavingHost,
    ) -> Result<(), StepError> {
        match host {
            LeavingHost::Reached(host) => self.retire_host(name, host).await?,
            LeavingHost::Unreachable(why) => self.recap.changed(
                name,
                &format!("its host was not reachable ({why}): stop and clean it up by hand"),
            ),
            LeavingHost::ComesBack(host) => {
                // Not running, but a unit that restarts on failure would start it under the old
                // name: stopped until it joins again, its unit left enabled for that.
                let host = self.host(host)?;
                host.reached
                    .ask::<ServiceReport>(Operation::Service {
                        node: host.reached.node_target(self.timeouts.restart),
                        action: ServiceAction::Stop,
                    })
                    .await?;
                self.recap
                    .changed(name, "restate-server kept stopped until it joins again");
            }
        }

        Ok(())
    }

    /// Its service stopped and disabled, its data directory renamed aside.
    pub(super) async fn retire_host(
        &mut self,
        name: &str,
        host: &Reached,
    ) -> Result<(), StepError> {
        let node = host.node_target(self.timeouts.restart);
        self.progress.host(name, "stopping restate-server");
        host.ask::<ServiceReport>(Operation::Service {
            node: node.clone(),
            action: ServiceAction::Stop,
        })
        .await?;
        let report: RetireReport = host.ask(Operation::Retire { node }).await?;
        let mut done = vec!["restate-server stopped".to_string()];
        if let Some(unit) = report.disabled {
            done.push(format!("{unit} disabled"));
        }
        if let Some((from, to)) = report.data_dir {
            done.push(format!(
                "data directory {} kept as {}",
                from.display(),
                to.display()
            ));
        }
        self.recap.changed(name, &done.join(", "));
        Ok(())
    }

    /// Snapshots with trim the partitions whose logs still have a segment naming node `id`,
    /// again until none has: a snapshot taken before the log moved its tail off the node trims
    /// only up to that tail, so some logs need a second one.
    pub(super) async fn trim_until_free(
        &mut self,
        name: &str,
        id: u32,
        ctl: &super::restatectl::Restatectl,
    ) -> Result<(), StepError> {
        let clients = self.clients();
        let deadline = Instant::now() + self.timeouts.settle;
        let mut rounds = 0;
        let mut tails_wait = Instant::now();
        loop {
            let logs = logs(&clients).await?;
            let holding = logs.logs_with_node(id);
            let still_written = logs.tails_with_node(id);
            if holding.is_empty() {
                self.recap.changed(
                    name,
                    &format!("in no log nodeset any more ({rounds} snapshot rounds)"),
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StepError::host(
                    name,
                    format!(
                        "logs {holding:?} still have segments on it after {rounds} snapshot rounds (tails still written to it: {still_written:?}); check `restatectl logs describe` and re-run"
                    ),
                ));
            }
            // A tail still on the node moves off it by itself (its storage is read-only): wait,
            // then move it.
            if !still_written.is_empty() && tails_wait.elapsed() >= TAILS_MOVE_THEMSELVES {
                self.move_tails(name, id, &logs, ctl).await;
                tails_wait = Instant::now();
            }
            if still_written.is_empty() {
                rounds += 1;
                for partition in holding {
                    // Transient failures ("Partition not found" while partitions move) are
                    // retried by the next round.
                    let _ = first_answer(&clients, "snapshot", |c: AdminClient| async move {
                        c.snapshot_partition(partition, true).await
                    })
                    .await;
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The tails Restate keeps on leaving node `id` get a new segment on the other log servers
    /// (`restatectl logs reconfigure --nodeset`). Best effort: the next round looks again.
    pub(super) async fn move_tails(
        &mut self,
        name: &str,
        id: u32,
        logs: &Logs,
        ctl: &super::restatectl::Restatectl,
    ) {
        let Ok(view) = gather(&self.clients()).await else {
            return;
        };
        let writable: Vec<u32> = view
            .nodes
            .iter()
            .filter(|n| {
                n.id != id
                    && n.alive
                    && n.roles.iter().any(|r| r == "log-server")
                    && n.storage_state.as_deref() == Some("read-write")
            })
            .map(|n| n.id)
            .collect();
        let (_, replication) = crate::rollout::decide::replication::current_replication(&view);
        let moves = nodesets_without(logs, id, &writable, replication as usize);
        if moves.is_empty() {
            return;
        }
        self.progress.host(
            name,
            &format!("moving the tails of {} log(s) off it", moves.len()),
        );
        let calls: Vec<Vec<String>> = moves
            .iter()
            .map(|(log, nodeset, sequencer)| reconfigure_call(*log, Some(nodeset), *sequencer))
            .collect();
        if let Ok(failed) = ctl.run_all(&calls).await
            && let Some((_, why)) = failed.first()
        {
            tracing::debug!(host = name, %why, "tails not moved; the next round looks again");
        }
    }

    /// Reads the cluster view until `pending` has nothing left to wait for, at most the settle
    /// timeout.
    pub(super) async fn view_until(
        &self,
        name: &str,
        pending: impl Fn(&ClusterView) -> Option<String>,
    ) -> Result<(), StepError> {
        let deadline = Instant::now() + self.timeouts.settle;
        loop {
            let why = match gather(&self.clients()).await {
                Ok(view) => pending(&view),
                Err(e) => Some(e.to_string()),
            };
            match why {
                None => return Ok(()),
                Some(why) if Instant::now() >= deadline => {
                    return Err(StepError::host(
                        name,
                        format!(
                            "{why} after {:?}; re-run to continue the removal",
                            self.timeouts.settle
                        ),
                    ));
                }
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}

async fn logs(clients: &[AdminClient]) -> Result<Logs, StepError> {
    Ok(
        first_answer(clients, "list logs", |c| async move { c.logs().await })
            .await?
            .value,
    )
}

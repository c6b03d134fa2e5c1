//! Shrinking: lowering replication and removing the nodes no inventory host names, as Restate
//! documents it for 1.7 ("Removing Nodes & Shrinking Clusters"; docs/scale-down.md).
//!
//! A node's storage and worker states and its removal are read-modify-writes of the nodes
//! configuration that Restate offers through restatectl only (restatedev/restate#5195 asks for an
//! RPC), so restatectl of the cluster's release runs on a member that stays. Everything else
//! (snapshots, the waits, the metadata cluster's view) goes through the admin API as elsewhere.

use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{Operation, RetireReport, ServiceAction, ServiceReport};

use super::error::StepError;
use super::execute::Executor;
use super::leaving::LeavingHost;
use crate::admin::{AdminClient, ClusterView, Logs, first_answer, gather};
use crate::reach::Reached;

const POLL: Duration = Duration::from_millis(300);
/// How long Restate gets to move a tail off a read-only node by itself before the tail is
/// moved for it ([`nodesets_without`]).
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
        let has = |role: &str| leaving.node.roles.iter().any(|r| r == role);

        self.progress.host(name, "draining");
        if has("log-server") {
            ctl.run_patiently(&[
                "nodes",
                "set-storage-state",
                "--nodes",
                &node_id,
                "--storage-state",
                "read-only",
            ])
            .await?;
        }
        if has("worker") {
            ctl.run_patiently(&[
                "nodes",
                "set-worker-state",
                "--nodes",
                &node_id,
                "--worker-state",
                "draining",
            ])
            .await?;
        }
        self.recap
            .changed(name, "drained (log storage read-only, worker draining)");

        if leaving.node.metadata_member {
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

        match &leaving.host {
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

    /// Its service stopped and disabled, its data directory renamed aside.
    async fn retire_host(&mut self, name: &str, host: &Reached) -> Result<(), StepError> {
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
    async fn trim_until_free(
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
    async fn move_tails(
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
        let (_, replication) = super::leaving::current_replication(&view);
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
            .map(|(log, nodeset, sequencer)| {
                super::restatectl::reconfigure_call(*log, Some(nodeset), *sequencer)
            })
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

/// The logs whose tail is still written to leaving node `id`, each with a nodeset without it:
/// the tail's other nodes that are `writable` (read-write log servers), topped up from the rest
/// of `writable` to `replication` nodes; and a new sequencer (the first of them) when the
/// tail's runs on the leaving node. Restate moves such a tail by itself only when it sees a
/// better nodeset; one that must shrink to exactly the replication (three log servers to two
/// with replication 2, measured on 1.7.12) stays. Nothing when too few log servers are writable.
pub fn nodesets_without(
    logs: &Logs,
    id: u32,
    writable: &[u32],
    replication: usize,
) -> Vec<(u32, Vec<u32>, Option<u32>)> {
    if writable.len() < replication.max(1) {
        return Vec::new();
    }
    logs.logs
        .iter()
        .filter_map(|(log, chain)| {
            let tail = chain.tail().filter(|t| t.nodeset.contains(&id))?;
            let mut nodeset: Vec<u32> = tail
                .nodeset
                .iter()
                .copied()
                .filter(|n| writable.contains(n))
                .collect();
            for n in writable {
                if nodeset.len() >= replication.max(1) {
                    break;
                }
                if !nodeset.contains(n) {
                    nodeset.push(*n);
                }
            }
            nodeset.sort_unstable();
            let sequencer = (chain.tail_sequencer() == Some(id))
                .then(|| nodeset.first().copied())
                .flatten();
            Some((*log, nodeset, sequencer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{LogChain, Segment};

    fn chain(nodeset: &[u32]) -> LogChain {
        LogChain {
            segments: vec![Segment {
                base_lsn: 1,
                index: 0,
                kind: "replicated".into(),
                replication: Some("{node: 2}".into()),
                nodeset: nodeset.to_vec(),
                sequencer: Some("N1:3".into()),
            }],
        }
    }

    #[test]
    fn tails_left_on_a_leaving_node_get_the_writable_log_servers() {
        let logs = Logs {
            logs: [
                (0, chain(&[1, 2, 3])),
                (1, chain(&[1, 4])),
                (2, chain(&[2, 3])),
            ]
            .into(),
            version: 1,
            default_provider: None,
        };
        // (case, leaving, writable, replication, moves)
        type Case = (
            &'static str,
            u32,
            Vec<u32>,
            usize,
            Vec<(u32, Vec<u32>, Option<u32>)>,
        );
        let cases: [Case; 5] = [
            (
                "three to two, replication 2",
                2,
                vec![1, 3],
                2,
                vec![(0, vec![1, 3], None), (2, vec![1, 3], None)],
            ),
            (
                "topped up from the other servers",
                3,
                vec![1, 2, 4],
                2,
                vec![(0, vec![1, 2], None), (2, vec![1, 2], None)],
            ),
            ("too few writable: left to Restate", 2, vec![1], 2, vec![]),
            ("a node no tail names", 5, vec![1, 2, 3], 2, vec![]),
            (
                "the leaving node sequences: the first of the new nodeset does",
                1,
                vec![2, 3, 4],
                2,
                vec![(0, vec![2, 3], Some(2)), (1, vec![2, 4], Some(2))],
            ),
        ];
        for (what, leaving, writable, replication, moves) in cases {
            assert_eq!(
                nodesets_without(&logs, leaving, &writable, replication),
                moves,
                "{what}"
            );
        }
    }
}

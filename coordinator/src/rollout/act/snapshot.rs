//! Guide step 5: a snapshot of every partition, gated on the repository holding them.

use std::time::{Duration, Instant};

use super::executor::Executor;
use super::loglet::logs_until;
use crate::admin::{KIND_LOCAL, Retry};
use crate::rollout::error::StepError;
use crate::rollout::gate;

impl Executor<'_> {
    pub(super) async fn snapshot(&mut self) -> Result<(), StepError> {
        let clients = self.clients();
        gate::partitions_led(&clients, self.timeouts.settle)
            .await
            .map_err(StepError::gate(
                "cluster: partitions not running, so they cannot be snapshotted",
            ))?;
        // Right after a node joined (a re-run after an interrupted join) or members restarted
        // one after the other, partitions move and the node asked answers "Partition not found"
        // or "Can not find a suitable node" for a moment: snapshots are safe to retry, so retry
        // those until the settle timeout; any other failure (the repository) stops at once.
        let deadline = Instant::now() + self.timeouts.settle;
        let report = loop {
            let report = crate::admin::first_answer(&clients, "snapshots", |c| async move {
                c.snapshot_all_partitions(true, Retry::default()).await
            })
            .await?
            .value;
            let moving = report.failures().next().is_some()
                && report.failures().all(|(_, e)| {
                    let e = e.to_string();
                    e.contains("Partition not found") || e.contains("Can not find a suitable node")
                });
            if !moving || Instant::now() >= deadline {
                break report;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let failures: Vec<String> = report
            .failures()
            .map(|(p, e)| format!("partition {p}: {e}"))
            .collect();
        if !failures.is_empty() {
            return Err(StepError::cluster(format!(
                "{} of {} partition snapshots failed, so no new node starts: {}; check the snapshot repository (address, bucket, credentials) and re-run",
                failures.len(),
                report.outcomes.len(),
                failures.join("; ")
            )));
        }
        self.recap.cluster_changed(&format!(
            "{} partitions snapshotted with trim",
            report.outcomes.len()
        ));
        logs_until(&clients, self.timeouts.settle, |logs| {
            let holding = logs.logs_holding(KIND_LOCAL);
            (!holding.is_empty()).then(|| format!(
                "logs {holding:?} still reference a local segment after snapshots with trim; new nodes could not read them. Re-run to snapshot again"
            ))
        })
        .await
    }
}

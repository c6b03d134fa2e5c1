//! The cluster's logs: the move to the replicated loglet (guide step 4), the nodeset size, and
//! partition and log replication raised or lowered, each gated on the logs' tails.

use std::time::{Duration, Instant};

use super::executor::Executor;
use crate::admin::{AdminClient, KIND_REPLICATED, Logs};
use crate::rollout::decide::plan;
use crate::rollout::error::StepError;

/// Polls the cluster's logs every 100 ms until `pending` finds nothing left to wait for (it
/// returns why it is still waiting), for at most `timeout`.
pub(super) async fn logs_until(
    clients: &[AdminClient],
    timeout: Duration,
    pending: impl Fn(&Logs) -> Option<String>,
) -> Result<(), StepError> {
    let deadline = Instant::now() + timeout;
    loop {
        let logs =
            crate::admin::first_answer(clients, "list logs", |c| async move { c.logs().await })
                .await?;
        match pending(&logs.value) {
            None => return Ok(()),
            Some(why) if Instant::now() >= deadline => {
                return Err(StepError::cluster(format!("{why} (after {timeout:?})")));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl Executor<'_> {
    pub(super) async fn replicated_loglet(&mut self) -> Result<(), StepError> {
        let clients = self.clients();
        let answered =
            crate::admin::first_answer(&clients, "cluster configuration", |c| async move {
                c.cluster_config().await
            })
            .await?;
        if answered.value.log_provider != KIND_REPLICATED {
            self.progress
                .step("switching the log provider to replicated (log replication 1)");
            crate::admin::first_answer(&clients, "set log provider", |c| async move {
                c.set_log_provider_replicated(1).await
            })
            .await?;
            self.recap
                .cluster_changed("log provider switched to replicated");
        }
        // The logs move over a few seconds after the switch: wait for every tail.
        logs_until(&clients, self.timeouts.settle, |logs| {
            (!logs.all_tails_are(KIND_REPLICATED)).then(|| {
                "logs still without a replicated tail; check that log-server nodes run".into()
            })
        })
        .await?;
        self.nodeset_size().await
    }

    /// The nodeset size the inventory asks for, else the 1 a single node keeps from the local
    /// loglet back to auto, so that logs spread over the grown cluster.
    pub(super) async fn nodeset_size(&mut self) -> Result<(), StepError> {
        let asked = self.fleet.cluster.nodeset_size;
        let change = crate::admin::first_answer(&self.clients(), "nodeset size", |c| async move {
            c.set_nodeset_size(asked).await
        })
        .await?;
        let (before, after) = (
            change.value.before.nodeset_size,
            change.value.after.nodeset_size,
        );
        if before != after {
            self.recap.cluster_changed(&format!(
                "nodeset size {} -> {}",
                plan::nodeset_size_text(before),
                plan::nodeset_size_text(after)
            ));
        }
        Ok(())
    }

    pub(super) async fn raise_replication(
        &mut self,
        to: u32,
        property: &str,
    ) -> Result<(), StepError> {
        let view = crate::admin::gather(&self.clients()).await?;
        let alive = view.nodes.iter().filter(|n| n.alive).count() as u32;
        if alive < to {
            return Err(StepError::cluster(format!(
                "replication {to} needs {to} alive nodes, {alive} are; add hosts or lower replication"
            )));
        }
        self.set_replication(property, "raised").await?;
        self.nodeset_size().await?;
        // Tails show `sealed` for a moment before the new segment with the new replication.
        logs_until(&self.clients(), self.timeouts.settle, |logs| {
            (!logs.all_tails_are(KIND_REPLICATED)).then(|| {
                "logs did not settle on replicated tails after the replication change".into()
            })
        })
        .await
    }

    /// Partition and log replication to `property` (Restate's replication property: `{node: 2}`
    /// or `{node: 3, zone: 2}`); the recap says it was `moved` (raised, lowered).
    pub(super) async fn set_replication(
        &mut self,
        property: &str,
        moved: &str,
    ) -> Result<(), StepError> {
        let change =
            crate::admin::first_answer(&self.clients(), "set replication", |c| async move {
                c.set_replication_property(property).await
            })
            .await?;
        if change.value.changed() {
            self.recap
                .cluster_changed(&format!("replication {moved} to {property}"));
        }
        Ok(())
    }
}

//! Snapshots of every partition, optionally trimming the logs behind them. Each partition's result
//! is kept: a failure such as "cluster fingerprint mismatch" or "Snapshot repository is not
//! configured" must reach the operator (restatectl logs it and still exits 0).

use std::time::Duration;

use restate_fleet_proto::admin::restate::cluster_ctrl::CreatePartitionSnapshotRequest;
use serde::{Serialize, Serializer};

use super::{AdminClient, AdminError};

/// How often one partition's snapshot is tried when the failure looks transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionSnapshot {
    pub snapshot_id: String,
    pub log_id: u32,
    pub min_applied_lsn: u64,
}

#[derive(Debug, Serialize)]
pub struct SnapshotOutcome {
    pub partition_id: u32,
    pub attempts: u32,
    #[serde(serialize_with = "result_as_json")]
    pub result: Result<PartitionSnapshot, AdminError>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    /// One per partition, in partition id order.
    pub outcomes: Vec<SnapshotOutcome>,
}

impl SnapshotReport {
    pub fn failures(&self) -> impl Iterator<Item = (u32, &AdminError)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|err| (o.partition_id, err)))
    }

    pub fn all_succeeded(&self) -> bool {
        self.failures().next().is_none()
    }
}

impl AdminClient {
    /// One snapshot of one partition, tried once.
    pub async fn snapshot_partition(
        &self,
        partition_id: u32,
        trim_log: bool,
    ) -> Result<PartitionSnapshot, AdminError> {
        let request = CreatePartitionSnapshotRequest {
            partition_id,
            min_target_lsn: None,
            trim_log,
        };
        let answer = self
            .call(
                "CreatePartitionSnapshot",
                self.cluster_ctrl()
                    .create_partition_snapshot(self.request(request)),
            )
            .await?;
        Ok(PartitionSnapshot {
            snapshot_id: answer.snapshot_id,
            log_id: answer.log_id,
            min_applied_lsn: answer.min_applied_lsn,
        })
    }

    /// Snapshots partitions 0..num_partitions (read from the cluster configuration) one after the
    /// other, retrying transient failures with backoff. Only failing to read the configuration is
    /// an `Err`; per-partition failures are in the report.
    pub async fn snapshot_all_partitions(
        &self,
        trim_log: bool,
        retry: Retry,
    ) -> Result<SnapshotReport, AdminError> {
        let num_partitions = self.cluster_config().await?.num_partitions;
        let mut outcomes = Vec::with_capacity(num_partitions as usize);
        for partition_id in 0..num_partitions {
            outcomes.push(
                self.snapshot_with_retry(partition_id, trim_log, retry)
                    .await,
            );
        }
        Ok(SnapshotReport { outcomes })
    }

    async fn snapshot_with_retry(
        &self,
        partition_id: u32,
        trim_log: bool,
        retry: Retry,
    ) -> SnapshotOutcome {
        let mut backoff = retry.first_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.snapshot_partition(partition_id, trim_log).await;
            let retry_later = matches!(&result, Err(err) if err.is_transient());
            if !retry_later || attempts >= retry.attempts.max(1) {
                return SnapshotOutcome {
                    partition_id,
                    attempts,
                    result,
                };
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(retry.max_backoff);
        }
    }
}

fn result_as_json<S: Serializer>(
    result: &Result<PartitionSnapshot, AdminError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    enum Shown<'a> {
        Ok(&'a PartitionSnapshot),
        Error(String),
    }
    match result {
        Ok(snapshot) => Shown::Ok(snapshot),
        Err(err) => Shown::Error(err.to_string()),
    }
    .serialize(serializer)
}

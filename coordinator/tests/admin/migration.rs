//! An old-style node on the local loglet moved to the replicated loglet through the client, then
//! snapshotted with trim into a moto S3 bucket; a second cluster sharing that repository path sees
//! "cluster fingerprint mismatch" on every partition, reported per partition.

use std::time::{Duration, Instant};

use restate_fleet::admin::{KIND_LOCAL, KIND_REPLICATED, Retry};

use crate::harness::{
    Node, NodeSpec, S3, free_port, restatectl, tree_values, wait_for, wait_until_partitions_led,
    wait_until_ready,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_loglet_moves_to_replicated_and_trims_behind_snapshots() {
    let s3 = S3::start();
    s3.create_bucket("snaps");
    let snapshots = s3.snapshots_table("snaps", "shared");
    // Started while the path is still empty: a cluster that finds another cluster's snapshots there
    // at start cannot start its partitions at all (measured), which is not what this checks.
    let other = Node::start(
        NodeSpec {
            // Same name, other cluster: a name mismatch is reported before the fingerprint one.
            cluster: "adm-old",
            name: "other1",
            auto_provision: true,
            extra: snapshots.clone(),
        },
        free_port(),
    );
    let node = Node::start(
        NodeSpec {
            cluster: "adm-old",
            name: "old1",
            auto_provision: true,
            extra: format!("[bifrost]\ndefault-provider = \"local\"\n{snapshots}"),
        },
        free_port(),
    );
    wait_until_ready(&other).await;
    wait_until_partitions_led(&other).await;
    wait_until_ready(&node).await;
    let url = node.url();
    let client = node.client();

    let config = client.cluster_config().await.unwrap();
    assert_eq!(config.log_provider, KIND_LOCAL);
    // The server creates the logs one by one after it provisions: waiting for "every tail is
    // local" alone once saw 22 of the 24 logs (CI, 29 Nov).
    let partitions = config.num_partitions as usize;
    wait_for(
        "every partition's log on a local segment",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            async move {
                let logs = client.logs().await?;
                Ok((logs.logs.len() == partitions && logs.all_tails_are(KIND_LOCAL)).then_some(()))
            }
        },
    )
    .await;

    let began = Instant::now();
    let change = client.set_log_provider_replicated(1).await.unwrap();
    assert!(change.changed());
    assert_eq!(change.before.log_provider, KIND_LOCAL);
    let shown = tree_values(&restatectl(&url, &["config", "get"]));
    assert_eq!(shown["Logs Provider"], "replicated");
    assert_eq!(shown["Log replication"], "{node: 1}");

    wait_for("every tail replicated", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            Ok(client
                .logs()
                .await?
                .all_tails_are(KIND_REPLICATED)
                .then_some(()))
        }
    })
    .await;
    let moved = began.elapsed();
    let logs = client.logs().await.unwrap();
    assert_eq!(logs.logs_holding(KIND_LOCAL).len(), logs.logs.len());

    let began = Instant::now();
    let report = client
        .snapshot_all_partitions(true, Retry::default())
        .await
        .unwrap();
    let snapshotted = began.elapsed();
    let failures: Vec<String> = report
        .failures()
        .map(|(p, e)| format!("{p}: {e}"))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(report.outcomes.len(), config.num_partitions as usize);
    let keys = s3.keys("snaps");
    for outcome in &report.outcomes {
        let snapshot = outcome.result.as_ref().unwrap();
        assert!(
            keys.iter().any(|key| key.contains(&snapshot.snapshot_id)),
            "snapshot {} of partition {} is not in the bucket: {keys:?}",
            snapshot.snapshot_id,
            outcome.partition_id
        );
    }

    let began = Instant::now();
    wait_for(
        "no chain holds a local segment",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move {
                Ok(client
                    .logs()
                    .await?
                    .logs_holding(KIND_LOCAL)
                    .is_empty()
                    .then_some(()))
            }
        },
    )
    .await;
    eprintln!(
        "local -> replicated: tails moved {moved:?}, {} snapshots {snapshotted:?}, local segments gone {:?}",
        report.outcomes.len(),
        began.elapsed()
    );

    // The other cluster of the same name now shares a repository path with the first one (as when a
    // lab is rebuilt): every partition must fail, each with the server's reason.
    let report = other
        .client()
        .snapshot_all_partitions(false, Retry::default())
        .await
        .unwrap();
    assert_eq!(report.outcomes.len(), report.failures().count());
    for outcome in &report.outcomes {
        let err = outcome.result.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("fingerprint mismatch"),
            "partition {}: {err}",
            outcome.partition_id
        );
    }
}

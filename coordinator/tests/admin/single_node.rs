//! One auto-provisioned node: the client's view equals restatectl's, config changes show up in
//! restatectl, snapshot failures surface per partition, and any-node fallback names who answered.

use std::time::{Duration, Instant};

use restate_fleet::admin::{
    self, AdminClient, AdminError, KIND_REPLICATED, NodeStatus, Retry, RoleStatus, Timeouts,
};

use crate::harness::{
    Node, NodeSpec, free_port, restatectl, table, tree_values, wait_until_partitions_led,
    wait_until_ready,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_view_matches_restatectl() {
    let node = Node::start(
        NodeSpec {
            cluster: "adm-single",
            name: "solo",
            auto_provision: true,
            extra: String::new(),
        },
        free_port(),
    );
    let started = Instant::now();
    wait_until_ready(&node).await;
    eprintln!("single node ready after {:?}", started.elapsed());
    // restatectl counts partitions still taking over as "10+14": compare once all have a leader.
    wait_until_partitions_led(&node).await;
    let url = node.url();
    let client = node.client();

    // Identity and readiness.
    let ident = client.ident().await.unwrap();
    assert_eq!(ident.status, NodeStatus::Alive);
    assert_eq!(ident.cluster_name, "adm-single");
    assert_eq!(ident.admin_status, RoleStatus::Ready);
    assert_eq!(ident.metadata_server_status, RoleStatus::Member);
    let node_id = ident.node_id.expect("a provisioned node has an id");

    // The gathered view against `restatectl status`.
    let began = Instant::now();
    let view = admin::gather(std::slice::from_ref(&client)).await.unwrap();
    eprintln!("gather (1 node) took {:?}", began.elapsed());
    assert_eq!(view.answered_by, url);
    assert_eq!(view.cluster_name, "adm-single");
    assert!(view.unreachable.is_empty(), "{:?}", view.unreachable);
    assert!(view.is_healthy("solo"));
    let solo = view.node("solo").unwrap();
    assert_eq!(solo.id, node_id.id);
    let status = restatectl(&url, &["status"]);
    let rows = table(&status, "NODE-ID");
    assert_eq!(rows.len(), 1, "{status}");
    let row = &rows[0];
    assert_eq!(row["NODE-ID"], format!("N{}:{}", solo.id, solo.generation));
    assert_eq!(row["NAME"], "solo");
    assert_eq!(row["METADATA"], "Member");
    assert_eq!(
        row["LEADER"],
        solo.leader_partitions.to_string(),
        "{status}"
    );
    assert_eq!(
        row["FOLLOWER"],
        solo.follower_partitions.to_string(),
        "{status}"
    );

    // The metadata cluster against `restatectl metadata-server list-servers`.
    let servers = restatectl(&url, &["metadata-server", "list-servers"]);
    let rows = table(&servers, "NODE");
    assert_eq!(rows.len(), 1, "{servers}");
    let ms = client.metadata_server_status().await.unwrap();
    assert!(ms.is_member());
    assert_eq!(rows[0]["STATUS"], "Member");
    assert_eq!(rows[0]["LEADER"], format!("N{}", ms.leader.unwrap()));
    assert_eq!(rows[0]["MEMBERS"], format!("[N{}]", ms.members[0]));
    assert_eq!(view.metadata.members, vec![node_id.id]);

    // The cluster configuration against `restatectl config get`.
    assert_config_matches_restatectl(&client, &url).await;

    // The logs against `restatectl logs list`.
    let logs = client.logs().await.unwrap();
    let listed = restatectl(&url, &["logs", "list"]);
    let rows = table(&listed, "L-ID");
    assert_eq!(rows.len(), logs.logs.len(), "{listed}");
    for row in rows {
        let id: u32 = row["L-ID"].parse().unwrap();
        let chain = &logs.logs[&id];
        let tail = chain.tail().unwrap();
        assert_eq!(row["SEGMENTS"], chain.segments.len().to_string());
        assert_eq!(row["KIND"], tail.kind);
        assert_eq!(row["REPLICATION"], tail.replication.clone().unwrap());
        let nodeset: Vec<String> = tail.nodeset.iter().map(|n| format!("N{n}")).collect();
        assert_eq!(row["NODESET"], format!("[{}]", nodeset.join(",")));
    }
    assert!(logs.all_tails_are(KIND_REPLICATED));
    assert_eq!(view.logs.count, logs.logs.len());
    assert!(view.logs.all_tails_replicated);

    // A change made through the client is what restatectl then shows; the same change again is
    // no change.
    let change = client
        .update_cluster_config(|config| config.nodeset_size = 1)
        .await
        .unwrap();
    assert!(change.changed());
    assert_eq!(
        tree_values(&restatectl(&url, &["config", "get"]))["Nodeset size"],
        "1"
    );
    assert_config_matches_restatectl(&client, &url).await;
    let again = client.set_replication(1, 1).await.unwrap();
    assert!(!again.changed(), "{again:?}");

    // No snapshot repository: every partition reports the server's reason, none is retried.
    let report = client
        .snapshot_all_partitions(true, Retry::default())
        .await
        .unwrap();
    assert_eq!(report.outcomes.len(), view.config.num_partitions as usize);
    assert_eq!(report.failures().count(), report.outcomes.len());
    for outcome in &report.outcomes {
        let err = outcome.result.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("Snapshot repository is not configured"),
            "{err}"
        );
        assert_eq!(outcome.attempts, 1);
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["outcomes"][0]["result"]["error"].is_string(), "{json}");

    // Already provisioned.
    let provisioned = client
        .provision_cluster(&admin::Provision::default())
        .await
        .unwrap();
    assert_eq!(provisioned, admin::Provisioned::AlreadyProvisioned);

    // Any node that can answer: a dead address first, then this node.
    let dead = AdminClient::lazy(
        &format!("127.0.0.1:{}", free_port()),
        Timeouts {
            connect: Duration::from_millis(500),
            call: Duration::from_secs(2),
        },
    )
    .unwrap();
    let answered = admin::first_answer(
        &[dead.clone(), client.clone()],
        "GetIdent",
        |c| async move { c.ident().await },
    )
    .await
    .unwrap();
    assert_eq!(answered.answered_by, url);
    assert_eq!(answered.value.node_id, Some(node_id));
    let view = admin::gather(&[dead.clone(), client.clone()])
        .await
        .unwrap();
    assert_eq!(view.answered_by, url);
    assert_eq!(view.unreachable.len(), 1);
    assert_eq!(view.unreachable[0].address, dead.address());
    let none = admin::first_answer(std::slice::from_ref(&dead), "GetIdent", |c| async move {
        c.ident().await
    })
    .await
    .unwrap_err();
    assert!(matches!(none, AdminError::NoNodeAnswered { .. }), "{none}");
    assert!(none.is_transient());
    assert!(none.to_string().contains(dead.address()), "{none}");

    // Latency of single calls, for the report.
    for _ in 0..3 {
        let began = Instant::now();
        client.ident().await.unwrap();
        let ident_took = began.elapsed();
        let began = Instant::now();
        client.cluster_state().await.unwrap();
        eprintln!(
            "GetIdent {ident_took:?}, GetClusterState {:?}",
            began.elapsed()
        );
    }
}

async fn assert_config_matches_restatectl(client: &AdminClient, url: &str) {
    let config = client.cluster_config().await.unwrap();
    let shown = tree_values(&restatectl(url, &["config", "get"]));
    assert_eq!(
        shown["Number of partitions"],
        config.num_partitions.to_string()
    );
    assert_eq!(
        Some(&shown["Partition replication"]),
        config.partition_replication.as_ref()
    );
    assert_eq!(shown["Logs Provider"], config.log_provider);
    assert_eq!(
        Some(&shown["Log replication"]),
        config.log_replication.as_ref()
    );
    assert_eq!(shown["Nodeset size"], config.nodeset_size.to_string());
}

/// A test that panics still ends the servers it started (the guards' Drop runs while unwinding).
#[test]
fn a_panicking_test_still_stops_its_server() {
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let node = Node::start(
            NodeSpec {
                cluster: "adm-panic",
                name: "doomed",
                auto_provision: true,
                extra: String::new(),
            },
            free_port(),
        );
        pid_tx.send(node.pid()).unwrap();
        panic!("failing on purpose with restate-server running");
    })
    .join();
    assert!(outcome.is_err());
    let pid = pid_rx.recv().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "restate-server {pid} outlived the panicking test"
    );
}

/// Right after start the admin role answers an empty cluster state; the client must call that
/// "not ready", and never hand out an empty node list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_state_before_readiness_is_not_ready_never_empty() {
    let node = Node::start(
        NodeSpec {
            cluster: "adm-early",
            name: "early",
            auto_provision: true,
            extra: String::new(),
        },
        free_port(),
    );
    let client = node.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut not_ready = 0;
    loop {
        match client.cluster_state().await {
            Ok(state) => {
                assert!(!state.nodes.is_empty());
                assert!(state.nodes_config_version > 0);
                break;
            }
            Err(AdminError::NotReady { .. }) => not_ready += 1,
            Err(err) => assert!(err.is_transient(), "{err}"),
        }
        assert!(Instant::now() < deadline, "{}", node.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("cluster state answered NotReady {not_ready} times before it was populated");
}

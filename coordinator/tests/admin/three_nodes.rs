//! Three nodes on loopback, none provisioning itself: the client provisions the cluster, names map
//! to the ids the cluster handed out, every node is alive and a metadata member, and a stopped node
//! shows as dead.

use std::time::{Duration, Instant};

use restate_fleet::admin::{self, AdminClient, Provision, Provisioned};

use crate::harness::{Node, NodeSpec, free_port, restatectl, table, tree_values, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_alive_then_a_stopped_one_dead() {
    let ports = [free_port(), free_port(), free_port()];
    let addresses: Vec<String> = ports
        .iter()
        .map(|port| format!("\"http://127.0.0.1:{port}/\""))
        .collect();
    let metadata_client = format!(
        "[metadata-client]\naddresses = [{}]\n",
        addresses.join(", ")
    );
    let mut nodes: Vec<Node> = ["m1", "m2", "m3"]
        .iter()
        .zip(ports)
        .map(|(name, port)| {
            Node::start(
                NodeSpec {
                    cluster: "adm-three",
                    name,
                    auto_provision: false,
                    extra: metadata_client.clone(),
                },
                port,
            )
        })
        .collect();
    let clients: Vec<AdminClient> = nodes.iter().map(Node::client).collect();

    // A cluster made from zero: a dry run first changes nothing, then the real provisioning.
    let provision = Provision {
        num_partitions: Some(6),
        log_replication: Some(1),
        ..Provision::default()
    };
    let dry_run = Provision {
        dry_run: true,
        ..provision.clone()
    };
    let planned = wait_for(
        "a dry-run provisioning answer",
        Duration::from_secs(60),
        || {
            let client = clients[0].clone();
            let dry_run = dry_run.clone();
            async move { Ok(Some(client.provision_cluster(&dry_run).await?)) }
        },
    )
    .await;
    let Provisioned::Now(planned) = planned else {
        panic!("a dry run on a fresh node must not find a cluster: {planned:?}")
    };
    assert_eq!(planned.num_partitions, 6);
    let began = Instant::now();
    let provisioned = clients[0].provision_cluster(&provision).await.unwrap();
    assert_eq!(provisioned, Provisioned::Now(planned));
    // Asked again, the same node knows. (Another fresh node asked now answers as if it had
    // provisioned, and the cluster never converges: measured, so provision through one node only.)
    assert_eq!(
        clients[0].provision_cluster(&provision).await.unwrap(),
        Provisioned::AlreadyProvisioned
    );

    let view = wait_for(
        "three nodes alive and members",
        Duration::from_secs(120),
        || {
            let clients = clients.clone();
            async move {
                let view = admin::gather(&clients).await?;
                let ready = view.nodes.len() == 3
                    && ["m1", "m2", "m3"].iter().all(|name| view.is_healthy(name))
                    && view
                        .nodes
                        .iter()
                        .all(|n| n.ident.as_ref().is_some_and(|i| i.is_alive()));
                Ok(ready.then_some(view))
            }
        },
    )
    .await;
    eprintln!(
        "three nodes alive and members {:?} after provisioning",
        began.elapsed()
    );
    assert_eq!(view.config.num_partitions, 6);
    let shown = tree_values(&restatectl(&nodes[0].url(), &["config", "get"]));
    assert_eq!(shown["Number of partitions"], "6");
    let began = Instant::now();
    admin::gather(&clients).await.unwrap();
    eprintln!("gather (3 nodes) took {:?}", began.elapsed());
    let status = restatectl(&nodes[0].url(), &["status"]);
    let rows = table(&status, "NODE-ID");
    assert_eq!(rows.len(), 3, "{status}");
    for node in &view.nodes {
        let row = rows
            .iter()
            .find(|row| row["NAME"] == node.name)
            .unwrap_or_else(|| panic!("{} missing in:\n{status}", node.name));
        assert_eq!(row["NODE-ID"], format!("N{}:{}", node.id, node.generation));
        assert_eq!(row["METADATA"], "Member");
        // Each node's own answer agrees with the nodes configuration about who it is.
        let ident = node.ident.as_ref().unwrap();
        assert_eq!(ident.node_id.map(|id| id.id), Some(node.id));
    }
    assert_eq!(view.metadata.members.len(), 3);
    let leader = view
        .metadata
        .leader
        .expect("the metadata cluster has a leader");

    // The metadata membership through Restate's own RPCs, as restatectl's `metadata-server
    // remove-node` and `add-node` send them, judged by restatectl: a member that is not the
    // leader leaves (asked of the leader), then joins again (asked of itself).
    let leaving = view
        .nodes
        .iter()
        .find(|n| n.id != leader)
        .cloned()
        .expect("a member that does not lead");
    let by_name = |name: &str| {
        nodes
            .iter()
            .position(|n| n.name == name)
            .expect("the node's process")
    };
    let name_of = |view: &admin::ClusterView, id: u32| {
        view.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.name.clone())
            .expect("the leader is a node")
    };
    let leader_name = name_of(&view, leader);
    clients[by_name(&leader_name)]
        .remove_metadata_member(leaving.id)
        .await
        .unwrap();
    // restatectl's view: the leader's row lists the members; the node's own row its status.
    let servers = |want_member: bool| {
        let url = nodes[by_name(&leader_name)].url();
        let (id, leader) = (format!("N{}", leaving.id), format!("N{leader}"));
        async move {
            wait_for("the metadata membership", Duration::from_secs(60), || {
                let url = url.clone();
                let (id, leader) = (id.clone(), leader.clone());
                async move {
                    let out = restatectl(&url, &["metadata-server", "list-servers"]);
                    let rows = table(&out, "NODE");
                    let row = |node: &str| rows.iter().find(|r| r["NODE"] == node).cloned();
                    let listed = row(&leader).is_some_and(|r| {
                        r["MEMBERS"]
                            .trim_matches(['[', ']'])
                            .split(',')
                            .any(|m| m == id)
                    });
                    let status = row(&id).map(|r| r["STATUS"].clone());
                    let expected = if want_member { "Member" } else { "Standby" };
                    Ok(
                        (listed == want_member && status.as_deref() == Some(expected))
                            .then_some(rows.len()),
                    )
                }
            })
            .await
        }
    };
    assert_eq!(
        servers(false).await,
        3,
        "three metadata servers, one a standby"
    );
    // Asked again, a node that is no member is not an error (as restatectl has it).
    clients[by_name(&leader_name)]
        .remove_metadata_member(leaving.id)
        .await
        .unwrap();
    clients[by_name(&leaving.name)]
        .join_metadata_cluster()
        .await
        .unwrap();
    assert_eq!(servers(true).await, 3, "three members again");
    // A member asked to join again: already one, not an error.
    clients[by_name(&leaving.name)]
        .join_metadata_cluster()
        .await
        .unwrap();

    // The leader leaves, asked of itself (a node the inventory dropped may be the leader):
    // Restate takes it, another member leads, and it joins again.
    let view = admin::gather(&clients).await.unwrap();
    let leader = view.metadata.leader.expect("a leader");
    let leader_name = name_of(&view, leader);
    clients[by_name(&leader_name)]
        .remove_metadata_member(leader)
        .await
        .unwrap();
    let others: Vec<_> = clients
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != by_name(&leader_name))
        .map(|(_, c)| c.clone())
        .collect();
    wait_for(
        "another leader, two members",
        Duration::from_secs(60),
        || {
            let others = others.clone();
            async move {
                let view = admin::gather(&others).await?;
                let moved = view.metadata.leader.is_some_and(|l| l != leader)
                    && !view.metadata.members.contains(&leader)
                    && view.metadata.members.len() == 2;
                Ok(moved.then_some(()))
            }
        },
    )
    .await;
    clients[by_name(&leader_name)]
        .join_metadata_cluster()
        .await
        .unwrap();
    wait_for("three members again", Duration::from_secs(60), || {
        let clients = clients.clone();
        async move {
            let view = admin::gather(&clients).await?;
            Ok((view.metadata.members.len() == 3).then_some(()))
        }
    })
    .await;

    let stopped_name = nodes[2].name.clone();
    let stopped_id = view.node(&stopped_name).unwrap().id;
    nodes[2].stop();
    let began = Instant::now();
    let view = wait_for("the stopped node dead", Duration::from_secs(90), || {
        let clients = clients.clone();
        let stopped_name = stopped_name.clone();
        async move {
            let view = admin::gather(&clients).await?;
            let dead = view.node(&stopped_name).is_some_and(|n| !n.alive);
            Ok(dead.then_some(view))
        }
    })
    .await;
    eprintln!("stopped node seen dead after {:?}", began.elapsed());
    assert!(!view.all_alive());
    assert!(!view.is_healthy(&stopped_name));
    assert_eq!(view.unreachable.len(), 1);
    let state = clients[0].cluster_state().await.unwrap();
    assert!(!state.is_alive(stopped_id));
    assert_eq!(state.alive_nodes().count(), 2);
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
}

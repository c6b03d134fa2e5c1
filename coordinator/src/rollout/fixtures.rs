//! Test fixtures of the rollout's decision tests: fleets from a few lines of inventory, and
//! cluster views recorded on a lab (the JSON documents render/'s tests read).

use restate_fleet_inventory::Fleet;
use restate_fleet_proto::agent::Facts;
use serde_json::json;

use crate::admin::{ClusterConfig, ClusterView, LogsSummary, MetadataView, NodeView};

/// A fleet of `hosts` (10.0.0.1, .2, ...) with every role, `cluster_extra` added to `[cluster]`.
pub fn fleet(cluster_extra: &str, hosts: &[&str]) -> Fleet {
    let mut text =
        format!("[cluster]\nname = \"c\"\n{cluster_extra}\n[defaults]\nuser = \"root\"\n");
    for (i, h) in hosts.iter().enumerate() {
        text.push_str(&format!("[hosts.{h}]\naddress = \"10.0.0.{}\"\n", i + 1));
    }
    match restate_fleet_inventory::parse("inventory.toml", &text, &|_| None) {
        Ok(loaded) => loaded.fleet,
        Err(e) => panic!("{e:?}\n{text}"),
    }
}

/// A cluster view recorded on the lab: `grown` (three nodes), `single` (one 1.6.2 node).
pub fn view(which: &str) -> ClusterView {
    let name = match which {
        "grown" => "status-grown",
        "single" => "check-grow",
        other => panic!("{other}"),
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/render")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut view: ClusterView =
        serde_json::from_value(value["cluster"].clone()).unwrap_or_else(|e| panic!("{e}"));
    // Which joining node got which id is a race on the lab: the cases count on the names' order.
    view.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    view
}

/// What the agent reports of a host, with only the parts a case sets.
pub fn facts(extra: serde_json::Value) -> Facts {
    let mut base = json!({
        "agent_version": "0.1.0", "os": "linux", "arch": "x86_64",
        "config": { "path": "/etc/restate/restate.toml", "exists": true, "values": {} },
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap_or_else(|e| panic!("{e}"))
}

/// Node N`id`, named n`id`, at 10.0.0.`id`: an alive worker holding nothing; cases change fields.
pub fn node(id: u32) -> NodeView {
    NodeView {
        id,
        name: format!("n{id}"),
        address: format!("http://10.0.0.{id}:5122/"),
        roles: vec!["worker".into()],
        alive: true,
        generation: 1,
        uptime_s: None,
        leader_partitions: 0,
        follower_partitions: 0,
        metadata_member: false,
        worker_state: None,
        storage_state: None,
        metadata_server_state: None,
        location: None,
        ident: None,
        metadata_server: None,
    }
}

/// A cluster of `nodes`; `members` form its metadata cluster, the first leads it.
pub fn cluster(nodes: Vec<NodeView>, members: &[u32]) -> ClusterView {
    ClusterView {
        answered_by: "n1".into(),
        cluster_name: "c".into(),
        nodes_config_version: 1,
        nodes,
        metadata: MetadataView {
            members: members.to_vec(),
            leader: members.first().copied(),
        },
        config: ClusterConfig::default(),
        logs: LogsSummary::default(),
        unreachable: Vec::new(),
    }
}

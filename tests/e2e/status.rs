//! `restate-fleet status` says what restatectl says about the same cluster: nodes, generations,
//! metadata members, partition leaders, the configuration and the logs' segment kinds; and a
//! stopped node shows dead.

use std::time::Duration;

use lab::{Kind, Lab, Spec};
use serde_json::Value;

use crate::harness::{self, assert_exit, fleet, restatectl_until, stdout};

const WAIT: Duration = Duration::from_secs(60);

fn status_json(lab: &Lab, expect_exit: i32) -> Value {
    let out = fleet(lab, &["status", "--output", "json"]);
    assert_exit(&out, expect_exit, "status");
    serde_json::from_slice(&out.stdout).expect("status prints one JSON document")
}

/// `restatectl status` rows: (N<id>:<generation>, name, metadata column, leaders).
fn restatectl_nodes(text: &str) -> Vec<(String, String, String, u64)> {
    text.lines()
        .map(str::split_whitespace)
        .filter_map(|mut cols| {
            let id = cols.next()?;
            if !id.starts_with('N') || !id.contains(':') {
                return None;
            }
            let name = cols.next()?.to_string();
            let _uptime = cols.next()?;
            let metadata = cols.next()?.to_string();
            let leaders = cols.next()?.parse().ok()?;
            Some((id.to_string(), name, metadata, leaders))
        })
        .collect()
}

/// `Name: value` lines of `restatectl config get`.
fn config_value(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.split_once(&format!("{name}: "))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name:?} in\n{text}"))
}

fn compare_with_restatectl(lab: &Lab, host: &str) {
    // Partitions settle into leaders after a start; compare once restatectl sees them all led.
    let text = restatectl_until(lab, host, &["status"], WAIT, |out| {
        restatectl_nodes(out).iter().map(|n| n.3).sum::<u64>() == 24
    });
    let json = status_json(lab, 0);
    let ours = json["cluster"]["nodes"].as_array().expect("nodes").clone();
    let theirs = restatectl_nodes(&text);
    assert_eq!(ours.len(), theirs.len(), "{text}\n{json}");
    for (id, name, metadata, _) in &theirs {
        let node = ours
            .iter()
            .find(|n| n["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from status: {json}"));
        assert_eq!(&format!("N{}:{}", node["id"], node["generation"]), id);
        assert_eq!(
            node["metadata_member"] == true,
            metadata == "Member",
            "{name}"
        );
        assert_eq!(node["alive"], true);
    }
    let leaders: u64 = ours
        .iter()
        .map(|n| n["leader_partitions"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(leaders, 24, "{json}");

    let config = stdout(
        &lab.restatectl(host, &["config", "get"])
            .expect("config get"),
    );
    let c = &json["cluster"]["config"];
    assert_eq!(
        config_value(&config, "Number of partitions"),
        c["num_partitions"].to_string()
    );
    assert_eq!(
        config_value(&config, "Partition replication"),
        c["partition_replication"].as_str().unwrap_or("-")
    );
    assert_eq!(
        config_value(&config, "Logs Provider"),
        c["log_provider"].as_str().unwrap_or("-")
    );
    assert_eq!(
        config_value(&config, "Log replication"),
        c["log_replication"].as_str().unwrap_or("-")
    );

    let logs = stdout(&lab.restatectl(host, &["logs", "list"]).expect("logs list"));
    let replicated_rows = logs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.first().is_some_and(|c| c.parse::<u32>().is_ok()))
        .filter(|cols| cols.get(3) == Some(&"replicated"))
        .count();
    assert_eq!(
        json["cluster"]["logs"]["tail_kinds"]["replicated"].as_u64(),
        Some(replicated_rows as u64),
        "{logs}\n{json}"
    );
}

#[test]
fn one_node_status_matches_restatectl() {
    let lab = harness::lab(Spec::new(1).with(1, Kind::Existing));
    compare_with_restatectl(&lab, "n1");
    let table = stdout(&fleet(&lab, &["status"]));
    assert!(
        table.contains("n1")
            && table.contains("alive")
            && table.contains("log provider replicated"),
        "{table}"
    );
}

#[test]
fn three_node_status_matches_restatectl_and_shows_a_stopped_node_dead() {
    let lab = harness::lab(Spec::new(3));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "apply from zero");
    compare_with_restatectl(&lab, "n1");

    lab.host("n2").stop_restate().expect("stop n2");
    let text = restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
    let json = status_json(&lab, 1);
    let n2 = json["cluster"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == "n2"))
        .cloned()
        .unwrap_or_else(|| panic!("n2 missing: {json}"));
    assert_eq!(
        n2["alive"], false,
        "restatectl says:\n{text}\nstatus says: {json}"
    );
}

//! `restate-fleet status`: the cluster as its admin API sees it, matched with the inventory:
//! inventory hosts the cluster does not know and nodes the inventory lacks are both shown.

use serde::Serialize;

use super::Outcome;
use crate::admin::{self, ClusterView};
use crate::cli::{Global, Output};
use crate::progress::Progress;

#[derive(Serialize)]
struct StatusReport<'a> {
    cluster: Option<&'a ClusterView>,
    /// Inventory hosts whose node-name the cluster does not know.
    unknown_to_cluster: Vec<String>,
    /// Cluster nodes no inventory host names.
    not_in_inventory: Vec<String>,
    unreachable: Vec<(String, String)>,
    error: Option<String>,
}

pub async fn run(global: &Global) -> anyhow::Result<Outcome> {
    let loaded = super::inventory::load(global)?;
    let fleet = &loaded.fleet;
    let hosts: Vec<_> = super::inventory::select(global, fleet)?
        .into_iter()
        .cloned()
        .collect();
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, unreachable, _) =
        super::reach_hosts(global, fleet, &hosts, false, &progress).await?;
    let clients: Vec<_> = reached.iter().map(|r| r.admin.clone()).collect();
    let (view, error) = match admin::gather(&clients).await {
        Ok(view) => (Some(view), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let names: Vec<&str> = hosts.iter().map(|h| h.node_name.as_str()).collect();
    let report = StatusReport {
        unknown_to_cluster: view
            .as_ref()
            .map(|v| {
                hosts
                    .iter()
                    .filter(|h| v.node(&h.node_name).is_none())
                    .map(|h| h.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
        not_in_inventory: view
            .as_ref()
            .map(|v| {
                v.nodes
                    .iter()
                    .filter(|n| !names.contains(&n.name.as_str()))
                    .map(|n| n.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
        cluster: view.as_ref(),
        unreachable,
        error,
    };
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(view) = &view {
            print!("{}", table(view));
        }
        for host in &report.unknown_to_cluster {
            println!("{host}: in the inventory, unknown to the cluster");
        }
        for node in &report.not_in_inventory {
            println!("{node}: a node of the cluster, not in the inventory");
        }
        for (host, why) in &report.unreachable {
            println!("{host}: unreachable: {why}");
        }
        if let Some(err) = &report.error {
            println!("error: {err}");
        }
    }
    let healthy = view.as_ref().is_some_and(|v| v.all_alive())
        && report.unknown_to_cluster.is_empty()
        && report.unreachable.is_empty();
    Ok(if healthy {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// The status table: one row per node, then the cluster configuration.
pub fn table(view: &ClusterView) -> String {
    let mut rows = vec![
        [
            "NODE", "ID", "ADDRESS", "STATE", "UPTIME", "METADATA", "LEADER", "FOLLOWER", "ROLES",
        ]
        .map(String::from),
    ];
    for node in &view.nodes {
        let metadata = if view.metadata.leader == Some(node.id) {
            "leader"
        } else if node.metadata_member {
            "member"
        } else if node.runs_metadata_server() && node.is_metadata_standby() {
            "standby"
        } else {
            "-"
        };
        rows.push([
            node.name.clone(),
            format!("N{}:{}", node.id, node.generation),
            node.address.clone(),
            if node.alive { "alive" } else { "dead" }.to_string(),
            node.uptime_s
                .map(|s| format!("{s}s"))
                .unwrap_or_else(|| "-".into()),
            metadata.to_string(),
            node.leader_partitions.to_string(),
            node.follower_partitions.to_string(),
            node.roles.join(","),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let c = &view.config;
    out.push_str(&format!(
        "cluster {}: {} partitions, partition replication {}, log provider {}, log replication {}, nodeset size {}\n",
        view.cluster_name,
        c.num_partitions,
        c.partition_replication.as_deref().unwrap_or("-"),
        c.log_provider,
        c.log_replication.as_deref().unwrap_or("-"),
        if c.nodeset_size == 0 { "auto".to_string() } else { c.nodeset_size.to_string() },
    ));
    let kinds: Vec<String> = view
        .logs
        .tail_kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    out.push_str(&format!(
        "logs: {} ({} tails)\n",
        view.logs.count,
        kinds.join(", ")
    ));
    out.push_str(&format!("answered by {}\n", view.answered_by));
    out
}

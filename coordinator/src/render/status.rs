//! `status`: the cluster as its admin API sees it, and how it matches the inventory.

use serde::{Deserialize, Serialize};

use crate::admin::ClusterView;

#[derive(Serialize, Deserialize)]
pub struct StatusReport {
    pub cluster: Option<ClusterView>,
    /// Inventory hosts whose node-name the cluster does not know.
    pub unknown_to_cluster: Vec<String>,
    /// Cluster nodes no inventory host names.
    pub not_in_inventory: Vec<String>,
    pub unreachable: Vec<(String, String)>,
    pub error: Option<String>,
    /// Each reached host's last line of its audit log (what restate-fleet last changed there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_changes: Vec<LastChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastChange {
    pub host: String,
    /// The audit line as the agent wrote it.
    pub line: serde_json::Value,
}

impl LastChange {
    fn text(&self) -> String {
        let field = |name: &str| self.line[name].as_str().unwrap_or_default().to_string();
        let keys: Vec<&str> = self.line["keys"]
            .as_array()
            .map(|k| k.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        let mut text = format!("{} {}", field("at"), field("change"));
        if !keys.is_empty() {
            text.push_str(&format!(" ({})", keys.join(", ")));
        }
        if self.line["restarted"] == true {
            text.push_str(", restarted");
        }
        text.push_str(&format!(": {}", field("result")));
        for (label, name) in [("by", "by"), ("from", "from"), ("run", "run")] {
            let value = field(name);
            if !value.is_empty() {
                text.push_str(&format!("; {label} {value}"));
            }
        }
        text
    }
}

pub fn status(report: &StatusReport) -> String {
    let mut out = report
        .cluster
        .as_ref()
        .map(cluster_table)
        .unwrap_or_default();
    for host in &report.unknown_to_cluster {
        out.push_str(&format!(
            "{host}: in the inventory, unknown to the cluster\n"
        ));
    }
    for node in &report.not_in_inventory {
        out.push_str(&format!(
            "{node}: a node of the cluster, not in the inventory\n"
        ));
    }
    for (host, why) in &report.unreachable {
        out.push_str(&format!("{host}: unreachable: {why}\n"));
    }
    for node in report
        .cluster
        .iter()
        .flat_map(|v| &v.nodes)
        .filter(|n| !n.alive)
    {
        out.push_str(&dead_node_repair(
            &node.name,
            node.id,
            report.not_in_inventory.contains(&node.name),
        ));
    }
    if !report.last_changes.is_empty() {
        out.push_str("LAST CHANGE (each host's audit log)\n");
        let rows: Vec<[String; 2]> = report
            .last_changes
            .iter()
            .map(|c| [format!("  {}", c.host), c.text()])
            .collect();
        out.push_str(&super::table(&rows));
    }
    if let Some(err) = &report.error {
        out.push_str(&format!("error: {err}\n"));
    }
    out
}

/// What to do about a dead node, by the cases of docs/day-two.md.
fn dead_node_repair(name: &str, id: u32, left_inventory: bool) -> String {
    if left_inventory {
        return format!(
            "{name} (N{id}): dead, and no inventory host names it: `restate-fleet apply` removes it from the cluster when the others hold its data\n"
        );
    }
    format!(
        "{name} (N{id}): dead. Its server stopped: `restate-fleet apply` starts it. Its host is gone for good: take it out of the inventory (add a replacement host if you like) and `restate-fleet apply` removes it. Its disk was wiped: `restate-fleet apply` removes the old node and joins the host again as a new one; see docs/day-two.md\n"
    )
}

/// The status table: one row per node, then the cluster configuration.
pub fn cluster_table(view: &ClusterView) -> String {
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
    let mut out = super::table(&rows);
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

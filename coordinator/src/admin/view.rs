//! Everything `status` and the rollout's health gates need, gathered in one pass: each node asked
//! for itself (in parallel, since every call costs ~44 ms), and the cluster-wide facts from the first
//! admin node that can answer them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::any_node::first_answer;
use super::cluster_state::{ClusterState, NodeLiveness};
use super::config::ClusterConfig;
use super::ident::NodeIdent;
use super::logs::{KIND_LOCAL, KIND_REPLICATED, Logs};
use super::metadata_cluster::MetadataServerState;
use super::nodes_config::NodesConfiguration;
use super::{AdminClient, AdminError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    /// Address of the admin node that answered the cluster-wide calls.
    pub answered_by: String,
    pub cluster_name: String,
    pub nodes_config_version: u32,
    /// Every node in the nodes configuration, by plain id.
    pub nodes: Vec<NodeView>,
    pub metadata: MetadataView,
    pub config: ClusterConfig,
    pub logs: LogsSummary,
    /// Addresses that could not be asked for their own identity, with the reason.
    pub unreachable: Vec<Unreachable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u32,
    pub name: String,
    /// Advertised fabric address.
    pub address: String,
    pub roles: Vec<String>,
    /// As the cluster controller sees it.
    pub alive: bool,
    pub generation: u32,
    pub uptime_s: Option<u64>,
    pub leader_partitions: usize,
    pub follower_partitions: usize,
    /// Whether the metadata cluster lists this node as a member.
    pub metadata_member: bool,
    /// From the nodes configuration: `active`, `draining`, ... (None: not said).
    pub worker_state: Option<String>,
    /// From the nodes configuration: `read-write`, `read-only`, ...
    pub storage_state: Option<String>,
    /// From the nodes configuration: `member`, `standby`, `provisioning` (a node registered with
    /// auto-join, which joins as soon as it runs a metadata server), ...
    pub metadata_server_state: Option<String>,
    /// From the nodes configuration: the location it registered (`region.zone`).
    pub location: Option<String>,
    /// The node's own answer, when one of the given clients reached it.
    pub ident: Option<NodeIdent>,
    /// The node's metadata server, when it runs one and was reached.
    pub metadata_server: Option<MetadataServerState>,
}

impl NodeView {
    pub fn runs_metadata_server(&self) -> bool {
        self.roles.iter().any(|r| r == "metadata-server")
    }

    /// The nodes configuration keeps it out of the metadata cluster until someone adds it.
    pub fn is_metadata_standby(&self) -> bool {
        self.metadata_server_state.as_deref() == Some(STANDBY)
    }
}

/// A metadata server's state in the nodes configuration when it is no member and joins only
/// when asked (`restatectl metadata-server add-node`).
pub const STANDBY: &str = "standby";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataView {
    pub members: Vec<u32>,
    pub leader: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogsSummary {
    pub count: usize,
    /// Number of logs per tail segment kind, e.g. `{"replicated": 24}`.
    pub tail_kinds: BTreeMap<String, usize>,
    pub all_tails_replicated: bool,
    /// Logs whose chain still holds a `local` segment.
    pub holding_local_segments: Vec<u32>,
    /// Per node (plain id), the number of logs with a segment whose nodeset names it.
    pub in_nodesets: BTreeMap<u32, usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unreachable {
    pub address: String,
    pub error: String,
}

impl ClusterView {
    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|node| node.name == name)
    }

    pub fn all_alive(&self) -> bool {
        self.nodes.iter().all(|node| node.alive)
    }

    /// Alive in the cluster state and, if it runs a metadata server, a member of the metadata
    /// cluster: the health gate of a rollout step. A standby (the nodes configuration says so:
    /// removed from the metadata cluster, or registered with auto-join = false) is healthy
    /// without being a member; a node registered to join (`provisioning`) is not until it did.
    pub fn is_healthy(&self, name: &str) -> bool {
        self.node(name).is_some_and(|node| {
            node.alive
                && (!node.roles.iter().any(|r| r == "metadata-server")
                    || node.metadata_member
                    || node.is_metadata_standby())
        })
    }
}

/// What each node says about itself, asked directly.
struct Probe {
    address: String,
    ident: Result<NodeIdent, AdminError>,
    metadata_server: Option<MetadataServerState>,
}

/// Cluster-wide facts, all from one admin node so that they are consistent with each other.
struct ClusterFacts {
    state: ClusterState,
    nodes: NodesConfiguration,
    config: ClusterConfig,
    logs: Logs,
}

/// Gathers the view. `clients` are tried in order for the cluster-wide calls; each is also asked
/// for its own identity. Fails only when no admin node could answer.
pub async fn gather(clients: &[AdminClient]) -> Result<ClusterView, AdminError> {
    let probes = probe_all(clients);
    let facts = first_answer(clients, "the cluster view", |client| async move {
        // One node's answers, asked at once: four round trips cost one.
        let (state, nodes, config, logs) = tokio::try_join!(
            client.cluster_state(),
            client.nodes_configuration(),
            client.cluster_config(),
            client.logs(),
        )?;
        Ok(ClusterFacts {
            state,
            nodes,
            config,
            logs,
        })
    });
    let (probes, facts) = tokio::join!(probes, facts);
    let facts = facts?;
    Ok(assemble(facts.value, facts.answered_by, probes))
}

async fn probe_all(clients: &[AdminClient]) -> Vec<Probe> {
    let mut tasks = JoinSet::new();
    for (index, client) in clients.iter().cloned().enumerate() {
        tasks.spawn(async move {
            // Both at once (each call can cost a ~40 ms delayed-ACK stall on the node's side);
            // the metadata status counts only for a node that runs a metadata server.
            let (ident, metadata_server) =
                tokio::join!(client.ident(), client.metadata_server_status());
            let runs_metadata = matches!(&ident, Ok(ident) if ident.has_role("metadata-server"));
            let metadata_server = metadata_server.ok().filter(|_| runs_metadata);
            let probe = Probe {
                address: client.address().to_owned(),
                ident,
                metadata_server,
            };
            (index, probe)
        });
    }
    let mut probes: Vec<(usize, Probe)> = tasks.join_all().await;
    probes.sort_by_key(|(index, _)| *index);
    probes.into_iter().map(|(_, probe)| probe).collect()
}

fn assemble(facts: ClusterFacts, answered_by: String, probes: Vec<Probe>) -> ClusterView {
    let mut unreachable = Vec::new();
    let mut by_id: BTreeMap<u32, (NodeIdent, Option<MetadataServerState>)> = BTreeMap::new();
    for probe in probes {
        match probe.ident {
            // A node of another cluster is none of this one's, whatever its id.
            Ok(ident) if ident.cluster_name != facts.nodes.cluster_name => {}
            Ok(ident) => {
                if let Some(id) = ident.node_id.map(|id| id.id) {
                    by_id.insert(id, (ident, probe.metadata_server));
                }
            }
            Err(err) => unreachable.push(Unreachable {
                address: probe.address,
                error: err.to_string(),
            }),
        }
    }
    let metadata = metadata_view(by_id.values().filter_map(|(_, ms)| ms.as_ref()));
    let nodes = facts
        .nodes
        .nodes
        .iter()
        .map(|(id, entry)| {
            let alive = match facts.state.nodes.get(id) {
                Some(NodeLiveness::Alive(alive)) => Some(alive),
                _ => None,
            };
            let (ident, metadata_server) = by_id.remove(id).unzip();
            NodeView {
                id: *id,
                name: entry.name.clone(),
                address: entry.address.clone(),
                roles: entry.roles.clone(),
                alive: alive.is_some(),
                generation: alive.map_or(entry.generation, |a| a.generation),
                uptime_s: alive.map(|a| a.uptime_s),
                leader_partitions: alive.map_or(0, |a| a.leader_of.len()),
                follower_partitions: alive.map_or(0, |a| a.follower_of.len()),
                metadata_member: metadata.members.contains(id),
                worker_state: entry.worker_state.clone(),
                storage_state: entry.storage_state.clone(),
                metadata_server_state: entry.metadata_server_state.clone(),
                location: entry.location.clone(),
                ident,
                metadata_server: metadata_server.flatten(),
            }
        })
        .collect();
    ClusterView {
        answered_by,
        cluster_name: facts.nodes.cluster_name,
        nodes_config_version: facts.nodes.version,
        nodes,
        metadata,
        config: facts.config,
        logs: summarize(&facts.logs),
        unreachable,
    }
}

/// The metadata cluster as its best-informed reachable member reports it.
fn metadata_view<'a>(servers: impl Iterator<Item = &'a MetadataServerState>) -> MetadataView {
    servers
        .filter(|server| server.is_member())
        .max_by_key(|server| server.configuration_version)
        .map(|server| MetadataView {
            members: server.members.clone(),
            leader: server.leader,
        })
        .unwrap_or_default()
}

fn summarize(logs: &Logs) -> LogsSummary {
    let mut tail_kinds = BTreeMap::new();
    for tail in logs.logs.values().filter_map(|chain| chain.tail()) {
        *tail_kinds.entry(tail.kind.clone()).or_insert(0) += 1;
    }
    LogsSummary {
        count: logs.logs.len(),
        tail_kinds,
        all_tails_replicated: logs.all_tails_are(KIND_REPLICATED),
        holding_local_segments: logs.logs_holding(KIND_LOCAL),
        in_nodesets: in_nodesets(logs),
    }
}

fn in_nodesets(logs: &Logs) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for chain in logs.logs.values() {
        let mut named: Vec<u32> = chain
            .segments
            .iter()
            .flat_map(|s| s.nodeset.iter().copied())
            .collect();
        named.sort_unstable();
        named.dedup();
        for node in named {
            *counts.entry(node).or_insert(0) += 1;
        }
    }
    counts
}

//! Node names, addresses and roles: the NodesConfiguration metadata (`GetMetadata`), the only place
//! that maps plain node ids to node names. Ids are handed out in join order, so `nK` is not `NK`.

use std::collections::BTreeMap;

use restate_fleet_proto::admin::restate::common::MetadataKind;
use restate_fleet_proto::admin::restate::node_ctl_svc::GetMetadataRequest;
use serde::{Deserialize, Serialize};

use super::envelope::decode_flexbuffers;
use super::{AdminClient, AdminError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodesConfiguration {
    pub version: u32,
    pub cluster_name: String,
    /// Keyed by plain node id; removed nodes (tombstones) are left out.
    pub nodes: BTreeMap<u32, NodeEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEntry {
    pub name: String,
    pub generation: u32,
    /// The advertised fabric address, e.g. `http://10.0.0.1:5122/`.
    pub address: String,
    pub roles: Vec<String>,
    /// e.g. `member`, `standby`; None for nodes without the metadata-server role config.
    pub metadata_server_state: Option<String>,
    pub binary_version: Option<String>,
    /// `active`, `draining`, ...; None when the configuration has none (older releases).
    pub worker_state: Option<String>,
    /// `read-write`, `read-only`, ...
    pub storage_state: Option<String>,
    /// Where the node registered itself (`region.zone`); None when it has no location.
    pub location: Option<String>,
}

impl NodesConfiguration {
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawNodesConfiguration = decode_flexbuffers(bytes)?;
        Ok(NodesConfiguration {
            version: raw.version,
            cluster_name: raw.cluster_name,
            nodes: raw
                .nodes
                .into_iter()
                .filter_map(|(id, slot)| slot.node().map(|node| (id, node.into())))
                .collect(),
        })
    }

    pub fn id_of(&self, name: &str) -> Option<u32> {
        self.nodes
            .iter()
            .find(|(_, node)| node.name == name)
            .map(|(id, _)| *id)
    }

    pub fn name_of(&self, id: u32) -> Option<&str> {
        self.nodes.get(&id).map(|node| node.name.as_str())
    }
}

impl AdminClient {
    pub async fn nodes_configuration(&self) -> Result<NodesConfiguration, AdminError> {
        let request = GetMetadataRequest {
            kind: MetadataKind::NodesConfiguration.into(),
        };
        let answer = self
            .call(
                "GetMetadata(NODES_CONFIGURATION)",
                self.node_ctl().get_metadata(self.request(request)),
            )
            .await?;
        NodesConfiguration::decode(&answer.encoded)
            .map_err(|reason| self.decode_error("the nodes configuration", reason))
    }
}

#[derive(Deserialize)]
struct RawNodesConfiguration {
    version: u32,
    cluster_name: String,
    nodes: Vec<(u32, RawSlot)>,
}

/// A slot holds `{"Node": {...}}`, or the string `"Tombstone"` once the node was removed
/// (`restatectl nodes remove`; seen on 1.7.12).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSlot {
    Node {
        #[serde(rename = "Node")]
        node: RawNode,
    },
    Other(String),
}

impl RawSlot {
    fn node(self) -> Option<RawNode> {
        match self {
            RawSlot::Node { node } => Some(node),
            RawSlot::Other(tag) => {
                tracing::debug!(slot = %tag, "nodes configuration: a slot without a node");
                None
            }
        }
    }
}

#[derive(Deserialize)]
struct RawNode {
    name: String,
    /// `[plain id, generation]`.
    current_generation: (u32, u32),
    address: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    metadata_server_config: Option<RawMetadataServerConfig>,
    #[serde(default)]
    binary_version: Option<String>,
    #[serde(default)]
    worker_config: Option<RawWorkerConfig>,
    #[serde(default)]
    log_server_config: Option<RawLogServerConfig>,
    /// `region.zone` as Restate prints it; empty when the node has none.
    #[serde(default)]
    location: String,
}

#[derive(Deserialize)]
struct RawWorkerConfig {
    worker_state: String,
}

#[derive(Deserialize)]
struct RawLogServerConfig {
    storage_state: String,
}

#[derive(Deserialize)]
struct RawMetadataServerConfig {
    metadata_server_state: String,
}

impl From<RawNode> for NodeEntry {
    fn from(raw: RawNode) -> Self {
        NodeEntry {
            name: raw.name,
            generation: raw.current_generation.1,
            address: raw.address,
            roles: raw.roles,
            metadata_server_state: raw.metadata_server_config.map(|c| c.metadata_server_state),
            binary_version: raw.binary_version,
            worker_state: raw.worker_config.map(|c| c.worker_state),
            storage_state: raw.log_server_config.map(|c| c.storage_state),
            location: Some(raw.location).filter(|l| !l.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from restate-server 1.7.12, single node `probe1`, cluster `adm-probe`.
    const SINGLE: &[u8] = include_bytes!("testdata/nodes-config-single.bin");
    /// Recorded from a 1.7.12 cluster whose nodes started in the order n1, n3, n2.
    const THREE_JOIN_ORDER: &[u8] = include_bytes!("testdata/nodes-config-three-join-order.bin");

    #[test]
    fn decodes_a_recorded_single_node_configuration() {
        let config = NodesConfiguration::decode(SINGLE).unwrap();
        assert_eq!(config.cluster_name, "adm-probe");
        assert_eq!(config.version, 4);
        assert_eq!(config.nodes.len(), 1);
        let node = &config.nodes[&1];
        assert_eq!(node.name, "probe1");
        assert_eq!(node.generation, 2);
        assert_eq!(node.address, "http://127.0.0.1:35122/");
        assert_eq!(node.metadata_server_state.as_deref(), Some("member"));
        assert_eq!(node.binary_version.as_deref(), Some("1.7.12"));
        assert_eq!(node.worker_state.as_deref(), Some("active"));
        assert_eq!(node.storage_state.as_deref(), Some("read-write"));
        assert_eq!(node.location, None);
        assert!(node.roles.iter().any(|r| r == "log-server"));
        assert_eq!(config.id_of("probe1"), Some(1));
        assert_eq!(config.name_of(1), Some("probe1"));
        assert_eq!(config.id_of("n1"), None);
    }

    #[test]
    fn ids_follow_join_order_not_names() {
        let config = NodesConfiguration::decode(THREE_JOIN_ORDER).unwrap();
        assert_eq!(config.cluster_name, "adm-fixture");
        let ids: Vec<(u32, &str)> = config
            .nodes
            .iter()
            .map(|(id, node)| (*id, node.name.as_str()))
            .collect();
        assert_eq!(ids, [(1, "n1"), (2, "n3"), (3, "n2")]);
        assert_eq!(config.id_of("n2"), Some(3));
        assert_eq!(config.nodes[&3].address, "http://127.0.0.1:36222/");
        assert_eq!(config.nodes[&2].generation, 1);
        assert!(
            config
                .nodes
                .values()
                .all(|n| n.metadata_server_state.as_deref() == Some("member"))
        );
    }

    /// As a cluster has it after `restatectl nodes remove --nodes N2`: the slot stays, as the
    /// string `Tombstone`.
    #[test]
    fn a_removed_node_is_left_out() {
        let mut builder = flexbuffers::Builder::default();
        let mut doc = builder.start_map();
        doc.push("version", 19u32);
        doc.push("cluster_name", "c");
        let mut nodes = doc.start_vector("nodes");
        let mut kept = nodes.start_vector();
        kept.push(1u32);
        let mut slot = kept.start_map();
        let mut node = slot.start_map("Node");
        node.push("name", "n1");
        let mut generation = node.start_vector("current_generation");
        generation.push(1u32);
        generation.push(3u32);
        generation.end_vector();
        node.push("address", "http://10.0.0.1:5122/");
        node.end_map();
        slot.end_map();
        kept.end_vector();
        let mut removed = nodes.start_vector();
        removed.push(2u32);
        removed.push("Tombstone");
        removed.end_vector();
        nodes.end_vector();
        doc.end_map();
        let mut bytes = vec![2u8];
        bytes.extend_from_slice(&(builder.view().len() as u32).to_le_bytes());
        bytes.extend_from_slice(builder.view());

        let config = NodesConfiguration::decode(&bytes).unwrap();
        assert_eq!(config.version, 19);
        assert_eq!(config.nodes.keys().copied().collect::<Vec<_>>(), [1]);
        assert_eq!(config.nodes[&1].generation, 3);
    }

    #[test]
    fn a_truncated_recording_is_an_error_not_a_panic() {
        for cut in [0, 1, 5, 40, SINGLE.len() - 1] {
            assert!(
                NodesConfiguration::decode(&SINGLE[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}

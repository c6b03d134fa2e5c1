//! Which nodes the cluster controller sees alive, and what each one runs (`GetClusterState`).

use std::collections::BTreeMap;

use restate_fleet_proto::admin::restate::cluster::{self, node_state};
use restate_fleet_proto::admin::restate::cluster_ctrl::ClusterStateRequest;
use serde::Serialize;

use super::{AdminClient, AdminError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterState {
    pub nodes_config_version: u32,
    pub partition_table_version: u32,
    pub logs_metadata_version: u32,
    /// Keyed by plain node id.
    pub nodes: BTreeMap<u32, NodeLiveness>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum NodeLiveness {
    Alive(AliveNode),
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliveNode {
    pub generation: u32,
    pub uptime_s: u64,
    /// Partition ids this node currently leads.
    pub leader_of: Vec<u32>,
    /// Partition ids this node currently follows.
    pub follower_of: Vec<u32>,
}

impl ClusterState {
    pub fn alive_nodes(&self) -> impl Iterator<Item = (u32, &AliveNode)> {
        self.nodes.iter().filter_map(|(id, node)| match node {
            NodeLiveness::Alive(alive) => Some((*id, alive)),
            NodeLiveness::Dead => None,
        })
    }

    pub fn is_alive(&self, node_id: u32) -> bool {
        matches!(self.nodes.get(&node_id), Some(NodeLiveness::Alive(_)))
    }
}

impl AdminClient {
    /// The cluster state as the admin node sees it. An admin node that just started answers an empty
    /// node map with configuration version 0 for about 1.5 s: that is reported as
    /// [`AdminError::NotReady`], never as a cluster without nodes.
    pub async fn cluster_state(&self) -> Result<ClusterState, AdminError> {
        let answer = self
            .call(
                "GetClusterState",
                self.cluster_ctrl()
                    .get_cluster_state(self.request(ClusterStateRequest {})),
            )
            .await?;
        let state = answer
            .cluster_state
            .ok_or_else(|| self.decode_error("the cluster state", "the answer carries none"))?;
        let state = ClusterState::from(&state);
        if state.nodes.is_empty() && state.nodes_config_version == 0 {
            return Err(self.not_ready(
                "the cluster state",
                "the admin role has not loaded the nodes configuration",
            ));
        }
        Ok(state)
    }
}

impl From<&cluster::ClusterState> for ClusterState {
    fn from(state: &cluster::ClusterState) -> Self {
        let version = |v: &Option<restate_fleet_proto::admin::restate::common::Version>| {
            v.as_ref().map_or(0, |v| v.value)
        };
        ClusterState {
            nodes_config_version: version(&state.nodes_config_version),
            partition_table_version: version(&state.partition_table_version),
            logs_metadata_version: version(&state.logs_metadata_version),
            nodes: state
                .nodes
                .iter()
                .map(|(id, node)| (*id, NodeLiveness::from(node)))
                .collect(),
        }
    }
}

impl From<&cluster::NodeState> for NodeLiveness {
    fn from(node: &cluster::NodeState) -> Self {
        match &node.state {
            Some(node_state::State::Alive(alive)) => {
                let partitions_in = |mode: cluster::RunMode| {
                    let mut ids: Vec<u32> = alive
                        .partitions
                        .iter()
                        .filter(|(_, status)| status.effective_mode() == mode)
                        .map(|(id, _)| *id)
                        .collect();
                    ids.sort_unstable();
                    ids
                };
                NodeLiveness::Alive(AliveNode {
                    generation: alive
                        .generational_node_id
                        .as_ref()
                        .map_or(0, |id| id.generation),
                    uptime_s: alive.uptime_s,
                    leader_of: partitions_in(cluster::RunMode::Leader),
                    follower_of: partitions_in(cluster::RunMode::Follower),
                })
            }
            // A node the controller has no news of is as good as dead to the rollout.
            Some(node_state::State::Dead(_)) | None => NodeLiveness::Dead,
        }
    }
}

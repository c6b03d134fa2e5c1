//! Who a node is and whether it is ready (`NodeCtlSvc.GetIdent`).

use std::fmt;

use restate_fleet_proto::admin::restate::common;
use serde::{Deserialize, Serialize};

use super::{AdminClient, AdminError};

/// Plain node id plus generation, shown as restatectl does (`N1:3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeId {
    pub id: u32,
    pub generation: Option<u32>,
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            Some(generation) => write!(f, "N{}:{generation}", self.id),
            None => write!(f, "N{}", self.id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    Unknown,
    Alive,
    StartingUp,
    ShuttingDown,
}

/// The state of one role on one node. The roles share one vocabulary here; each role uses a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleStatus {
    Unknown,
    StartingUp,
    Ready,
    Failsafe,
    Stopping,
    AwaitingProvisioning,
    Member,
    Standby,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdent {
    pub status: NodeStatus,
    /// None until the node joined a cluster.
    pub node_id: Option<NodeId>,
    pub cluster_name: String,
    pub roles: Vec<String>,
    pub age_s: u64,
    pub admin_status: RoleStatus,
    pub worker_status: RoleStatus,
    pub log_server_status: RoleStatus,
    pub metadata_server_status: RoleStatus,
    pub nodes_config_version: u32,
    pub logs_version: u32,
}

impl NodeIdent {
    /// The server reports ALIVE only once every role it runs is ready.
    pub fn is_alive(&self) -> bool {
        self.status == NodeStatus::Alive
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

impl AdminClient {
    pub async fn ident(&self) -> Result<NodeIdent, AdminError> {
        let answer = self
            .call("GetIdent", self.node_ctl().get_ident(self.request(())))
            .await?;
        Ok(NodeIdent::from(&answer))
    }
}

impl From<&restate_fleet_proto::admin::restate::node_ctl_svc::IdentResponse> for NodeIdent {
    fn from(answer: &restate_fleet_proto::admin::restate::node_ctl_svc::IdentResponse) -> Self {
        NodeIdent {
            status: match answer.status() {
                common::NodeStatus::Unknown => NodeStatus::Unknown,
                common::NodeStatus::Alive => NodeStatus::Alive,
                common::NodeStatus::StartingUp => NodeStatus::StartingUp,
                common::NodeStatus::ShuttingDown => NodeStatus::ShuttingDown,
            },
            node_id: answer.node_id.as_ref().map(|id| NodeId {
                id: id.id,
                generation: id.generation,
            }),
            cluster_name: answer.cluster_name.clone(),
            roles: answer.roles.clone(),
            age_s: answer.age_s,
            admin_status: match answer.admin_status() {
                common::AdminStatus::Unknown => RoleStatus::Unknown,
                common::AdminStatus::Ready => RoleStatus::Ready,
                common::AdminStatus::StartingUp => RoleStatus::StartingUp,
            },
            worker_status: match answer.worker_status() {
                common::WorkerStatus::Unknown => RoleStatus::Unknown,
                common::WorkerStatus::Ready => RoleStatus::Ready,
                common::WorkerStatus::StartingUp => RoleStatus::StartingUp,
            },
            log_server_status: match answer.log_server_status() {
                common::LogServerStatus::Unknown => RoleStatus::Unknown,
                common::LogServerStatus::Ready => RoleStatus::Ready,
                common::LogServerStatus::StartingUp => RoleStatus::StartingUp,
                common::LogServerStatus::Failsafe => RoleStatus::Failsafe,
                common::LogServerStatus::Stopping => RoleStatus::Stopping,
            },
            metadata_server_status: RoleStatus::from(answer.metadata_server_status()),
            nodes_config_version: answer.nodes_config_version,
            logs_version: answer.logs_version,
        }
    }
}

impl From<common::MetadataServerStatus> for RoleStatus {
    fn from(status: common::MetadataServerStatus) -> Self {
        match status {
            common::MetadataServerStatus::Unknown => RoleStatus::Unknown,
            common::MetadataServerStatus::StartingUp => RoleStatus::StartingUp,
            common::MetadataServerStatus::AwaitingProvisioning => RoleStatus::AwaitingProvisioning,
            common::MetadataServerStatus::Member => RoleStatus::Member,
            common::MetadataServerStatus::Standby => RoleStatus::Standby,
        }
    }
}

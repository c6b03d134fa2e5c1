//! The replicated metadata cluster as one metadata server sees it (`MetadataServerSvc.Status`).

use serde::{Deserialize, Serialize};

use super::ident::RoleStatus;
use super::{AdminClient, AdminError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataServerState {
    /// This server's own state: `member` once it serves the metadata cluster.
    pub status: RoleStatus,
    /// Version of the metadata cluster configuration this server knows, if it knows one.
    pub configuration_version: Option<u32>,
    /// Plain node ids of the metadata cluster's members, ascending.
    pub members: Vec<u32>,
    /// Plain node id of the leader this server follows.
    pub leader: Option<u32>,
}

impl MetadataServerState {
    pub fn is_member(&self) -> bool {
        self.status == RoleStatus::Member
    }
}

impl AdminClient {
    /// Answers UNIMPLEMENTED on nodes without the metadata-server role.
    pub async fn metadata_server_status(&self) -> Result<MetadataServerState, AdminError> {
        let answer = self
            .call(
                "MetadataServerSvc.Status",
                self.metadata_server().status(self.request(())),
            )
            .await?;
        let mut members: Vec<u32> = answer
            .configuration
            .as_ref()
            .map(|c| c.members.keys().copied().collect())
            .unwrap_or_default();
        members.sort_unstable();
        Ok(MetadataServerState {
            status: RoleStatus::from(answer.status()),
            configuration_version: answer
                .configuration
                .as_ref()
                .and_then(|c| c.version.as_ref())
                .map(|v| v.value),
            members,
            leader: answer.leader,
        })
    }
}

impl AdminClient {
    /// This node joins the metadata cluster (`MetadataServerSvc.AddNode`, sent to the node
    /// itself, as restatectl's `metadata-server add-node` does); a member already is a success.
    pub async fn join_metadata_cluster(&self) -> Result<(), AdminError> {
        let answer = self
            .call(
                "MetadataServerSvc.AddNode",
                self.metadata_server().add_node(self.request(())),
            )
            .await;
        match answer {
            Err(AdminError::Rpc { status, .. }) if status.code() == tonic::Code::AlreadyExists => {
                Ok(())
            }
            other => other,
        }
    }

    /// Member `id` leaves the metadata cluster (`MetadataServerSvc.RemoveNode`). Only the
    /// metadata leader takes it: ask the node [`MetadataServerState::leader`] names. A node that
    /// is no member is a success, as for restatectl's `metadata-server remove-node`.
    pub async fn remove_metadata_member(&self, id: u32) -> Result<(), AdminError> {
        let request = restate_fleet_proto::admin::restate::metadata_server_svc::RemoveNodeRequest {
            plain_node_id: id,
            created_at_millis: None,
        };
        let answer = self
            .call(
                "MetadataServerSvc.RemoveNode",
                self.metadata_server().remove_node(self.request(request)),
            )
            .await;
        match answer {
            Err(AdminError::Rpc { status, .. }) if status.message().contains("is not a member") => {
                Ok(())
            }
            other => other,
        }
    }
}

//! Typed client for Restate's admin gRPC API (fabric port 5122): node identity, cluster state,
//! node names, the metadata cluster, the cluster configuration, the logs, snapshots and
//! provisioning. Callers never see protobuf types or metadata encodings.
//!
//! A client wraps a `tonic` channel, so the transport can be direct TCP ([`AdminClient::connect`])
//! or anything `Endpoint::connect_with_connector` accepts, e.g. an SSH direct-tcpip stream
//! ([`endpoint`] + [`AdminClient::from_channel`]).

mod any_node;
mod cluster_state;
mod config;
mod connect;
mod envelope;
mod error;
mod ident;
mod logs;
mod metadata_cluster;
mod nodes_config;
mod provision;
mod snapshots;
mod tls;
mod view;

pub use any_node::{Answered, first_answer};
pub use cluster_state::{AliveNode, ClusterState, NodeLiveness};
pub use config::{ClusterConfig, ConfigChange, replication_on_nodes};
pub use connect::{
    AdminClient, FABRIC_PORT, MAX_DECODING_MESSAGE_SIZE, Timeouts, endpoint, fabric_target,
    host_port,
};
pub use error::AdminError;
pub use ident::{NodeId, NodeIdent, NodeStatus, RoleStatus};
pub use logs::{KIND_LOCAL, KIND_REPLICATED, LogChain, Logs, ProviderConfig, Segment};
pub use metadata_cluster::MetadataServerState;
pub use nodes_config::{NodeEntry, NodesConfiguration};
pub use provision::{Provision, Provisioned};
pub use snapshots::{PartitionSnapshot, Retry, SnapshotOutcome, SnapshotReport};
pub use tls::{ClientIdentity, IdentityFiles, https_address, tls_endpoint};
pub use view::{ClusterView, LogsSummary, MetadataView, NodeView, STANDBY, Unreachable, gather};

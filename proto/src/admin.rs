//! Restate's admin gRPC API (the 1.7.12 subset in `proto/restate/`), client side only.
//!
//! The module tree mirrors the proto packages because the generated code refers to sibling packages
//! by relative path (`super::common::NodeId`).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod restate {
    pub mod common {
        tonic::include_proto!("restate.common");
    }
    pub mod cluster {
        tonic::include_proto!("restate.cluster");
    }
    pub mod node_ctl_svc {
        tonic::include_proto!("restate.node_ctl_svc");
    }
    pub mod cluster_ctrl {
        tonic::include_proto!("restate.cluster_ctrl");
    }
    pub mod metadata_server_svc {
        tonic::include_proto!("restate.metadata_server_svc");
    }
}

pub use restate::cluster_ctrl::cluster_ctrl_svc_client::ClusterCtrlSvcClient;
pub use restate::metadata_server_svc::metadata_server_svc_client::MetadataServerSvcClient;
pub use restate::node_ctl_svc::node_ctl_svc_client::NodeCtlSvcClient;

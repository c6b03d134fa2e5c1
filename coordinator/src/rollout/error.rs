//! Why a step of the plan stopped the run. Each error says where (a host, or the cluster) and,
//! where there is one, what the operator does next; the report carries its text.

use super::gate::{GateTimeout, QuorumError};
use crate::admin::AdminError;
use crate::reach::ReachError;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A host's agent or its SSH session.
    #[error(transparent)]
    Reach(Box<ReachError>),
    /// The cluster's admin API did not answer.
    #[error("cluster: {0}")]
    Admin(Box<AdminError>),
    /// A gate that did not open: `waiting_for` says for what.
    #[error("{waiting_for}: {source}")]
    Gate {
        waiting_for: String,
        source: GateTimeout,
    },
    /// A member whose restart would cost the metadata quorum.
    #[error("{host}: refused: {source}")]
    Refused { host: String, source: QuorumError },
    /// Something on one host did not come about.
    #[error("{host}: {what}")]
    Host { host: String, what: String },
    /// Something cluster-wide did not come about.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Several hosts of one step failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Hosts(Vec<StepError>),
    /// SIGINT or SIGTERM between steps.
    #[error(
        "interrupted after {done} of {total} steps; not done: {}. The cluster is as the last finished step left it; re-run to finish: {rerun}",
        .left.join("; ")
    )]
    Interrupted {
        done: usize,
        total: usize,
        left: Vec<String>,
        rerun: String,
    },
}

// Boxed: the run's error travels through every step's `Result`, kept small.
impl From<ReachError> for StepError {
    fn from(err: ReachError) -> Self {
        StepError::Reach(Box::new(err))
    }
}

impl From<AdminError> for StepError {
    fn from(err: AdminError) -> Self {
        StepError::Admin(Box::new(err))
    }
}

impl StepError {
    pub fn host(host: &str, what: impl Into<String>) -> Self {
        StepError::Host {
            host: host.to_string(),
            what: what.into(),
        }
    }

    pub fn cluster(what: impl Into<String>) -> Self {
        StepError::Cluster(what.into())
    }

    pub fn gate(waiting_for: impl Into<String>) -> impl FnOnce(GateTimeout) -> Self {
        let waiting_for = waiting_for.into();
        move |source| StepError::Gate {
            waiting_for,
            source,
        }
    }
}

//! What can go wrong talking to a node's admin gRPC port, worded for the operator.

use std::time::Duration;

use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{address}: not a usable gRPC address ({reason}); give it as http://HOST:5122")]
    BadAddress { address: String, reason: String },

    #[error(
        "{address}: cannot reach the fabric port ({source}); check that restate-server runs there and that the port is reachable"
    )]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },

    #[error(
        "{address}: {method} failed with {code:?}: {message}{hint}",
        code = .status.code(),
        message = .status.message(),
        hint = hint(.status.code())
    )]
    Rpc {
        address: String,
        method: &'static str,
        status: Box<tonic::Status>,
    },

    #[error(
        "{address}: {method} got no answer within {timeout:?}; the node may be overloaded or unreachable, retry"
    )]
    Timeout {
        address: String,
        method: &'static str,
        timeout: Duration,
    },

    #[error(
        "{address}: cannot decode {what}: {reason}; the server may run a Restate version restate-fleet does not know (tested with 1.7.12)"
    )]
    Decode {
        address: String,
        what: &'static str,
        reason: String,
    },

    #[error("{address}: {what} is not ready yet ({reason}); retry in a few seconds")]
    NotReady {
        address: String,
        what: &'static str,
        reason: String,
    },

    #[error("no node answered {method}: {}", join(.errors))]
    NoNodeAnswered {
        method: &'static str,
        errors: Vec<AdminError>,
    },
}

impl AdminError {
    /// The gRPC status code, when the node answered with an error.
    pub fn code(&self) -> Option<Code> {
        match self {
            AdminError::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// True when the same call may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            AdminError::Connect { .. }
            | AdminError::Timeout { .. }
            | AdminError::NotReady { .. } => true,
            AdminError::Rpc { status, .. } => matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::ResourceExhausted
            ),
            AdminError::NoNodeAnswered { errors, .. } => {
                errors.iter().all(AdminError::is_transient)
            }
            AdminError::BadAddress { .. } | AdminError::Decode { .. } => false,
        }
    }
}

fn hint(code: Code) -> &'static str {
    match code {
        Code::Unavailable => {
            " (the node or its admin role is still starting, or it is down; retry)"
        }
        Code::Unimplemented => {
            " (this node does not run the role that serves this call: admin or metadata-server)"
        }
        Code::Aborted => " (the node is shutting down)",
        _ => "",
    }
}

fn join(errors: &[AdminError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

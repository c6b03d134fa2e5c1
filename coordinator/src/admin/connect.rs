//! Channels to a node's fabric port (5122) and the per-call plumbing every typed call shares.

use std::future::Future;
use std::time::Duration;

use restate_fleet_proto::admin::{ClusterCtrlSvcClient, MetadataServerSvcClient, NodeCtlSvcClient};
use tonic::codegen::http::uri::InvalidUri;
use tonic::transport::{Channel, Endpoint, Uri};

use super::AdminError;

/// Restate's node-to-node fabric port, where the admin gRPC services listen.
pub const FABRIC_PORT: u16 = 5122;

/// Restate answers some calls (Logs metadata, cluster state of big clusters) with more than tonic's
/// default 4 MiB.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (or tunnelled) connection.
    pub connect: Duration,
    /// One RPC, from sending the request to the last byte of the answer.
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            call: Duration::from_secs(10),
        }
    }
}

/// The admin API of one node. Cheap to clone: clones share the HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct AdminClient {
    channel: Channel,
    address: String,
    timeouts: Timeouts,
}

/// The endpoint settings every channel to a fabric port needs. Whoever supplies their own transport
/// (an SSH direct-tcpip stream) builds the channel from this with `Endpoint::connect_with_connector`,
/// then wraps it with [`AdminClient::from_channel`].
pub fn endpoint(address: &str, timeouts: Timeouts) -> Result<Endpoint, AdminError> {
    let bad = |reason: String| AdminError::BadAddress {
        address: address.to_owned(),
        reason,
    };
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let uri: Uri = url
        .parse()
        .map_err(|err: InvalidUri| bad(err.to_string()))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(bad("no host in it".to_owned()));
    };
    // A bare host means the fabric port, not HTTP's 80.
    let url = match authority.port_u16() {
        Some(_) => url,
        None => format!("{scheme}://{authority}:{FABRIC_PORT}"),
    };
    let endpoint = Endpoint::from_shared(url).map_err(|err| bad(err.to_string()))?;
    // Nagle + delayed ACK doubles the latency of every call (measured ~90 ms instead of ~44 ms).
    Ok(endpoint.tcp_nodelay(true).connect_timeout(timeouts.connect))
}

impl AdminClient {
    /// Wraps a channel built elsewhere; `address` only names the node in messages and reports.
    pub fn from_channel(channel: Channel, address: impl Into<String>, timeouts: Timeouts) -> Self {
        AdminClient {
            channel,
            address: address.into(),
            timeouts,
        }
    }

    /// Connects straight over TCP now, e.g. to `http://10.0.0.1:5122` or `127.0.0.1:5122`.
    pub async fn connect(address: &str, timeouts: Timeouts) -> Result<Self, AdminError> {
        let channel = endpoint(address, timeouts)?
            .connect()
            .await
            .map_err(|source| AdminError::Connect {
                address: address.to_owned(),
                source,
            })?;
        Ok(Self::from_channel(channel, address, timeouts))
    }

    /// Connects straight over TCP on first use; an unreachable node then fails that call.
    pub fn lazy(address: &str, timeouts: Timeouts) -> Result<Self, AdminError> {
        let channel = endpoint(address, timeouts)?.connect_lazy();
        Ok(Self::from_channel(channel, address, timeouts))
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub(super) fn node_ctl(&self) -> NodeCtlSvcClient<Channel> {
        NodeCtlSvcClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub(super) fn cluster_ctrl(&self) -> ClusterCtrlSvcClient<Channel> {
        ClusterCtrlSvcClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub(super) fn metadata_server(&self) -> MetadataServerSvcClient<Channel> {
        MetadataServerSvcClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    /// A request carrying the call timeout, so the server gives up when the client does.
    pub(super) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeouts.call);
        request
    }

    /// Runs one RPC under the call timeout and names this node and the method in any error.
    pub(super) async fn call<T>(
        &self,
        method: &'static str,
        rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, AdminError> {
        match tokio::time::timeout(self.timeouts.call, rpc).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(AdminError::Rpc {
                address: self.address.clone(),
                method,
                status: Box::new(status),
            }),
            Err(_) => Err(AdminError::Timeout {
                address: self.address.clone(),
                method,
                timeout: self.timeouts.call,
            }),
        }
    }

    pub(super) fn decode_error(&self, what: &'static str, reason: impl ToString) -> AdminError {
        AdminError::Decode {
            address: self.address.clone(),
            what,
            reason: reason.to_string(),
        }
    }

    pub(super) fn not_ready(&self, what: &'static str, reason: impl Into<String>) -> AdminError {
        AdminError::NotReady {
            address: self.address.clone(),
            what,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(address: &str) -> String {
        endpoint(address, Timeouts::default())
            .unwrap()
            .uri()
            .to_string()
    }

    #[test]
    fn addresses_default_to_http_and_the_fabric_port() {
        assert_eq!(uri("10.0.0.1"), "http://10.0.0.1:5122/");
        assert_eq!(uri("n1.internal:6000"), "http://n1.internal:6000/");
        assert_eq!(uri("http://10.0.0.2:5122/"), "http://10.0.0.2:5122/");
        assert_eq!(uri("http://[::1]"), "http://[::1]:5122/");
    }

    #[test]
    fn unusable_addresses_name_themselves() {
        let err = endpoint("http://", Timeouts::default()).unwrap_err();
        assert!(matches!(err, AdminError::BadAddress { .. }));
        assert!(err.to_string().starts_with("http://:"), "{err}");
        assert!(endpoint("bad host", Timeouts::default()).is_err());
    }
}

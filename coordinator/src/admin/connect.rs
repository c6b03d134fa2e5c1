//! Channels to a node's fabric port (5122) and the per-call plumbing every typed call shares.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use restate_fleet_proto::admin::{ClusterCtrlSvcClient, MetadataServerSvcClient, NodeCtlSvcClient};
use tonic::codegen::http::uri::InvalidUri;
use tonic::transport::{Channel, Endpoint, Uri};

use super::AdminError;

/// Restate's node-to-node fabric port, where the admin gRPC services listen.
pub const FABRIC_PORT: u16 = 5122;

/// Host (an IPv6 address without its brackets) and port of a URL, `default_port` when it names
/// none; `None` when it is no URL with a host.
pub fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), uri.port_u16().unwrap_or(default_port)))
}

/// Host and port of a fabric address (`http://n1.internal:5122/`), as its own host dials it.
pub fn fabric_target(address: &str) -> Option<(String, u16)> {
    host_port(address, FABRIC_PORT)
}

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

/// The admin API of one node. Cheap to clone: clones share the HTTP/2 connection, and which of
/// the two transports is in use.
#[derive(Debug, Clone)]
pub struct AdminClient {
    channel: Channel,
    /// The same node over TLS with the tool's certificate, once the cluster has fabric TLS
    /// (attached later when this run makes the CA).
    tls: Arc<std::sync::OnceLock<Channel>>,
    /// Whether calls go over `tls`: set from what the node's file says, and turned over when a
    /// call cannot get through on the transport in use (a node that moved to or from `require`).
    use_tls: Arc<AtomicBool>,
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
            tls: Arc::new(std::sync::OnceLock::new()),
            use_tls: Arc::new(AtomicBool::new(false)),
            address: address.into(),
            timeouts,
        }
    }

    /// A TLS channel beside the plain one, for this client and every clone; `prefer` says
    /// whether calls use it from now on. A client keeps the first channel attached.
    pub fn attach_tls(&self, tls: Channel, prefer: bool) {
        if self.tls.set(tls).is_ok() {
            self.use_tls.store(prefer, Ordering::SeqCst);
        }
    }

    pub fn has_tls(&self) -> bool {
        self.tls.get().is_some()
    }

    /// Speak TLS to this node (its `[tls] mode` is `allow` or above) or not; every clone follows.
    /// Nothing changes for a client without a TLS channel.
    pub fn prefer_tls(&self, tls: bool) {
        if self.has_tls() {
            self.use_tls.store(tls, Ordering::SeqCst);
        }
    }

    pub fn speaks_tls(&self) -> bool {
        self.has_tls() && self.use_tls.load(Ordering::SeqCst)
    }

    fn channel(&self) -> Channel {
        match self.tls.get() {
            Some(tls) if self.use_tls.load(Ordering::SeqCst) => tls.clone(),
            _ => self.channel.clone(),
        }
    }

    /// A call that did not get through on one transport tries the other next time: plain text to
    /// a node at `require` is cut at once, and a node at `off` answers no TLS handshake.
    fn turn_over_after(&self, status: &tonic::Status) {
        let transport = status.code() == tonic::Code::Unavailable
            || status.code() == tonic::Code::Unknown
            || status.code() == tonic::Code::Internal;
        let message = status.message();
        let cut = [
            "transport error",
            "error trying to connect",
            "h2 protocol error",
            "connection",
        ]
        .iter()
        .any(|m| message.contains(m));
        if self.has_tls() && transport && cut {
            self.use_tls.fetch_xor(true, Ordering::SeqCst);
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
        NodeCtlSvcClient::new(self.channel()).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub(super) fn cluster_ctrl(&self) -> ClusterCtrlSvcClient<Channel> {
        ClusterCtrlSvcClient::new(self.channel())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub(super) fn metadata_server(&self) -> MetadataServerSvcClient<Channel> {
        MetadataServerSvcClient::new(self.channel())
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
            Ok(Err(status)) => {
                self.turn_over_after(&status);
                Err(AdminError::Rpc {
                    address: self.address.clone(),
                    method,
                    status: Box::new(status),
                })
            }
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

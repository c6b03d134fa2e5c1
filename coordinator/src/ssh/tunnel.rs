//! gRPC (or any HTTP) through SSH: each connection tonic makes becomes a direct-tcpip channel
//! on the host's session, so port 5122 never has to be reachable from the coordinator.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use russh::ChannelStream;
use russh::client::Msg;
use tonic::transport::{Channel, Endpoint};

use super::error::SshError;
use super::session::Session;

/// A tonic connector: the URI's host and port are dialled *by the SSH host* (e.g.
/// `http://127.0.0.1:5122` is the host's own loopback).
#[derive(Clone)]
pub struct TunnelConnector {
    session: Session,
}

impl TunnelConnector {
    pub fn new(session: Session) -> Self {
        Self { session }
    }
}

impl tower_service::Service<Uri> for TunnelConnector {
    type Response = TokioIo<ChannelStream<Msg>>;
    type Error = SshError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, SshError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), SshError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let session = self.session.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .map(|host| {
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned()
                })
                .ok_or_else(|| SshError::Tunnel {
                    host: session.host().to_owned(),
                    target: uri.to_string(),
                    message: "the URI has no host".into(),
                })?;
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            let stream = session.open_direct_tcpip(&host, port).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

impl Session {
    /// A tonic channel to `uri` as seen from this host, through this session.
    pub async fn grpc_channel(&self, uri: &str) -> Result<Channel, SshError> {
        let invalid = |message: String| SshError::Tunnel {
            host: self.host().to_owned(),
            target: uri.to_owned(),
            message,
        };
        let endpoint =
            Endpoint::from_shared(uri.to_owned()).map_err(|err| invalid(err.to_string()))?;
        endpoint
            .connect_with_connector(TunnelConnector::new(self.clone()))
            .await
            .map_err(|err| invalid(format!("{err}: {:?}", std::error::Error::source(&err))))
    }
}

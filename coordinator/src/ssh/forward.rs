//! A port on this machine's loopback whose connections the SSH host dials on (`ssh -L`), for
//! programs that run here but must reach a host's fabric port through its session: restatectl
//! on the laptop talks to a member as if the member's port were local.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::error::SshError;
use super::session::Session;

/// Listens on `127.0.0.1:<free port>` while it lives.
pub struct Forward {
    local: SocketAddr,
    accept: JoinHandle<()>,
}

impl Forward {
    /// Where programs on this machine connect.
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        // Connections already accepted end with the program that opened them.
        self.accept.abort();
    }
}

impl Session {
    /// Forwards every connection to the returned port on to `host:port` as the SSH host sees it
    /// (a direct-tcpip channel each).
    pub async fn forward_local(&self, host: &str, port: u16) -> Result<Forward, SshError> {
        let failed = |message: String| SshError::Tunnel {
            host: self.host().to_owned(),
            target: format!("{host}:{port}"),
            message,
        };
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| failed(format!("cannot listen on this machine's loopback: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| failed(format!("cannot listen on this machine's loopback: {e}")))?;
        let (session, target) = (self.clone(), host.to_owned());
        let accept = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (session, target) = (session.clone(), target.clone());
                tokio::spawn(async move {
                    match session.open_direct_tcpip(&target, port).await {
                        Ok(mut channel) => {
                            // Either side closing ends both; nothing to report past that.
                            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut channel).await;
                        }
                        Err(err) => tracing::debug!(%err, "forwarded connection not opened"),
                    }
                });
            }
        });
        Ok(Forward { local, accept })
    }
}

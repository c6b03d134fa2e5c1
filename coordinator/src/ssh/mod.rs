//! The SSH transport: one authenticated session per host, opened in parallel and reused for
//! every step of a run (commands, the agent upload, gRPC tunnels).
//!
//! Entry point: [`SshClient::connect_all`]. Operator documentation: docs/ssh.md.

mod auth;
mod config;
mod error;
mod exec;
mod forward;
mod known_hosts;
mod pattern;
mod push;
mod quickack;
mod session;
mod tunnel;
mod upload;

use std::sync::Arc;
use std::time::Duration;

pub use auth::Credentials;
pub use config::{HostConfig, JumpHost, SshConfig};
pub use error::SshError;
pub use exec::{ExecOutput, ExecStream, ExitStatus, LineWriter, shell_quote};
pub use forward::Forward;
pub use known_hosts::{KnownHosts, Verdict};
pub use push::{
    AGENT_REMOTE_DIR, AgentCatalog, AgentLocator, EMBEDDED_AGENT, LaunchedAgent, sha256_hex,
};
pub use session::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE, KEEPALIVE_GIVE_UP, Session, Target};
pub use tunnel::TunnelConnector;
pub use upload::{Encoding, RemoteFile};

/// Everything sessions of one run share.
pub struct SshOptions {
    /// Per host: DNS, TCP connect, and SSH handshake each must finish within this.
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    /// How many hosts are connected to at once.
    pub forks: usize,
    pub known_hosts: KnownHosts,
    pub ssh_config: SshConfig,
    pub credentials: Credentials,
}

impl SshOptions {
    /// The operator's environment: ~/.ssh/config, ~/.ssh/known_hosts (or `known_hosts`),
    /// `$SSH_AUTH_SOCK`, default keys, 50 forks.
    pub fn from_env(
        known_hosts: Option<std::path::PathBuf>,
        accept_new_host_keys: bool,
        passphrase: Option<String>,
    ) -> Result<Self, SshError> {
        let known_hosts = known_hosts
            .or_else(KnownHosts::default_path)
            .unwrap_or_else(|| ".ssh/known_hosts".into());
        Ok(Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE,
            forks: 50,
            known_hosts: KnownHosts::new(known_hosts, accept_new_host_keys),
            ssh_config: SshConfig::load_default()?,
            credentials: Credentials::from_env(passphrase),
        })
    }
}

/// Opens sessions with one set of options.
#[derive(Clone)]
pub struct SshClient {
    options: Arc<SshOptions>,
}

impl SshClient {
    pub fn new(options: SshOptions) -> Self {
        Self {
            options: Arc::new(options),
        }
    }

    /// Connects and authenticates; with `become`, also checks that sudo runs without a password.
    pub async fn connect(&self, target: &Target) -> Result<Session, SshError> {
        let session = session::connect(&self.options, target).await?;
        if target.become_root {
            session.probe_sudo().await?;
        }
        Ok(session)
    }

    /// Connects every target, at most `forks` at a time; results come back in target order,
    /// one per host, so a failure on one host never hides the others.
    pub async fn connect_all(&self, targets: &[Target]) -> Vec<Result<Session, SshError>> {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.options.forks.max(1)));
        let tasks: Vec<_> = targets
            .iter()
            .cloned()
            .map(|target| {
                let (client, permits) = (self.clone(), permits.clone());
                tokio::spawn(async move {
                    // The semaphore is never closed: acquiring cannot fail.
                    let _permit = permits.acquire_owned().await;
                    client.connect(&target).await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            match task.await {
                Ok(result) => results.push(result),
                // Tasks are never aborted, so a join error is a panic: let it surface.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        results
    }
}

//! Opening one SSH session per host: address resolution (inventory, then ~/.ssh/config, then
//! defaults), TCP connect with a timeout, host key verification, authentication, and ProxyJump.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{Handle, Msg};
use russh::keys::PublicKey;
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelStream, client};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::SshOptions;
use super::config::{JumpHost, expand_path};
use super::error::SshError;
use super::quickack::QuickAck;

/// A host as the inventory describes it. `None` fields fall back to ~/.ssh/config, then to
/// OpenSSH's defaults; pass only values the operator set explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The inventory's name for the host: used in every message.
    pub name: String,
    /// What to connect to, as typed after `ssh`: looked up in ~/.ssh/config `Host` patterns.
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    /// Run every command through `sudo -n`.
    pub become_root: bool,
}

/// Where and as whom to connect, after ~/.ssh/config was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub identities: Vec<PathBuf>,
    pub jump: Option<JumpHost>,
}

/// An authenticated SSH connection to one host, shared by every step of a run: each command
/// and each tunnel gets its own channel. Cloning is cheap; the connection closes when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub name: String,
    pub user: String,
    pub become_root: bool,
    /// sudo on this host wants a terminal (`Defaults requiretty`): become goes through
    /// [`super::exec`]'s terminal wrapper. Found out by [`Session::probe_sudo`].
    pub sudo_wants_tty: std::sync::atomic::AtomicBool,
    pub handle: Handle<ClientHandler>,
    /// Keeps the jump host's connection, which carries this one, alive.
    _jump: Option<Session>,
}

impl Session {
    /// The inventory name of the host.
    pub fn host(&self) -> &str {
        &self.inner.name
    }

    pub fn user(&self) -> &str {
        &self.inner.user
    }

    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Opens a direct-tcpip channel: a TCP connection made by the host to `address:port` (as the
    /// host resolves it), carried over this session.
    pub async fn open_direct_tcpip(
        &self,
        address: &str,
        port: u16,
    ) -> Result<ChannelStream<Msg>, SshError> {
        let channel = self
            .inner
            .handle
            .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|source| SshError::Tunnel {
                host: self.host().to_owned(),
                target: format!("{address}:{port}"),
                message: format!(
                    "the host refused or failed to connect ({source}); check that the service listens there and that sshd allows TCP forwarding"
                ),
            })?;
        Ok(channel.into_stream())
    }

    /// Whether this host can open a TCP connection to `address:port`: `Ok(true)` it can,
    /// `Ok(false)` sshd does not forward for this login (so nothing is known), `Err` it tried
    /// and failed.
    pub async fn can_reach(&self, address: &str, port: u16) -> Result<bool, String> {
        match self
            .inner
            .handle
            .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            .await
        {
            Ok(channel) => {
                let _ = channel.close().await;
                Ok(true)
            }
            Err(russh::Error::ChannelOpenFailure(
                russh::ChannelOpenFailure::AdministrativelyProhibited,
            )) => Ok(false),
            Err(russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed)) => {
                Err("the connection was refused or timed out".to_string())
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// Ends the connection politely; dropping every clone also ends it.
    pub async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    pub(crate) fn protocol_error(&self, step: &'static str) -> impl Fn(russh::Error) -> SshError {
        let host = self.host().to_owned();
        move |source| SshError::Protocol {
            host: host.clone(),
            step,
            source,
        }
    }
}

/// The russh callbacks: only the host key check matters.
pub struct ClientHandler {
    name: String,
    hostname: String,
    port: u16,
    options: Arc<SshOptions>,
}

/// Errors raised inside the handshake: the host key refusal must come out intact.
#[derive(Debug)]
pub enum HandshakeError {
    Ssh(russh::Error),
    HostKey(SshError),
}

impl From<russh::Error> for HandshakeError {
    fn from(err: russh::Error) -> Self {
        Self::Ssh(err)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not trusted as such; the key inside must be in known_hosts.
        let key: PublicKey = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        let (options, name, hostname, port) = (
            self.options.clone(),
            self.name.clone(),
            self.hostname.clone(),
            self.port,
        );
        // File reads and the append lock must not stall the runtime's worker threads.
        let verdict = tokio::task::spawn_blocking(move || {
            options.known_hosts.verify(&name, &hostname, port, &key)
        })
        .await
        .map_err(|err| {
            HandshakeError::HostKey(SshError::KnownHostsIo {
                file: self.options.known_hosts.path().to_owned(),
                source: std::io::Error::other(err),
            })
        })?;
        verdict.map(|()| true).map_err(HandshakeError::HostKey)
    }
}

pub(crate) fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "root".to_owned())
}

impl SshOptions {
    pub(crate) fn resolve(&self, target: &Target) -> Result<Resolved, SshError> {
        let config = self.ssh_config.lookup(&target.address);
        let user = target
            .user
            .clone()
            .or(config.user)
            .unwrap_or_else(local_user);
        let hostname = config.hostname.unwrap_or_else(|| target.address.clone());
        let identities = match &target.identity_file {
            Some(path) => vec![expand_path(&path.to_string_lossy(), &hostname, &user)],
            None => config
                .identity_files
                .iter()
                .map(|raw| expand_path(raw, &hostname, &user))
                .collect(),
        };
        let jump = config
            .proxy_jump
            .map(|spec| JumpHost::parse(&spec))
            .transpose()
            .map_err(|message| SshError::ProxyJump {
                host: target.name.clone(),
                message,
            })?;
        Ok(Resolved {
            port: target.port.or(config.port).unwrap_or(22),
            hostname,
            user,
            identities,
            jump,
        })
    }

    fn russh_config(&self) -> Arc<client::Config> {
        Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(self.keepalive_interval),
            keepalive_max: KEEPALIVE_MAX,
            ..Default::default()
        })
    }
}

/// Connects and authenticates one target, through its ProxyJump host if it has one.
pub(crate) async fn connect(
    options: &Arc<SshOptions>,
    target: &Target,
) -> Result<Session, SshError> {
    let resolved = options.resolve(target)?;
    let Some(jump) = &resolved.jump else {
        let stream = tcp_connect(options, &target.name, &resolved).await?;
        return establish(options, target, &resolved, QuickAck(stream), None).await;
    };
    let jump_target = Target {
        name: format!("{} (jump host {})", target.name, jump.host),
        address: jump.host.clone(),
        port: jump.port,
        user: jump.user.clone(),
        identity_file: None,
        become_root: false,
    };
    let jump_resolved = options.resolve(&jump_target)?;
    if jump_resolved.jump.is_some() {
        return Err(SshError::ProxyJump {
            host: target.name.clone(),
            message: format!(
                "the jump host {} has a ProxyJump of its own; only one jump is supported",
                jump.host
            ),
        });
    }
    let stream = tcp_connect(options, &jump_target.name, &jump_resolved).await?;
    let jump_session = establish(
        options,
        &jump_target,
        &jump_resolved,
        QuickAck(stream),
        None,
    )
    .await?;
    let channel = jump_session
        .open_direct_tcpip(&resolved.hostname, resolved.port)
        .await?;
    establish(options, target, &resolved, channel, Some(jump_session)).await
}

async fn tcp_connect(
    options: &SshOptions,
    name: &str,
    resolved: &Resolved,
) -> Result<TcpStream, SshError> {
    let (address, port) = (resolved.hostname.as_str(), resolved.port);
    let deadline = Instant::now() + options.connect_timeout;
    let timed_out = |stage| SshError::TimedOut {
        host: name.to_owned(),
        address: address.to_owned(),
        port,
        stage,
        after: options.connect_timeout,
    };
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout_at(deadline.into(), tokio::net::lookup_host((address, port)))
            .await
            .map_err(|_| timed_out("DNS lookup"))?
            .map_err(|source| SshError::Dns {
                host: name.to_owned(),
                address: address.to_owned(),
                source,
            })?
            .collect();
    let mut last_error = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out("TCP connect")),
            Ok(Ok(stream)) => {
                // Measured: handshake + auth take ~40 ms with nodelay, twice that without.
                stream
                    .set_nodelay(true)
                    .map_err(|source| SshError::Connect {
                        host: name.to_owned(),
                        address: address.to_owned(),
                        port,
                        source,
                    })?;
                return Ok(stream);
            }
            Ok(Err(err)) => last_error = Some(err),
        }
    }
    Err(match last_error {
        Some(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => SshError::Refused {
            host: name.to_owned(),
            address: address.to_owned(),
            port,
        },
        Some(source) => SshError::Connect {
            host: name.to_owned(),
            address: address.to_owned(),
            port,
            source,
        },
        None => SshError::Dns {
            host: name.to_owned(),
            address: address.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        },
    })
}

/// SSH handshake and authentication over an already connected byte stream.
async fn establish<S>(
    options: &Arc<SshOptions>,
    target: &Target,
    resolved: &Resolved,
    stream: S,
    jump: Option<Session>,
) -> Result<Session, SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = ClientHandler {
        name: target.name.clone(),
        hostname: resolved.hostname.clone(),
        port: resolved.port,
        options: options.clone(),
    };
    let handshake = client::connect_stream(options.russh_config(), stream, handler);
    let mut handle = match tokio::time::timeout(options.connect_timeout, handshake).await {
        Err(_) => {
            return Err(SshError::TimedOut {
                host: target.name.clone(),
                address: resolved.hostname.clone(),
                port: resolved.port,
                stage: "SSH handshake",
                after: options.connect_timeout,
            });
        }
        Ok(Err(HandshakeError::HostKey(err))) => return Err(err),
        Ok(Err(HandshakeError::Ssh(source))) => {
            return Err(SshError::Protocol {
                host: target.name.clone(),
                step: "negotiating the SSH connection",
                source,
            });
        }
        Ok(Ok(handle)) => handle,
    };
    options
        .credentials
        .authenticate(
            &mut handle,
            &target.name,
            &resolved.user,
            &resolved.identities,
        )
        .await?;
    Ok(Session {
        inner: Arc::new(Inner {
            name: target.name.clone(),
            user: resolved.user.clone(),
            become_root: target.become_root,
            sudo_wants_tty: false.into(),
            handle,
            _jump: jump,
        }),
    })
}

/// How long the TCP connect, handshake and host key check may take, per host.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of SSH keepalives; [`KEEPALIVE_MAX`] unanswered ones end the session, so a host that
/// vanishes (link down, VM paused) is given up within [`KEEPALIVE_GIVE_UP`], not 45 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(2);
pub const KEEPALIVE_MAX: usize = 3;
/// How long a silent host is waited for, at most: the keepalives, and one interval until the first.
pub const KEEPALIVE_GIVE_UP: Duration =
    Duration::from_secs(DEFAULT_KEEPALIVE.as_secs() * (KEEPALIVE_MAX as u64 + 1));

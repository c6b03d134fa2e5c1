//! Reaching the fleet: one SSH session per host (opened in parallel, reused for the whole run), the
//! agent pushed and kept running in `serve` mode on it, and an admin gRPC client to the host's
//! fabric port, through the session (default) or direct.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use restate_fleet_inventory::Host;
use restate_fleet_proto::agent::{
    self as wire, AgentError, FromReply, NodeTarget, Operation, Reply, Request, Response,
    ServiceManager,
};
use tokio::sync::Mutex;

use crate::admin::{self, AdminClient, Timeouts};
use crate::ssh::{
    AGENT_REMOTE_DIR, AgentCatalog, AgentLocator, ExecStream, LineWriter, Session, SshClient,
    SshError, Target,
};

/// How gRPC calls reach a node's fabric port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcPath {
    /// A direct-tcpip channel on the host's SSH session: only SSH needs to be reachable.
    Tunnel,
    /// A TCP connection from this machine to the advertised address.
    Direct,
}

/// A host whose session, agent and admin client are ready.
pub struct Reached {
    pub host: Host,
    pub session: Session,
    pub admin: AdminClient,
    grpc: GrpcPath,
    pub bytes_uploaded: u64,
    /// The agent in `serve` mode; `None` when the command only needs gRPC (status).
    agent: Option<Arc<Mutex<ExecStream>>>,
    /// A request went unanswered past its deadline: a late answer would be taken for the next
    /// request's, so the agent is not asked again.
    abandoned: AtomicBool,
}

/// Why a host could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{host}: {error}")]
    Agent { host: String, error: AgentError },
    #[error("{host}: the agent ended: {detail}")]
    AgentGone { host: String, detail: String },
    #[error(
        "{host}: connection lost while the agent was working on `{op}` (no answer to SSH keepalives for about {} s: link down, host paused or gone); what the agent finished is in place, a re-run continues from there",
        crate::ssh::KEEPALIVE_GIVE_UP.as_secs()
    )]
    ConnectionLost { host: String, op: String },
    #[error(
        "{host}: the agent did not answer `{op}` within {} s, longer than anything it does for that request takes; what it finished is in place, a re-run continues from there",
        after.as_secs()
    )]
    NoAnswer {
        host: String,
        op: String,
        after: Duration,
    },
    #[error(
        "{host}: the agent answered `{answered}` to `{asked}`; agent and coordinator disagree on the protocol (push the matching agent with --agent)"
    )]
    WrongReply {
        host: String,
        asked: &'static str,
        answered: &'static str,
    },
    #[error("{host}: cannot build the admin client: {detail}")]
    Admin { host: String, detail: String },
}

impl ReachError {
    fn agent(host: &str, error: AgentError) -> Self {
        ReachError::Agent {
            host: host.to_string(),
            error,
        }
    }
}

#[derive(Clone)]
pub struct ReachOptions {
    /// `--agent PATH`; `None` looks beside the coordinator binary.
    pub agent: Option<PathBuf>,
    /// Push and start the agent (every command but `status`).
    pub start_agent: bool,
    pub grpc: GrpcPath,
    /// The tool's fabric TLS identity, when the inventory manages TLS and the CA exists: each
    /// admin client then has a TLS channel beside the plain one.
    pub tls: Option<admin::ClientIdentity>,
}

/// Reaches more hosts later in a run (a node that left the inventory), as the first ones were.
#[derive(Clone)]
pub struct Reacher {
    pub client: SshClient,
    pub options: ReachOptions,
}

impl Reacher {
    pub async fn reach(&self, hosts: &[Host]) -> Vec<Result<Reached, ReachError>> {
        reach_all(&self.client, hosts, &self.options).await
    }
}

/// Connects every host at once (at most `--forks` handshakes at a time), pushes the agent where it
/// is missing and starts it. Results come back in host order, one per host.
pub async fn reach_all(
    client: &SshClient,
    hosts: &[Host],
    options: &ReachOptions,
) -> Vec<Result<Reached, ReachError>> {
    let started = std::time::Instant::now();
    let targets: Vec<Target> = hosts.iter().map(target).collect();
    let sessions = client.connect_all(&targets).await;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "reach: SSH sessions"
    );
    let catalog = options
        .start_agent
        .then(|| std::sync::Arc::new(AgentCatalog::load(AgentLocator::new(options.agent.clone()))));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (host, session)) in hosts.iter().cloned().zip(sessions).enumerate() {
        let (catalog, grpc, tls) = (catalog.clone(), options.grpc, options.tls.clone());
        tasks.spawn(async move {
            let result = match session {
                Ok(session) => setup(host, session, catalog.as_deref(), grpc, tls.as_ref()).await,
                Err(err) => Err(err.into()),
            };
            (index, result)
        });
    }
    let mut results: Vec<Option<Result<Reached, ReachError>>> =
        hosts.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            // Tasks are never aborted: a join error is a panic, which must surface.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "reach: agents started"
    );
    results.into_iter().flatten().collect()
}

/// How long the agent may take to answer `op`: longer than anything it does for it, so that
/// only a hung agent (or a link lost without the keepalives noticing) meets it.
fn answer_deadline(op: &Operation) -> Duration {
    let restarts = |node: &NodeTarget, n: u64| {
        Duration::from_millis(n * (node.service_timeout_ms + node.health_timeout_ms))
    };
    let work = match op {
        // The change, and a rollback's restart when the node does not come back.
        Operation::Apply { node, .. } | Operation::Rollback { node } => restarts(node, 2),
        Operation::Service { node, .. } => restarts(node, 1),
        Operation::Facts { node, .. }
        | Operation::Retire { node }
        | Operation::HostChecks { node, .. } => Duration::from_millis(node.service_timeout_ms),
        // A few systemctl calls and a walk of the data directory.
        Operation::Collect { node } => Duration::from_millis(4 * node.service_timeout_ms),
        // The agent waits for the operation of a gone run's agent before it takes over.
        Operation::Lock { .. } => Duration::from_secs(300),
        // Hashing and copying a server binary of a few hundred MB on a slow disk.
        Operation::ServerBinaries { .. }
        | Operation::InstallServer { .. }
        | Operation::RollbackServer { .. } => Duration::from_secs(300),
        Operation::EnsureService(_)
        | Operation::Plan { .. }
        | Operation::Unlock { .. }
        | Operation::TlsFiles { .. } => Duration::from_secs(120),
    };
    work + Duration::from_secs(30)
}

/// The `op` of a request line, for messages.
fn op_name(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("op").and_then(|op| op.as_str()).map(str::to_string))
        .unwrap_or_else(|| "a request".to_string())
}

/// How often the agent hears from us, also while it works on a request: it notes each line on
/// its node locks, and a run that finds a lock whose holder heard nothing for 8 s takes it over
/// (the agent's `lock::SILENT_LIMIT`); with no line at all for 30 s it ends by itself.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Sends the agent an empty line (which it skips) every [`HEARTBEAT`], until the agent is dropped
/// or its channel fails.
fn heartbeat(agent: &Arc<Mutex<ExecStream>>, lines: LineWriter) {
    let agent = Arc::downgrade(agent);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        loop {
            tick.tick().await;
            if agent.strong_count() == 0 || lines.send_line("").await.is_err() {
                return;
            }
        }
    });
}

fn target(host: &Host) -> Target {
    Target {
        name: host.name.clone(),
        address: host.ssh.address.clone(),
        port: Some(host.ssh.port),
        user: host.ssh.user.clone(),
        identity_file: host.ssh.identity_file.as_ref().map(PathBuf::from),
        become_root: host.ssh.become_root,
    }
}

async fn setup(
    host: Host,
    session: Session,
    catalog: Option<&AgentCatalog>,
    grpc: GrpcPath,
    tls: Option<&admin::ClientIdentity>,
) -> Result<Reached, ReachError> {
    let (mut agent, mut bytes_uploaded) = (None, 0);
    if let Some(catalog) = catalog {
        let launched = session
            .launch_agent(catalog, AGENT_REMOTE_DIR, &["serve"])
            .await?;
        bytes_uploaded = launched.bytes_uploaded;
        let lines = launched.stream.line_writer();
        let stream = Arc::new(Mutex::new(launched.stream));
        heartbeat(&stream, lines);
        agent = Some(stream);
    }
    let timeouts = Timeouts::default();
    let admin_error = |detail: String| ReachError::Admin {
        host: host.name.clone(),
        detail,
    };
    let endpoint = admin::endpoint(&host.advertised_address, timeouts)
        .map_err(|e| admin_error(e.to_string()))?;
    let admin = match grpc {
        GrpcPath::Direct => {
            AdminClient::from_channel(endpoint.connect_lazy(), &host.advertised_address, timeouts)
        }
        GrpcPath::Tunnel => AdminClient::from_channel(
            endpoint.connect_with_connector_lazy(crate::ssh::TunnelConnector::new(session.clone())),
            format!("{} (via ssh {})", host.advertised_address, host.name),
            timeouts,
        ),
    };
    let reached = Reached {
        host,
        session,
        admin,
        grpc,
        bytes_uploaded,
        agent,
        abandoned: AtomicBool::new(false),
    };
    if let Some(identity) = tls {
        reached
            .attach_tls(identity, true)
            .map_err(|e| ReachError::Admin {
                host: reached.host.name.clone(),
                detail: e.to_string(),
            })?;
    }
    Ok(reached)
}

impl Reached {
    pub fn name(&self) -> &str {
        &self.host.name
    }

    /// The admin client's TLS channel with the tool's `identity`, the same way as its plain one;
    /// `prefer`: calls use it from now on.
    pub fn attach_tls(
        &self,
        identity: &admin::ClientIdentity,
        prefer: bool,
    ) -> Result<(), admin::AdminError> {
        let endpoint =
            admin::tls_endpoint(&self.host.advertised_address, Timeouts::default(), identity)?;
        let channel = match self.grpc {
            GrpcPath::Direct => endpoint.connect_lazy(),
            GrpcPath::Tunnel => endpoint.connect_with_connector_lazy(
                crate::ssh::TunnelConnector::new(self.session.clone()),
            ),
        };
        self.admin.attach_tls(channel, prefer);
        Ok(())
    }

    /// One request, and the one kind of report it gets back (see [`FromReply`]).
    pub async fn ask<T: FromReply>(&self, op: Operation) -> Result<T, ReachError> {
        let asked = op.name();
        T::from_reply(self.call(op).await?).map_err(|answered| ReachError::WrongReply {
            host: self.name().to_string(),
            asked,
            answered,
        })
    }

    /// One request to the host's agent, one answer.
    async fn call(&self, op: Operation) -> Result<Reply, ReachError> {
        let deadline = answer_deadline(&op);
        let line = serde_json::to_string(&Request::new(op)).map_err(|e| {
            ReachError::agent(
                self.name(),
                AgentError::new(wire::ErrorKind::Internal, e.to_string()),
            )
        })?;
        let Some(agent) = &self.agent else {
            return Err(ReachError::AgentGone {
                host: self.name().to_string(),
                detail: "this command did not start the agent".to_string(),
            });
        };
        if self.abandoned.load(Ordering::SeqCst) {
            return Err(ReachError::AgentGone {
                host: self.name().to_string(),
                detail: "it left an earlier request unanswered".to_string(),
            });
        }
        let mut agent = agent.lock().await;
        let exchange = async {
            match agent.send_line(&line).await {
                Ok(()) => agent.recv_line().await,
                Err(err) => Err(err),
            }
        };
        let Ok(answered) = tokio::time::timeout(deadline, exchange).await else {
            self.abandoned.store(true, Ordering::SeqCst);
            return Err(ReachError::NoAnswer {
                host: self.name().to_string(),
                op: op_name(&line),
                after: deadline,
            });
        };
        let lost = |this: &Self| ReachError::ConnectionLost {
            host: this.name().to_string(),
            op: op_name(&line),
        };
        let answer = match answered {
            Ok(Some(answer)) => answer,
            _ if self.session.is_closed() => return Err(lost(self)),
            Err(err) => return Err(err.into()),
            Ok(None) => {
                return Err(ReachError::AgentGone {
                    host: self.name().to_string(),
                    detail: match String::from_utf8_lossy(agent.stderr()).trim() {
                        "" => "the agent ended without an answer or a word on stderr".to_string(),
                        said => said.to_string(),
                    },
                });
            }
        };
        let response: Response =
            serde_json::from_str(&answer).map_err(|e| ReachError::AgentGone {
                host: self.name().to_string(),
                detail: format!("unreadable answer ({e}): {answer}"),
            })?;
        response
            .into_result()
            .map_err(|error| ReachError::agent(self.name(), error))
    }

    pub fn service_manager(&self) -> ServiceManager {
        service_manager(&self.host.service)
    }

    /// What the agent needs to find, restart and health-check this node.
    pub fn node_target(&self, health_timeout: Duration) -> NodeTarget {
        let mut node = NodeTarget::new(&self.host.config_path);
        node.service = Some(service_manager(&self.host.service));
        node.advertised_address = Some(self.host.advertised_address.clone());
        node.service_user = self.host.service_user.clone();
        node.health_timeout_ms = health_timeout.as_millis() as u64;
        node
    }
}

fn service_manager(service: &restate_fleet_inventory::Service) -> ServiceManager {
    match service {
        restate_fleet_inventory::Service::Systemd { unit } => {
            ServiceManager::Systemd { unit: unit.clone() }
        }
        restate_fleet_inventory::Service::Command {
            start,
            stop,
            restart,
            status,
            ..
        } => ServiceManager::Command {
            start: start.clone(),
            stop: stop.clone(),
            restart: restart.clone(),
            status: status.clone(),
        },
    }
}

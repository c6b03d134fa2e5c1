//! Coordinator <-> agent messages.
//!
//! Every request and every answer is one JSON object carrying `protocol` (see [`PROTOCOL_VERSION`])
//! and an `op` tag. One-shot mode reads one request from stdin until EOF; `serve` mode reads one
//! request per line and answers each with one line. `docs/agent.md` is the reference with examples.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change of these types. The agent refuses any other version with a
/// [`ErrorKind::ProtocolMismatch`] error, and the coordinator refuses answers of another version.
pub const PROTOCOL_VERSION: u32 = 2;

/// Default time a node gets to report `Alive` after a start or restart.
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 60_000;

/// Default time a service manager command (e.g. `systemctl restart`) may take.
pub const DEFAULT_SERVICE_TIMEOUT_MS: u64 = 120_000;

/// `LimitNOFILE` of a unit written by [`Operation::EnsureService`] when the request gives none:
/// RocksDB keeps many files open, far more than the usual soft limit of 1024.
pub const DEFAULT_NOFILE: u64 = 65_536;

/// Key names whose values never appear in a diff, whatever the request marks secret.
pub const SECRET_KEYS: &[&str] = &["aws-secret-access-key", "aws-session-token"];

/// One request to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub protocol: u32,
    #[serde(flatten)]
    pub op: Operation,
}

impl Request {
    /// A request of the current protocol version.
    pub fn new(op: Operation) -> Self {
        Self {
            protocol: PROTOCOL_VERSION,
            op,
        }
    }
}

/// What the agent is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Report what the node is and runs; changes nothing.
    Facts {
        #[serde(flatten)]
        node: NodeTarget,
        /// restate-server binary; looked up on `PATH` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restate_server: Option<PathBuf>,
    },
    /// Compute the effect of a patch on the config file; changes nothing.
    Plan {
        config_path: PathBuf,
        patch: Vec<PatchOp>,
        /// As [`NodeTarget::service_user`]: who must still read the file once it holds secrets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_user: Option<String>,
        /// Secrets that go in an environment file instead of the config.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<Environment>,
        /// As [`NodeTarget::server_binary`]; `None` here checks nothing (the server that will
        /// read the file is not installed yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_binary: Option<PathBuf>,
    },
    /// Patch the config file (atomically, with a backup) and, when `restart` is set and the file
    /// changed, restart the node, wait for health and roll back when it does not come up.
    Apply {
        #[serde(flatten)]
        node: NodeTarget,
        patch: Vec<PatchOp>,
        #[serde(default)]
        restart: bool,
        /// Written (with its systemd drop-in) before the restart, when it differs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<Environment>,
    },
    /// Run the service manager's start, stop or restart; start and restart wait for health.
    Service {
        #[serde(flatten)]
        node: NodeTarget,
        action: ServiceAction,
    },
    /// Restore the newest backup of the config file, restart and wait for health.
    Rollback {
        #[serde(flatten)]
        node: NodeTarget,
    },
    /// Take the node lock and hold it until the agent exits (`serve` mode only).
    Lock {
        config_path: PathBuf,
        /// Who is running the coordinator, shown to anyone who finds the lock taken.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holder: Option<String>,
        /// The run's id in the coordinator's journal, for the host's audit log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    /// Release a lock taken with [`Operation::Lock`] in this session.
    Unlock { config_path: PathBuf },
    /// Look at restate-server binaries (the one in use, the install target, a staged upload):
    /// whether each exists, what it links to, its sha256 (cached on the host) and its version.
    /// Changes nothing but the hash cache.
    ServerBinaries { paths: Vec<PathBuf> },
    /// Put the restate-server binary uploaded to `staged` in place at `target`: verifies its
    /// sha256 and the version it reports, keeps the current `target` as `<target>.previous`, and
    /// replaces `target` atomically. Nothing changes when `target` already has that sha256.
    InstallServer {
        /// The uploaded file, e.g. `/var/lib/restate-fleet/binaries/restate-server-<sha256>`.
        staged: PathBuf,
        /// Lowercase hex sha256 the staged file (and afterwards `target`) must have.
        sha256: String,
        /// Where the binary runs from, e.g. `/usr/local/bin/restate-server`.
        target: PathBuf,
        /// What `staged --version` must report, e.g. `1.7.12`.
        version: String,
        /// Only report what would be done; the staged file may be absent then.
        #[serde(default, skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// Put `<target>.previous`, kept by [`Operation::InstallServer`], back in place atomically.
    RollbackServer { target: PathBuf },
    /// What `check` looks at beyond the guide: the host's clock, machine id, free space where the
    /// data lives, the open-files limit the service gets, and who listens on the given ports.
    /// Changes nothing; fast, so that the clock is read within one round trip.
    HostChecks {
        #[serde(flatten)]
        node: NodeTarget,
        /// TCP ports restate-server will listen on.
        ports: Vec<u16>,
    },
    /// What a support ticket needs of this host, secrets redacted: restate.toml, the environment
    /// files of the unit, the unit with its drop-ins and its status, the data directory's size,
    /// restate-server's version. Changes nothing.
    Collect {
        #[serde(flatten)]
        node: NodeTarget,
    },
    /// A node that left the cluster: its (stopped) service disabled, its data directory renamed
    /// aside so that it can neither start again by itself nor rejoin with its old identity.
    Retire {
        #[serde(flatten)]
        node: NodeTarget,
    },
    /// Fabric TLS material in `dir` (see [`TLS_CA_FILE`] and its siblings): the key 0600 and
    /// owned by `service_user` (root when none) before a byte of it is written, the certificates
    /// 0644; each file replaced only when its content or access differs. Without `files`, or with
    /// `dry_run`, nothing is written and the answer says what is there.
    TlsFiles {
        dir: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<TlsMaterial>,
        #[serde(default, skip_serializing_if = "is_false")]
        dry_run: bool,
        /// The operator's own files, read where they are instead of in `dir`; nothing is written
        /// (with `files`, a bad request).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_place: Option<TlsPaths>,
    },
    /// Make a node runnable: the system user (when asked), the data directory owned by it, the
    /// config readable by it, and with systemd a unit for restate-server when there is none.
    /// Never overwrites an existing unit; starts nothing.
    EnsureService(ServiceSetup),
}

impl Operation {
    /// The `op` tag, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Facts { .. } => "facts",
            Operation::Plan { .. } => "plan",
            Operation::Apply { .. } => "apply",
            Operation::Service { .. } => "service",
            Operation::Rollback { .. } => "rollback",
            Operation::Lock { .. } => "lock",
            Operation::Unlock { .. } => "unlock",
            Operation::ServerBinaries { .. } => "server_binaries",
            Operation::InstallServer { .. } => "install_server",
            Operation::RollbackServer { .. } => "rollback_server",
            Operation::Retire { .. } => "retire",
            Operation::EnsureService(_) => "ensure_service",
            Operation::HostChecks { .. } => "host_checks",
            Operation::Collect { .. } => "collect",
            Operation::TlsFiles { .. } => "tls_files",
        }
    }
}

/// The files of [`Operation::TlsFiles`], as `[tls]` in restate.toml names them.
pub const TLS_CA_FILE: &str = "ca.pem";
pub const TLS_CERT_FILE: &str = "node.pem";
pub const TLS_KEY_FILE: &str = "node.key";

/// Where a host keeps fabric TLS files of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPaths {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// How a key file on a host may be read; never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAccess {
    /// Permission bits, e.g. 0o600.
    pub mode: u32,
    /// Any user of the host may read it.
    pub world_readable: bool,
    /// The service's user may read it; `None` while that user does not exist.
    pub service_user_reads: Option<bool>,
}

/// A node's fabric TLS material, PEM.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Never the key.
impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("cert_bytes", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// What [`Operation::TlsFiles`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsFilesReport {
    pub dir: PathBuf,
    /// The files that were (or, in a dry run, would be) written, by name.
    pub changed: Vec<String>,
    /// The node's certificate as it was before this call (public), to check who signed it.
    pub cert_pem: Option<String>,
    pub dry_run: bool,
    /// With `in_place`: the CA bundle the node trusts (public) and how its key may be read
    /// (`None`: no key file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyAccess>,
}

/// Where a node's config lives, how its service is driven and where it answers health checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTarget {
    pub config_path: PathBuf,
    /// Needed by every operation that starts, stops or restarts the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceManager>,
    /// Fabric address (`http://host:5122/`) used for `/health` when the file has no
    /// `advertised-address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_address: Option<String>,
    /// The server's working directory, against which a relative `base-dir` is resolved
    /// (default `/`, systemd's default for system services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// The dedicated user the server runs as (`None`: root): a config that gets secrets stays
    /// readable by it and by nobody else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_user: Option<String>,
    #[serde(default = "default_health_timeout_ms")]
    pub health_timeout_ms: u64,
    #[serde(default = "default_service_timeout_ms")]
    pub service_timeout_ms: u64,
    /// The restate-server that reads the file next: a changed file is checked with it before
    /// it is written in place (`None`: the one on the agent's PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_binary: Option<PathBuf>,
}

impl NodeTarget {
    /// A target with defaults for everything but the config path.
    pub fn new(config_path: impl Into<PathBuf>) -> Self {
        Self {
            config_path: config_path.into(),
            service: None,
            advertised_address: None,
            working_dir: None,
            service_user: None,
            health_timeout_ms: DEFAULT_HEALTH_TIMEOUT_MS,
            service_timeout_ms: DEFAULT_SERVICE_TIMEOUT_MS,
            server_binary: None,
        }
    }
}

fn default_health_timeout_ms() -> u64 {
    DEFAULT_HEALTH_TIMEOUT_MS
}

fn default_service_timeout_ms() -> u64 {
    DEFAULT_SERVICE_TIMEOUT_MS
}

/// How the restate-server service is driven. Commands run directly (argv), never through a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "manager", rename_all = "snake_case")]
pub enum ServiceManager {
    /// `systemctl start|stop|restart UNIT`; state from `systemctl is-active UNIT`.
    Systemd { unit: String },
    /// One argv per action; `status` exits 0 when the server runs.
    Command {
        start: Vec<String>,
        stop: Vec<String>,
        restart: Vec<String>,
        status: Vec<String>,
    },
}

/// What [`Operation::Retire`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetireReport {
    /// The systemd unit disabled; `None` with the `command` manager (nothing to disable).
    pub disabled: Option<String>,
    /// The data directory and where it now is; `None` when there was none.
    pub data_dir: Option<(PathBuf, PathBuf)>,
}

/// Variables for restate-server kept out of its config file: an environment file (0600, root)
/// that a drop-in of the systemd unit names with `EnvironmentFile=`. Every value is a secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub path: PathBuf,
    /// The unit whose drop-in directory gets `restate-fleet-environment.conf`.
    pub unit: String,
    /// `NAME`, value; names are `[A-Z_][A-Z0-9_]*`.
    pub variables: Vec<(String, String)>,
}

/// Names only: a request in a debug log never shows a value.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.variables.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Environment")
            .field("path", &self.path)
            .field("unit", &self.unit)
            .field("variables", &names)
            .finish_non_exhaustive()
    }
}

/// The working directory of the unit restate-fleet writes, where a relative `base-dir` starts.
pub const DEFAULT_WORKING_DIR: &str = "/var/lib/restate";

/// What [`Operation::EnsureService`] sets up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSetup {
    /// With systemd, the unit to find or write; with `command`, no unit is involved.
    pub service: ServiceManager,
    /// The restate-server binary the unit runs.
    pub binary: PathBuf,
    pub config_path: PathBuf,
    /// The server's working directory (where a relative `base-dir` starts), created when missing
    /// and owned by `user`.
    pub data_dir: PathBuf,
    /// Dedicated system user to run as, created when missing; `None`: root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `LimitNOFILE` of a written unit.
    #[serde(default = "default_nofile")]
    pub nofile: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

fn default_nofile() -> u64 {
    DEFAULT_NOFILE
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
    /// `systemctl reboot` of the whole host: the agent answers, then the host goes down; the
    /// service is to start again by itself at boot.
    Reboot,
}

impl fmt::Display for ServiceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceAction::Start => "start",
            ServiceAction::Stop => "stop",
            ServiceAction::Restart => "restart",
            ServiceAction::Reboot => "reboot",
        })
    }
}

/// One edit of restate.toml. `path` is the key's dotted path split into segments, e.g.
/// `["worker", "snapshots", "destination"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PatchOp {
    /// Set a key. A table value is merged key by key into the existing table.
    Set {
        path: Vec<String>,
        value: ConfigValue,
        /// Redact this key's values in diffs.
        #[serde(default, skip_serializing_if = "is_false")]
        secret: bool,
    },
    /// Remove a key or table; absent keys are no change.
    Remove {
        path: Vec<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        secret: bool,
    },
    /// Move a key's value (as written) to another key, replacing any value there: a key a
    /// release renamed. An absent key is no change.
    Rename { path: Vec<String>, to: Vec<String> },
}

impl PatchOp {
    pub fn set(path: &[&str], value: impl Into<ConfigValue>) -> Self {
        PatchOp::Set {
            path: path.iter().map(|s| s.to_string()).collect(),
            value: value.into(),
            secret: false,
        }
    }

    pub fn remove(path: &[&str]) -> Self {
        PatchOp::Remove {
            path: path.iter().map(|s| s.to_string()).collect(),
            secret: false,
        }
    }

    pub fn rename(path: &[&str], to: &[&str]) -> Self {
        PatchOp::Rename {
            path: path.iter().map(|s| s.to_string()).collect(),
            to: to.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The same op with its values redacted in diffs (a rename moves a value, which the old
    /// key's redaction already covers).
    pub fn secret(mut self) -> Self {
        match &mut self {
            PatchOp::Set { secret, .. } | PatchOp::Remove { secret, .. } => *secret = true,
            PatchOp::Rename { .. } => {}
        }
        self
    }

    pub fn path(&self) -> &[String] {
        match self {
            PatchOp::Set { path, .. }
            | PatchOp::Remove { path, .. }
            | PatchOp::Rename { path, .. } => path,
        }
    }

    pub fn is_secret(&self) -> bool {
        match self {
            PatchOp::Set { secret, .. } | PatchOp::Remove { secret, .. } => *secret,
            PatchOp::Rename { .. } => false,
        }
    }

    /// Puts a secret into the file (removing one does not).
    pub fn writes_secret(&self) -> bool {
        matches!(self, PatchOp::Set { secret: true, .. })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A TOML value as JSON: string, integer, float, bool, array or table (JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Array(Vec<ConfigValue>),
    Table(BTreeMap<String, ConfigValue>),
}

impl From<&str> for ConfigValue {
    fn from(s: &str) -> Self {
        ConfigValue::String(s.to_string())
    }
}

impl From<String> for ConfigValue {
    fn from(s: String) -> Self {
        ConfigValue::String(s)
    }
}

impl From<bool> for ConfigValue {
    fn from(b: bool) -> Self {
        ConfigValue::Bool(b)
    }
}

impl From<i64> for ConfigValue {
    fn from(i: i64) -> Self {
        ConfigValue::Integer(i)
    }
}

impl From<f64> for ConfigValue {
    fn from(f: f64) -> Self {
        ConfigValue::Float(f)
    }
}

impl<T: Into<ConfigValue>> From<Vec<T>> for ConfigValue {
    fn from(items: Vec<T>) -> Self {
        ConfigValue::Array(items.into_iter().map(Into::into).collect())
    }
}

/// One answer of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub protocol: u32,
    #[serde(flatten)]
    pub reply: Reply,
}

impl Response {
    pub fn new(reply: Reply) -> Self {
        Self {
            protocol: PROTOCOL_VERSION,
            reply,
        }
    }

    /// The reply, or the agent's error (also for an answer of another protocol version).
    pub fn into_result(self) -> Result<Reply, AgentError> {
        if self.protocol != PROTOCOL_VERSION {
            return Err(AgentError::new(
                ErrorKind::ProtocolMismatch,
                format!(
                    "agent answered with protocol {}, this coordinator speaks {PROTOCOL_VERSION}",
                    self.protocol
                ),
            )
            .with_hint("upload the agent that ships with this coordinator"));
        }
        match self.reply {
            Reply::Error(e) => Err(e),
            other => Ok(other),
        }
    }
}

/// The result of an operation; `op` matches the request's, or is `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Reply {
    Facts(Box<Facts>),
    Plan(PatchPreview),
    Apply(Box<ApplyReport>),
    Service(ServiceReport),
    Rollback(RollbackReport),
    Lock(LockInfo),
    Unlock(LockInfo),
    ServerBinaries(ServerBinaries),
    InstallServer(InstallReport),
    RollbackServer(ServerRollbackReport),
    Retire(RetireReport),
    EnsureService(ServiceSetupReport),
    HostChecks(HostChecks),
    Collect(Collected),
    TlsFiles(TlsFilesReport),
    Error(AgentError),
}

impl Reply {
    /// The `op` tag, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Facts(_) => "facts",
            Reply::Plan(_) => "plan",
            Reply::Apply(_) => "apply",
            Reply::Service(_) => "service",
            Reply::Rollback(_) => "rollback",
            Reply::Lock(_) => "lock",
            Reply::Unlock(_) => "unlock",
            Reply::ServerBinaries(_) => "server_binaries",
            Reply::InstallServer(_) => "install_server",
            Reply::RollbackServer(_) => "rollback_server",
            Reply::Retire(_) => "retire",
            Reply::EnsureService(_) => "ensure_service",
            Reply::HostChecks(_) => "host_checks",
            Reply::Collect(_) => "collect",
            Reply::TlsFiles(_) => "tls_files",
            Reply::Error(_) => "error",
        }
    }
}

/// The report one kind of request gets back, taken out of its [`Reply`]: what lets a caller ask
/// for a `T` and get a `T`, and any other answer become one error naming both.
pub trait FromReply: Sized {
    /// The other reply's name when it holds no `Self`.
    fn from_reply(reply: Reply) -> Result<Self, &'static str>;
}

macro_rules! from_reply {
    ($($variant:ident => $report:ty),* $(,)?) => {$(
        impl FromReply for $report {
            fn from_reply(reply: Reply) -> Result<Self, &'static str> {
                match reply {
                    Reply::$variant(report) => Ok(report),
                    other => Err(other.name()),
                }
            }
        }
    )*};
}

from_reply! {
    Facts => Box<Facts>,
    Plan => PatchPreview,
    Service => ServiceReport,
    Rollback => RollbackReport,
    ServerBinaries => ServerBinaries,
    InstallServer => InstallReport,
    RollbackServer => ServerRollbackReport,
    Retire => RetireReport,
    EnsureService => ServiceSetupReport,
    HostChecks => HostChecks,
    Collect => Collected,
    TlsFiles => TlsFilesReport,
}

impl FromReply for ApplyReport {
    fn from_reply(reply: Reply) -> Result<Self, &'static str> {
        match reply {
            Reply::Apply(report) => Ok(*report),
            other => Err(other.name()),
        }
    }
}

/// `lock` and `unlock` both answer with the lock's state.
impl FromReply for LockInfo {
    fn from_reply(reply: Reply) -> Result<Self, &'static str> {
        match reply {
            Reply::Lock(info) | Reply::Unlock(info) => Ok(info),
            other => Err(other.name()),
        }
    }
}

/// What [`Operation::Collect`] gathered: files for the bundle, each already redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub files: Vec<CollectedFile>,
    /// What could not be gathered, and why.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedFile {
    /// Relative name in the host's folder of the bundle, e.g. `restate.toml`.
    pub name: String,
    pub text: String,
}

/// What [`Operation::HostChecks`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostChecks {
    /// The host's wall clock when the answer was made, in ms since the Unix epoch.
    pub clock_unix_ms: i64,
    /// `/etc/machine-id`, when the host has one.
    pub machine_id: Option<String>,
    pub space: Option<FreeSpace>,
    /// `None` when the service's limit cannot be known before its unit exists.
    pub open_files: Option<OpenFiles>,
    /// Listening sockets on the asked ports, whoever holds them.
    pub listeners: Vec<Listener>,
}

/// Free space of the filesystem that holds (or will hold) the data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreeSpace {
    /// The directory measured: the data directory, or where it will be made (its nearest
    /// existing parent).
    pub path: PathBuf,
    /// Bytes an unprivileged process may still write.
    pub available_bytes: u64,
    pub total_bytes: u64,
}

/// `RLIMIT_NOFILE` the service starts with. restate-server raises its soft limit to the hard
/// one at start (server/src/main.rs, `rlimit::increase_nofile_limit(u64::MAX)`), so the hard
/// limit is what it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
    /// Where the figure comes from, e.g. `LimitNOFILE of restate.service`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub port: u16,
    /// The local address, e.g. `0.0.0.0` or `::`.
    pub address: String,
    pub pid: Option<u32>,
    /// The process's name (`/proc/<pid>/comm`).
    pub process: Option<String>,
}

/// What a node is, runs and says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub agent_version: String,
    /// `std::env::consts::OS`, e.g. `linux`.
    pub os: String,
    /// `uname -m`, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    pub hostname: Option<String>,
    pub restate_server: Option<ServerBinary>,
    pub config: ConfigFacts,
    pub data_dir: Option<DataDirFacts>,
    /// `None` when the request named no service manager.
    pub service: Option<ServiceState>,
    /// The node's own `/health` answer; `None` when nothing answered.
    pub health: Option<Health>,
    /// Why `health` is `None` (connection refused, timeout, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerBinary {
    pub path: PathBuf,
    /// Raw first line of `restate-server --version`, or why it could not run.
    pub version_output: String,
    /// `1.7.12` parsed from it.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerBinaries {
    /// One per requested path, in request order.
    pub binaries: Vec<BinaryFile>,
}

/// One restate-server binary on the host, as [`Operation::ServerBinaries`] finds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryFile {
    pub path: PathBuf,
    /// `path` leads to a regular file (through symlinks).
    pub exists: bool,
    /// What `path` links to, as written in the link, when it is a symlink.
    pub link_target: Option<PathBuf>,
    /// Lowercase hex sha256 of the content.
    pub sha256: Option<String>,
    /// First line of `path --version`, or why it could not run.
    pub version_output: Option<String>,
    /// `1.7.12` parsed from it.
    pub version: Option<String>,
    /// `<path>.previous` exists, so [`Operation::RollbackServer`] can put it back.
    pub previous: Option<PathBuf>,
    /// Why the file could not be read, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallReport {
    pub target: PathBuf,
    /// `target` was (or, in a dry run, would be) replaced.
    pub changed: bool,
    pub dry_run: bool,
    /// The version now at `target` (or that would be).
    pub version: String,
    /// What was at `target` before, kept as `<target>.previous`; `None` when nothing was there or
    /// nothing changed.
    pub previous: Option<PreviousBinary>,
    /// What was done (or would be), in order, for the operator.
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousBinary {
    /// `<target>.previous`.
    pub path: PathBuf,
    pub version: Option<String>,
    /// When the previous binary was a symlink, where it pointed (kept as a symlink).
    pub link_target: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRollbackReport {
    pub target: PathBuf,
    /// The `<target>.previous` that is `target` again (and exists no more).
    pub restored_from: PathBuf,
    /// What `target --version` says now.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSetupReport {
    /// Something was (or, in a dry run, would be) changed.
    pub changed: bool,
    pub dry_run: bool,
    /// The systemd unit file found or written; `None` with the `command` manager.
    pub unit_path: Option<PathBuf>,
    /// The unit file was (or would be) written by this call.
    pub unit_written: bool,
    /// Each thing done (or that would be), in order, and what was already in place.
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFacts {
    pub path: PathBuf,
    pub exists: bool,
    /// Set when the file exists but is not valid TOML.
    pub parse_error: Option<ParseErrorInfo>,
    /// What the file says; all `None` when it does not exist or does not parse.
    pub values: ConfigValues,
    /// Every key the file sets, dotted (`worker.snapshots.destination`), values left out: what
    /// an upgrade holds against the keys a release renamed or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// The keys the fleet tool reasons about, as written in the file (absent = server default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigValues {
    pub cluster_name: Option<String>,
    pub node_name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub auto_provision: Option<bool>,
    pub metadata_client_addresses: Option<Vec<String>>,
    pub bifrost_default_provider: Option<String>,
    pub snapshots_destination: Option<String>,
    pub base_dir: Option<String>,
    pub advertised_address: Option<String>,
    /// `[tls] mode` (fabric TLS, Restate 1.7.3+): `off`, `allow`, `prefer` or `require`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParseErrorInfo {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The node's data directory, `<base-dir>/<node-name>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataDirFacts {
    pub path: PathBuf,
    pub exists: bool,
    /// From `.cluster-marker`, which restate-server writes on first start.
    pub cluster_name: Option<String>,
    pub cluster_fingerprint: Option<u64>,
    /// Version of the server that last ran on this data.
    pub server_version: Option<String>,
    /// Why the marker could not be read, when the directory exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Stopped,
    /// The status command itself failed to run.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    pub state: RunState,
    pub detail: String,
    /// With systemd: whether systemd runs on the host at all (`/run/systemd/system`), and
    /// `systemctl is-enabled UNIT`'s answer (`enabled`, `disabled`, `masked`, `not-found`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemdState {
    pub booted: bool,
    pub enabled: String,
}

/// A `GET /health` answer of the node's fabric port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub address: String,
    /// `Alive` when every role of the node is ready.
    pub status: String,
    pub node_id: Option<String>,
    pub cluster_name: Option<String>,
    pub roles: Vec<String>,
    /// The whole JSON document, for fields not modelled here.
    pub raw: serde_json::Value,
}

impl Health {
    pub fn is_alive(&self) -> bool {
        self.status == "Alive"
    }
}

/// What a patch does to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchPreview {
    pub path: PathBuf,
    pub changed: bool,
    /// Unified diff, secret values shown as `<redacted>`; empty when nothing changes.
    pub diff: String,
    /// The restate.toml keys that change, dotted (`metadata-client.addresses`): what step lines
    /// name. Empty when only the environment file changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_keys: Vec<String>,
    /// The environment file (the snapshot repository's credentials) changes too: only a
    /// restart makes the server read it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub environment_changed: bool,
    /// The file's mode or group narrowed because it now holds secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessChange>,
    /// Why the restate-server that reads the new file refuses it (its own message), when it was
    /// asked and does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// A narrowing of who may read a file (mode bits, numeric group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChange {
    pub mode_before: u32,
    pub mode_after: u32,
    pub gid_before: u32,
    pub gid_after: u32,
}

impl std::fmt::Display for AccessChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mode {:04o} -> {:04o}",
            self.mode_before, self.mode_after
        )?;
        if self.gid_before != self.gid_after {
            write!(f, ", group {} -> {}", self.gid_before, self.gid_after)?;
        }
        f.write_str(": the file now holds secrets")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    #[serde(flatten)]
    pub preview: PatchPreview,
    /// Copy of the previous file, when the file changed and existed before. `None` after an
    /// automatic rollback: the file is the previous one again, and that copy was dropped.
    pub backup: Option<PathBuf>,
    /// The restart after the change (`None` without `restart` or when nothing changed).
    pub restart: Option<ServiceReport>,
    /// Present when the node did not become healthy after the change and the old file was put back.
    pub rollback: Option<RollbackReport>,
}

impl ApplyReport {
    /// The change is in place and, when a restart was asked, the node is healthy with it.
    pub fn succeeded(&self) -> bool {
        self.rollback.is_none() && self.restart.as_ref().is_none_or(|r| r.healthy())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub action: ServiceAction,
    /// The health wait after a start or restart; `None` after a stop.
    pub health: Option<HealthWait>,
}

impl ServiceReport {
    pub fn healthy(&self) -> bool {
        self.health.as_ref().is_none_or(|h| h.healthy)
    }
}

/// Outcome of polling `/health` until `Alive` or the timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthWait {
    pub address: String,
    pub healthy: bool,
    pub waited_ms: u64,
    pub attempts: u32,
    /// The last status seen or the last error, for the operator.
    pub last: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    pub path: PathBuf,
    /// Where the restored bytes came from: a backup file, or the agent's copy of the file taken
    /// before a failed apply (`None`).
    pub restored_from: Option<PathBuf>,
    /// The restart with the restored file.
    pub restart: ServiceReport,
    /// In an apply: why the new file was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub path: PathBuf,
    pub pid: u32,
    /// RFC 3339 UTC time the lock was taken.
    pub since: String,
    pub holder: String,
    /// The operation the holder is working on, when it is; in the lock file, for a run that
    /// finds the node locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<String>,
    /// In a `lock` answer: the lock was taken from the agent of a run that had gone silent,
    /// described for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<String>,
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "locked by pid {} since {} ({})",
            self.pid, self.since, self.holder
        )?;
        match &self.busy {
            Some(op) => write!(f, ", working on `{op}`"),
            None => Ok(()),
        }
    }
}

/// A structured failure the coordinator shows next to the host name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
    /// The file concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The config key concerned (dotted), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// 1-based line in the file, for parse errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column (in characters), for parse errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What the operator can do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl AgentError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            path: None,
            key: None,
            line: None,
            column: None,
            hint: None,
        }
    }

    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_location(mut self, line: usize, column: usize) -> Self {
        self.line = Some(u32::try_from(line).unwrap_or(u32::MAX));
        self.column = Some(u32::try_from(column).unwrap_or(u32::MAX));
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(path) = &self.path {
            write!(f, " [{}", path.display())?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            write!(f, "]")?;
        }
        if let Some(key) = &self.key {
            write!(f, " (key {key})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AgentError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is not valid JSON or not a known operation.
    BadRequest,
    /// The request's protocol version is not the agent's.
    ProtocolMismatch,
    /// The config file is not valid TOML (see `line` and `column`).
    ConfigParse,
    /// A patch op cannot be applied (e.g. a key path runs into a non-table value).
    Patch,
    /// Another run holds the node lock.
    Locked,
    /// Reading or writing a file failed.
    Io,
    /// The service manager command failed or timed out.
    Service,
    /// `rollback` found no backup to restore (or `rollback_server` no previous binary).
    NoBackup,
    /// A staged binary does not have the expected sha256, or does not report the expected version.
    Verify,
    /// The operation is not possible in this mode or with these inputs.
    Unsupported,
    /// The restate-server that would read the new config refuses it (its message says why);
    /// nothing was written.
    ConfigRejected,
    /// A bug in the agent; the message says where.
    Internal,
}

/// Each host's record of what restate-fleet changed on it: one JSON line per change (see the
/// agent's `audit`), which `status` reads the last line of.
pub const AUDIT_LOG: &str = "/var/lib/restate-fleet/audit.log";

/// Whether the agent accepts `user` as a service user: the portable names `useradd` takes
/// without `--badname` (which also keeps a name from reading as an option). The inventory checks
/// the same rule, so that a bad name is an inventory error before any host is touched.
pub fn is_portable_user_name(user: &str) -> bool {
    let mut bytes = user.bytes();
    user.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gives_its_report_or_its_name() {
        let info = LockInfo {
            path: "/etc/restate/restate.toml".into(),
            pid: 7,
            since: "2026-11-29T00:00:00Z".into(),
            holder: "h".into(),
            busy: None,
            took_over: None,
        };
        assert_eq!(
            LockInfo::from_reply(Reply::Unlock(info.clone())),
            Ok(info.clone())
        );
        assert_eq!(
            PatchPreview::from_reply(Reply::Lock(info)).map(|_| ()),
            Err("lock")
        );
    }

    #[test]
    fn request_json_shape_is_flat_and_tagged() {
        let req = Request::new(Operation::Apply {
            node: NodeTarget::new("/etc/restate/restate.toml"),
            patch: vec![
                PatchOp::set(&["worker", "snapshots", "destination"], "s3://b/p"),
                PatchOp::set(&["worker", "snapshots", "aws-secret-access-key"], "x").secret(),
                PatchOp::remove(&["auto-provision"]),
            ],
            restart: true,
            environment: None,
        });
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["protocol"], PROTOCOL_VERSION);
        assert_eq!(json["op"], "apply");
        assert_eq!(json["config_path"], "/etc/restate/restate.toml");
        assert_eq!(json["patch"][0]["op"], "set");
        assert_eq!(json["patch"][1]["secret"], true);
        let back: Request = serde_json::from_value(json).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn install_and_setup_requests_have_defaults_and_flat_shapes() {
        let req: Request = serde_json::from_str(
            r#"{"protocol": 2, "op": "ensure_service",
                "service": {"manager": "systemd", "unit": "restate.service"},
                "binary": "/usr/local/bin/restate-server",
                "config_path": "/etc/restate/restate.toml", "data_dir": "/var/lib/restate"}"#,
        )
        .unwrap();
        let Operation::EnsureService(setup) = &req.op else {
            panic!("{req:?}")
        };
        assert_eq!(
            (setup.nofile, setup.dry_run, &setup.user),
            (DEFAULT_NOFILE, false, &None)
        );
        let install = Request::new(Operation::InstallServer {
            staged: "/var/lib/restate-fleet/binaries/restate-server-ab".into(),
            sha256: "ab".into(),
            target: "/usr/local/bin/restate-server".into(),
            version: "1.7.12".into(),
            dry_run: false,
        });
        let json = serde_json::to_value(&install).unwrap();
        assert_eq!(json["op"], "install_server");
        assert!(json.get("dry_run").is_none());
        assert_eq!(serde_json::from_value::<Request>(json).unwrap(), install);
        let reply: Response = serde_json::from_str(
            r#"{"protocol": 2, "op": "rollback_server", "target": "/t",
                "restored_from": "/t.previous", "version": "1.6.2"}"#,
        )
        .unwrap();
        assert!(matches!(reply.into_result(), Ok(Reply::RollbackServer(_))));
    }

    #[test]
    fn config_values_keep_their_json_types() {
        let v: ConfigValue =
            serde_json::from_str(r#"{"a": 1, "b": 1.5, "c": [true, "x"], "d": {"e": "f"}}"#)
                .unwrap();
        let ConfigValue::Table(t) = v else {
            panic!("not a table")
        };
        assert_eq!(t["a"], ConfigValue::Integer(1));
        assert_eq!(t["b"], ConfigValue::Float(1.5));
        assert_eq!(t["c"], ConfigValue::Array(vec![true.into(), "x".into()]));
    }

    #[test]
    fn error_reply_round_trips_and_becomes_err() {
        let resp = Response::new(Reply::Error(
            AgentError::new(ErrorKind::Locked, "locked by pid 7").with_hint("wait"),
        ));
        let text = serde_json::to_string(&resp).unwrap();
        let back: Response = serde_json::from_str(&text).unwrap();
        let err = back.into_result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Locked);
    }

    #[test]
    fn other_protocol_answer_is_refused() {
        let mut resp = Response::new(Reply::Unlock(LockInfo {
            path: "/x".into(),
            pid: 1,
            since: "t".into(),
            holder: "h".into(),
            busy: None,
            took_over: None,
        }));
        resp.protocol = PROTOCOL_VERSION + 1;
        assert_eq!(
            resp.into_result().unwrap_err().kind,
            ErrorKind::ProtocolMismatch
        );
    }
}

//! The resolved fleet: what the coordinator works from. Everything serializes, secrets redacted.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{ConfigEntry, ConfigValue, Location, Replication, Secret};

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub cluster: Cluster,
    /// In file order.
    pub hosts: Vec<Host>,
    /// In file order.
    pub groups: Vec<Group>,
    /// `[defaults]` alone, as a host without a name or address: how a cluster node that is no
    /// longer in the inventory is reached (see [`Fleet::leaving_host`]).
    #[serde(skip)]
    pub defaults: Host,
}

impl Fleet {
    /// Every secret value the inventory holds (credentials, passphrases, `{ env = ... }` config
    /// values): what no record of a run may contain.
    pub fn secret_values(&self) -> Vec<String> {
        fn collect<'a>(value: &'a ConfigValue, out: &mut Vec<&'a Secret>) {
            match value {
                ConfigValue::Secret(secret) => out.push(secret),
                ConfigValue::Array(items) => items.iter().for_each(|v| collect(v, out)),
                ConfigValue::Table(entries) => entries.iter().for_each(|(_, v)| collect(v, out)),
                _ => {}
            }
        }
        let mut secrets: Vec<&Secret> = Vec::new();
        if let Some(s) = &self.cluster.snapshots {
            secrets.extend(
                [
                    &s.aws_access_key_id,
                    &s.aws_secret_access_key,
                    &s.aws_session_token,
                ]
                .into_iter()
                .flatten(),
            );
        }
        for host in self.hosts.iter().chain(std::iter::once(&self.defaults)) {
            secrets.extend(&host.ssh.identity_passphrase);
            for entry in &host.config {
                collect(&entry.value, &mut secrets);
            }
        }
        let mut values: Vec<String> = secrets.iter().map(|s| s.expose().to_string()).collect();
        values.sort();
        values.dedup();
        values
    }

    /// The host of a cluster node the inventory no longer lists, to stop it and keep its data
    /// aside: `[defaults]`'s SSH settings, service and config path, at the host of the fabric
    /// address the node advertises.
    pub fn leaving_host(&self, node_name: &str, advertised_address: &str) -> Option<Host> {
        let without_scheme = advertised_address
            .split_once("://")
            .map_or(advertised_address, |(_, rest)| rest);
        let authority = without_scheme.split('/').next()?;
        let address = match authority.strip_prefix('[') {
            // [v6]:port
            Some(v6) => v6.split_once(']')?.0,
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        if address.is_empty() {
            return None;
        }
        let mut host = self.defaults.clone();
        host.name = node_name.to_string();
        host.node_name = node_name.to_string();
        host.ssh.address = address.to_string();
        host.advertised_address = advertised_address.to_string();
        Some(host)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    /// Target log and partition replication after growing: copies (Restate's `node` scope).
    pub replication: Option<u32>,
    /// The same, as written: with the zones or regions copies spread over, when it says so.
    pub replication_property: Option<Replication>,
    /// Host names (inventory keys) of the metadata servers, explicit or derived from roles.
    pub metadata_servers: Vec<String>,
    pub restate_server: Option<RestateServer>,
    /// Becomes `[worker.snapshots]` on every node.
    pub snapshots: Option<Snapshots>,
    /// The logs' nodeset size (0: Restate chooses); `None`: as the cluster has it, except the 1
    /// left by the local loglet, which becomes auto.
    pub nodeset_size: Option<u32>,
    /// A restatectl binary for the hosts (relative to the inventory's directory), run on a
    /// member to remove nodes; without it, one installed on that member is used.
    pub restatectl: Option<PathBuf>,
    /// `[cluster.tls]`: fabric TLS, `None` when the inventory does not manage it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::FabricTls>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestateServer {
    pub version: String,
    pub binary: ServerBinary,
    /// Where the binary goes on the hosts (`install-path`). `None`: where a host already has
    /// restate-server, else [`DEFAULT_INSTALL_PATH`].
    pub install_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerBinary {
    /// One binary for every host.
    Any(PathBuf),
    /// One binary per CPU architecture.
    PerArch(Vec<(Arch, PathBuf)>),
}

impl ServerBinary {
    /// The binary to install on a host of `arch`; `None` when the inventory has none for it.
    pub fn for_arch(&self, arch: Arch) -> Option<&Path> {
        match self {
            ServerBinary::Any(path) => Some(path),
            ServerBinary::PerArch(paths) => paths
                .iter()
                .find(|(a, _)| *a == arch)
                .map(|(_, p)| p.as_path()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// As `uname -m` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// `[worker.snapshots]` for every node. Credentials are secrets whether written inline or read
/// from the environment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshots {
    pub destination: String,
    pub snapshot_interval: Option<String>,
    pub snapshot_interval_num_records: Option<i64>,
    pub aws_profile: Option<String>,
    pub aws_region: Option<String>,
    pub aws_endpoint_url: Option<String>,
    pub aws_allow_http: Option<bool>,
    pub aws_access_key_id: Option<Secret>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    /// Where the three credentials go on the hosts.
    pub credentials: CredentialsIn,
}

/// `[cluster.snapshots] credentials`: where the S3 credentials are written on the hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialsIn {
    /// `[worker.snapshots]` of restate.toml, which is then narrowed to root, owner and service.
    #[default]
    RestateToml,
    /// An environment file (0600 root) named by a systemd drop-in, as Restate's
    /// `RESTATE_WORKER__SNAPSHOTS__*` variables; restate.toml keeps none.
    EnvironmentFile,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// The inventory key (`[hosts.NAME]`).
    pub name: String,
    /// Groups that list this host, in file order.
    pub groups: Vec<String>,
    pub ssh: SshTarget,
    pub node_name: String,
    pub advertised_address: String,
    pub roles: Vec<Role>,
    /// `location` in its restate.toml (`region.zone`); `None`: the file's own, if any.
    pub location: Option<Location>,
    pub metadata_server: bool,
    pub config_path: String,
    pub service: Service,
    /// The dedicated system user restate-server runs as (`service.user`); `None`: root, or whatever
    /// an existing unit says.
    pub service_user: Option<String>,
    /// The inventory's `config` keys after merging defaults < groups < host. The keys the tool
    /// manages are not in here.
    pub config: Vec<ConfigEntry>,
}

impl Host {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SshTarget {
    pub address: String,
    pub port: u16,
    /// `None`: whatever ssh would use (ssh config, current user).
    pub user: Option<String>,
    pub identity_file: Option<String>,
    pub identity_passphrase: Option<Secret>,
    /// Run commands through `sudo -n`.
    #[serde(rename = "become")]
    pub become_root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "manager", rename_all = "kebab-case")]
pub enum Service {
    Systemd {
        unit: String,
    },
    /// Each command is an argv, run without a shell.
    Command {
        start: Vec<String>,
        stop: Vec<String>,
        restart: Vec<String>,
        status: Vec<String>,
        /// The file the commands log restate-server's output to, for `restate-fleet logs`.
        #[serde(skip_serializing_if = "Option::is_none")]
        log: Option<String>,
    },
}

impl Default for Service {
    fn default() -> Self {
        Service::Systemd {
            unit: DEFAULT_UNIT.to_string(),
        }
    }
}

pub const DEFAULT_UNIT: &str = "restate.service";
/// Where restate-server is installed on a host that has none.
pub const DEFAULT_INSTALL_PATH: &str = "/usr/local/bin/restate-server";
pub const DEFAULT_CONFIG_PATH: &str = "/etc/restate/restate.toml";
pub const DEFAULT_SSH_PORT: u16 = 22;
pub const FABRIC_PORT: u16 = 5122;

/// Restate's node roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Worker,
    Admin,
    MetadataServer,
    LogServer,
    HttpIngress,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Worker,
        Role::Admin,
        Role::MetadataServer,
        Role::LogServer,
        Role::HttpIngress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Admin => "admin",
            Role::MetadataServer => "metadata-server",
            Role::LogServer => "log-server",
            Role::HttpIngress => "http-ingress",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

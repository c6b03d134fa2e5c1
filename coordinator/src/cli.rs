//! The command-line contract (see design.md). Extend it; never change what exists.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "restate-fleet",
    version,
    about = "Grow a Restate server into a cluster from one inventory file, over SSH",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file.
    #[arg(
        short = 'i',
        long = "inventory",
        global = true,
        default_value = "inventory.toml"
    )]
    pub inventory: PathBuf,
    /// Select hosts by name, group or glob; comma-separated, `!` excludes.
    #[arg(long, global = true)]
    pub limit: Option<String>,
    /// How many hosts are worked on at once.
    #[arg(long, global = true, default_value_t = 50)]
    pub forks: usize,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// More detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// known_hosts file to verify host keys against (default ~/.ssh/known_hosts).
    #[arg(long, global = true)]
    pub known_hosts: Option<PathBuf>,
    /// Record the keys of hosts not yet in known_hosts (never accepts a changed key).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// The agent binary to push (or a folder of restate-fleet-agent-<arch> files); default: next
    /// to this program.
    #[arg(long, global = true)]
    pub agent: Option<PathBuf>,
    /// How gRPC reaches each node's port 5122: through its SSH session, or direct.
    #[arg(long, global = true, value_enum, default_value_t = Grpc::Tunnel)]
    pub grpc: Grpc,
    /// Where the journals of apply and rollback runs are kept, and `history` reads them
    /// (default: $XDG_STATE_HOME/restate-fleet/runs, else ~/.local/state/restate-fleet/runs).
    #[arg(long, global = true, value_name = "DIR")]
    pub journal: Option<PathBuf>,
}

/// `--grpc`: the user's words for [`crate::reach::GrpcPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grpc {
    /// A direct-tcpip channel on the host's SSH session: only SSH needs to be reachable.
    Tunnel,
    /// A TCP connection from this machine to the advertised address.
    Direct,
}

impl From<Grpc> for crate::reach::GrpcPath {
    fn from(grpc: Grpc) -> Self {
        match grpc {
            Grpc::Tunnel => Self::Tunnel,
            Grpc::Direct => Self::Direct,
        }
    }
}

/// What `check`, `plan` and `apply` share.
#[derive(Debug, Default, Args)]
pub struct RolloutArgs {
    /// Raise partition and log replication to N once enough nodes are alive.
    #[arg(long)]
    pub replication: Option<u32>,
    /// Upgrade members by more than one minor version at once (Restate supports one; read its
    /// release notes first).
    #[arg(long)]
    pub allow_version_skip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect, gather facts, check the guide's preconditions; changes nothing.
    Check(crate::commands::check::CheckArgs),
    /// Show per-host restate.toml diffs (secrets redacted) and the ordered steps; changes nothing.
    Plan(crate::commands::check::CheckArgs),
    /// Carry out the plan: grow the cluster to what the inventory says.
    Apply(crate::commands::apply::ApplyArgs),
    /// The cluster through its admin gRPC API: nodes, metadata members, log provider, replication.
    Status,
    /// Each selected host's restate-server log (journal or log file), merged in time order.
    Logs(crate::commands::logs::LogsArgs),
    /// One archive for a support ticket: each host's files and facts and the cluster's state,
    /// secrets redacted.
    Collect(crate::commands::collect::CollectArgs),
    /// Restore the previous restate.toml on the selected hosts, restarting them one at a time.
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Restart the selected members one at a time as they are, behind apply's handover and gates.
    Restart(crate::commands::restart::RestartArgs),
    /// Print the resolved inventory, or convert an Ansible inventory.
    Inventory(crate::commands::inventory::InventoryArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the manual page (roff).
    Man,
    /// The apply and rollback runs on record on this machine; `history show RUN_ID` for one.
    History(crate::commands::history::HistoryArgs),
}

pub fn parse() -> Cli {
    // Made once per process; clap keeps a &'static str.
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    let matches = Cli::command().long_version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `--version`: this build and the agent it carries.
fn long_version() -> String {
    let agent = match crate::ssh::EMBEDDED_AGENT {
        Some(bytes) => format!(
            "embedded for x86_64 (statically linked, {} bytes, sha256 {})",
            bytes.len(),
            crate::ssh::sha256_hex(bytes)
        ),
        None => "none embedded: --agent PATH, or restate-fleet-agent beside this binary".into(),
    };
    format!("{}\nagent: {agent}", env!("CARGO_PKG_VERSION"))
}

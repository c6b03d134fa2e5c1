//! One file per subcommand, each thin: parse arguments, call into the libraries, print.

pub mod apply;
pub mod check;
pub mod completions;
pub mod inventory;
pub mod man;
pub mod rollback;
pub mod status;

use std::process::ExitCode;

use restate_fleet_inventory::{Fleet, Host};

use crate::cli::{Cli, Command, Global};
use crate::progress::Progress;
use crate::reach::{ReachOptions, Reached, Reacher};
use crate::ssh::{SshClient, SshOptions};

/// Exit codes of the contract: 0 done and verified, 1 a host failed or the cluster did not verify,
/// 2 bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    BadInput,
    /// Stopped at a safe point after SIGINT or SIGTERM.
    Interrupted,
}

/// An error caused by what the user gave us (inventory, arguments): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl Outcome {
    pub fn from_error(err: &anyhow::Error) -> Self {
        if err.chain().any(|cause| cause.is::<BadInput>()) {
            Outcome::BadInput
        } else {
            Outcome::Failed
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::BadInput => ExitCode::from(2),
            Outcome::Interrupted => ExitCode::from(crate::interrupt::EXIT_CODE),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    init_tracing(&cli.global);
    match cli.command {
        Command::Check(args) => check::run(&cli.global, args, crate::rollout::Mode::Check).await,
        Command::Plan(args) => check::run(&cli.global, args, crate::rollout::Mode::Plan).await,
        Command::Apply(args) => {
            crate::interrupt::install();
            apply::run(&cli.global, args).await
        }
        Command::Status => status::run(&cli.global).await,
        Command::Rollback(args) => rollback::run(&cli.global, args).await,
        Command::Inventory(args) => inventory::run(&cli.global, args),
        Command::Completions(args) => completions::run(&args),
        Command::Man => man::run(),
    }
}

/// `-v` shows the coordinator's own tracing, `-vv` everything's; `RUST_LOG` overrides.
fn init_tracing(global: &Global) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "restate_fleet=debug,warn",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Every selected host reached (session, agent, admin client), and the ones that could not be,
/// with the reason. Nothing is changed on any host here.
pub(crate) async fn reach_hosts(
    global: &Global,
    fleet: &Fleet,
    hosts: &[Host],
    start_agent: bool,
    progress: &Progress,
) -> anyhow::Result<(Vec<Reached>, Vec<(String, String)>, Reacher)> {
    let passphrase = fleet
        .hosts
        .iter()
        .find_map(|h| h.ssh.identity_passphrase.as_ref())
        .map(|s| s.expose().to_string());
    let mut options = SshOptions::from_env(
        global.known_hosts.clone(),
        global.accept_new_host_keys,
        passphrase,
    )?;
    options.forks = global.forks.max(1);
    let client = SshClient::new(options);
    progress.step(&format!("reaching {} host(s)", hosts.len()));
    let reacher = Reacher {
        client,
        options: ReachOptions {
            agent: global.agent.clone(),
            start_agent,
            grpc: global.grpc,
        },
    };
    let results = reacher.reach(hosts).await;
    let mut reached = Vec::new();
    let mut unreachable = Vec::new();
    for (host, result) in hosts.iter().zip(results) {
        match result {
            Ok(r) => reached.push(r),
            Err(err) => {
                progress.host(&host.name, &format!("unreachable: {err}"));
                unreachable.push((host.name.clone(), err.to_string()));
            }
        }
    }
    Ok((reached, unreachable, reacher))
}

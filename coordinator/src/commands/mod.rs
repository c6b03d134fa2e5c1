//! One file per subcommand, each thin: parse arguments, call into the libraries, print.

pub mod apply;
pub mod check;
pub mod collect;
pub(crate) mod common;
pub mod completions;
pub mod history;
pub mod inventory;
pub mod logs;
pub mod man;
pub mod restart;
pub mod rollback;
pub mod status;

use std::process::ExitCode;

use crate::cli::{Cli, Command, Global};

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
        Command::Logs(args) => logs::run(&cli.global, args).await,
        Command::Collect(args) => collect::run(&cli.global, args).await,
        Command::Rollback(args) => rollback::run(&cli.global, args).await,
        Command::Restart(args) => {
            crate::interrupt::install();
            restart::run(&cli.global, args).await
        }
        Command::Inventory(args) => inventory::run(&cli.global, args),
        Command::Completions(args) => completions::run(&args),
        Command::Man => man::run(),
        Command::History(args) => history::run(&cli.global, args),
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

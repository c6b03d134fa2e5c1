//! One file per subcommand, each thin: parse arguments, call into the libraries, print.

pub mod inventory;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Exit codes of the contract: 0 done and verified, 1 a host failed or the cluster did not verify,
/// 2 bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    BadInput,
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
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Inventory(args) => inventory::run(&cli.global, args),
    }
}

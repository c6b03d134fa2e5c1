//! The coordinator: reads the inventory, reaches hosts over SSH, drives the agent, checks the cluster
//! through Restate's admin gRPC API.

pub mod admin;
mod bundle;
pub mod ca_dir;
pub mod cli;
pub mod commands;
mod elf;
pub mod interrupt;
pub mod logs;
pub mod progress;
pub mod reach;
pub mod render;
pub mod rollout;
pub mod run_journal;
pub mod server_binary;
pub mod ssh;

use std::process::ExitCode;

/// Runs one command line and turns its outcome into the contract's exit code.
pub async fn run(cli: cli::Cli) -> ExitCode {
    match commands::run(cli).await {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            commands::Outcome::from_error(&err).into()
        }
    }
}

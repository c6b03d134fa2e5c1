//! `restate-fleet`: `main` only runs the command and maps the outcome to an exit code.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    restate_fleet::run(restate_fleet::cli::parse()).await
}

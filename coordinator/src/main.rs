//! `restate-fleet`: the coordinator. `main` only parses, runs and maps the outcome to an exit code.

mod cli;
mod commands;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    match commands::run(cli).await {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            commands::Outcome::from_error(&err).into()
        }
    }
}

//! `restate-fleet completions SHELL`: the shell's completion script on stdout.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Outcome;
use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "restate-fleet",
        &mut std::io::stdout(),
    );
    Ok(Outcome::Done)
}

//! `restate-fleet history`: the runs this machine's journal holds (apply and rollback), and
//! `history show RUN_ID`: one run's steps and recap. Reads files only; reaches no host.

use clap::{Args, Subcommand};

use super::{BadInput, Outcome};
use crate::cli::{Global, Output};
use crate::render;
use crate::run_journal;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// One run: who ran it, its steps as they went, and its recap.
    Show {
        /// As `history` lists it.
        run_id: String,
    },
}

pub fn run(global: &Global, args: HistoryArgs) -> anyhow::Result<Outcome> {
    let Some(dir) = run_journal::dir(global) else {
        return Err(BadInput(
            "no journal directory: pass --journal DIR, or set HOME or XDG_STATE_HOME".into(),
        )
        .into());
    };
    match args.command {
        None => {
            let (runs, problems) = restate_fleet_journal::list(&dir);
            for problem in &problems {
                eprintln!("warning: {problem}");
            }
            if global.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", render::history(&runs, &dir));
            }
        }
        Some(HistoryCommand::Show { run_id }) => {
            let run =
                restate_fleet_journal::find(&dir, &run_id).map_err(|e| BadInput(e.to_string()))?;
            if global.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                print!("{}", render::run(&run));
            }
        }
    }
    Ok(Outcome::Done)
}

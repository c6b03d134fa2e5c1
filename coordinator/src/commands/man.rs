//! `restate-fleet man`: the manual page (roff) on stdout, e.g. `restate-fleet man >
//! /usr/local/share/man/man1/restate-fleet.1`.

use clap::CommandFactory;

use super::Outcome;
use crate::cli::Cli;

pub fn run() -> anyhow::Result<Outcome> {
    let page = clap_mangen::Man::new(Cli::command());
    page.render(&mut std::io::stdout())?;
    Ok(Outcome::Done)
}

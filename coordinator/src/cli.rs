//! The command-line contract (see design.md). Extend it; never change what exists.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved inventory, or convert an Ansible inventory.
    Inventory(crate::commands::inventory::InventoryArgs),
}

pub fn parse() -> Cli {
    Cli::parse()
}

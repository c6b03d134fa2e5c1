//! `restate-fleet restart`: a rolling restart of the selected members as they are (same file,
//! same binary), one at a time, behind the handover and gates of a rolling change: leaders and
//! sequencers moved first, the metadata quorum kept, consecutive healthy reads before the next.
//! Refused while the cluster has a dead node.

use clap::Args;

use super::Outcome;
use crate::cli::{Global, RolloutArgs};

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Restart members without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(global: &Global, args: RestartArgs) -> anyhow::Result<Outcome> {
    super::apply::run_as(global, &RolloutArgs::default(), args.yes, "restart").await
}

//! `restate-fleet restart`: a rolling restart of the selected members as they are (same file,
//! same binary), one at a time, behind the handover and gates of a rolling change: leaders and
//! sequencers moved first, the metadata quorum kept, consecutive healthy reads before the next.
//! Refused while the cluster has a dead node. `--reboot` reboots each member's host instead.

use std::time::Duration;

use clap::Args;

use super::Outcome;
use crate::cli::{Global, RolloutArgs};

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Restart members without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Reboot each member's host instead (kernel patching): it must answer SSH again within
    /// --boot-timeout and start restate-server by itself.
    #[arg(long)]
    pub reboot: bool,
    /// Seconds a rebooted host gets to answer SSH again.
    #[arg(long, default_value_t = 300, requires = "reboot", value_name = "SECS")]
    pub boot_timeout: u64,
}

pub async fn run(global: &Global, args: RestartArgs) -> anyhow::Result<Outcome> {
    let reboot = args.reboot.then(|| Duration::from_secs(args.boot_timeout));
    super::apply::run_as(global, &RolloutArgs::default(), args.yes, "restart", reboot).await
}

//! `restate-fleet check` and `restate-fleet plan`: the survey and the plan, changing nothing.
//! `check` exits 0 only when the fleet is ready for `apply`.

use clap::Args;

use super::Outcome;
use super::common::{self, print_report};
use crate::cli::{Global, RolloutArgs};
use crate::progress::Progress;
use crate::rollout::{self, Mode};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

pub async fn run(global: &Global, args: CheckArgs, mode: Mode) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let progress = Progress::new(global.quiet);
    let mut options = common::rollout_options(global, fleet, mode, &args.rollout, &progress)?;
    let (reached, unreachable, reacher) =
        common::reach_hosts(global, fleet, &fleet.hosts, true, &progress).await?;
    options.reacher = Some(reacher);
    let report = rollout::run(fleet, reached, unreachable, options, &progress).await;
    print_report(global, &report, mode)?;
    Ok(if report.succeeded() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

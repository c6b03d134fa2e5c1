//! `restate-fleet rollback`: put the previous restate.toml back on the selected hosts and restart
//! them one at a time, each behind the same health gate as apply.

use clap::Args;
use restate_fleet_proto::agent::{Operation, RollbackReport};

use super::{BadInput, Outcome, common};
use crate::cli::Global;
use crate::progress::Progress;
use crate::render;
use crate::rollout::recap::Recap;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Roll back without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(global: &Global, args: RollbackArgs) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    if global.limit.is_none() && !args.yes {
        return Err(BadInput(
            "rollback restarts every host it touches: name them with --limit, or pass --yes to roll back the whole fleet".into(),
        )
        .into());
    }
    let hosts: Vec<_> = common::select(global, fleet)?
        .into_iter()
        .cloned()
        .collect();
    let progress = Progress::new(global.quiet);
    let (reached, unreachable, _) =
        common::reach_hosts(global, fleet, &hosts, true, &progress).await?;
    let mut recap = Recap::new(hosts.iter().map(|h| h.name.as_str()));
    for (host, why) in &unreachable {
        recap.unreachable(host, why);
    }
    let timeout = crate::rollout::Timeouts::default().restart;
    for host in &reached {
        if !unreachable.is_empty() {
            break;
        }
        progress.host(
            host.name(),
            "restoring the previous restate.toml and restarting",
        );
        let op = Operation::Rollback {
            node: host.node_target(timeout),
        };
        match host.ask::<RollbackReport>(op).await {
            Ok(report) if report.restart.healthy() => recap.changed(
                host.name(),
                &format!(
                    "restored {}",
                    report
                        .restored_from
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            ),
            Ok(report) => {
                let last = report.restart.health.map(|h| h.last).unwrap_or_default();
                recap.failed(
                    host.name(),
                    &format!("not healthy after the rollback: {last}"),
                );
                break;
            }
            Err(err) => {
                recap.failed(host.name(), &err.to_string());
                break;
            }
        }
    }
    print!("{}", render::recap(&recap, recap.retry_limit().is_some()));
    Ok(if recap.retry_limit().is_none() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

//! `restate-fleet rollback`: put the previous restate.toml back on the selected hosts and restart
//! them one at a time, behind apply's gates: a member restarts only while the metadata quorum
//! holds without it, and the next host waits until the cluster sees this one healthy again.

use std::time::Duration;

use clap::Args;
use restate_fleet_proto::agent::{Operation, RollbackReport};
use serde::Serialize;

use super::{BadInput, Outcome, common};
use crate::admin::{self, ClusterView};
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::reach::Reached;
use crate::render;
use crate::rollout::gate;
use crate::rollout::recap::Recap;
use crate::run_journal::{self, RunJournal};
use restate_fleet_journal::Record;

/// How long the cluster has to answer for the view printed after the rollback.
const AFTER_VIEW: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Roll back without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `--output json`: the recap and the cluster after the rollback.
#[derive(Serialize)]
struct RollbackDocument<'a> {
    recap: &'a Recap,
    cluster: Option<&'a ClusterView>,
    /// The run's journal (`restate-fleet history show RUN_ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
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
    let hosts = common::selected(global, fleet)?;
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, unreachable, _) =
        common::reach_hosts(global, fleet, &hosts, true, &progress).await?;
    let mut recap = Recap::new(hosts.iter().map(|h| h.name.as_str()));
    for (host, why) in &unreachable {
        recap.unreachable(host, why);
    }
    // Every reached node's admin API answers for the cluster, not just the selected ones'.
    let clients: Vec<_> = reached.iter().map(|r| r.admin.clone()).collect();
    let journal = RunJournal::start(global, fleet, "rollback", &progress);
    let step = |host: &Reached| {
        format!(
            "{}: restore the previous restate.toml, restart, wait until healthy",
            host.name()
        )
    };
    if let Some(journal) = &journal {
        let steps = reached.iter().map(step).collect();
        journal.record(Record::Plan { steps }, &progress);
    }
    // Each node locked for the run, as apply locks it: no other run changes it meanwhile, and
    // its audit log names this run.
    let all: Vec<&Reached> = reached.iter().collect();
    let run_id = journal.as_ref().map(RunJournal::id);
    let locked = match crate::rollout::act::lock::lock_all(&all, &common::holder(), run_id).await {
        Ok(taken_over) => {
            for note in taken_over {
                progress.warn(&note);
                recap.warn(&note);
            }
            true
        }
        Err((host, err)) => {
            recap.failed(&host, &format!("{err}; nothing was changed"));
            false
        }
    };
    if unreachable.is_empty() && locked {
        for (index, host) in reached.iter().enumerate() {
            let started = std::time::Instant::now();
            if let Some(journal) = &journal {
                journal.step_started(index + 1, step(host), &progress);
            }
            let result = roll_back(host, &clients, &progress).await;
            if let Some(journal) = &journal {
                let (changes, error) = match &result {
                    Ok(restored) => (vec![format!("{}: {restored}", host.name())], None),
                    Err(why) => (Vec::new(), Some(why.clone())),
                };
                journal.step_ended(index + 1, started, changes, Vec::new(), error, &progress);
            }
            match result {
                Ok(restored) => recap.changed(host.name(), &restored),
                Err(why) => {
                    recap.failed(host.name(), &why);
                    break;
                }
            }
        }
    }
    // Right after a restart a node can answer "unavailable" for a moment (a metadata leader
    // moving): the view after the rollback is read until three reads in a row succeed.
    let cluster = match gate::healthy(&clients, &[], AFTER_VIEW).await {
        Ok(view) => Some(view),
        Err(e) => {
            recap.warn(&format!(
                "the cluster view after the rollback could not be read within {} s: {e}",
                AFTER_VIEW.as_secs()
            ));
            None
        }
    };
    let succeeded = recap.retry_limit().is_none();
    if let Some(journal) = &journal {
        let outcome = run_journal::outcome(succeeded, false, recap.anything_changed());
        journal.ended(outcome, None, &recap, cluster.as_ref(), &progress);
    }
    if global.output == Output::Json {
        let document = RollbackDocument {
            recap: &recap,
            cluster: cluster.as_ref(),
            run_id: journal.as_ref().map(RunJournal::id),
        };
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", render::recap(&recap, recap.retry_limit().is_some()));
    }
    if let (Some(journal), false) = (&journal, succeeded) {
        journal.point_to();
    }
    Ok(if succeeded {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// One host: refused while its restart would cost the metadata quorum; done when the cluster
/// sees it healthy again. A node the cluster does not answer for (none answers, or it is not a
/// member) is rolled back on its own health check alone: rollback is also how a node that a
/// bad file keeps down comes back.
async fn roll_back(
    host: &Reached,
    clients: &[admin::AdminClient],
    progress: &Progress,
) -> Result<String, String> {
    let timeouts = crate::rollout::Timeouts::default();
    let node = &host.host.node_name;
    let known = match admin::gather(clients).await {
        Ok(view) if view.node(node).is_some() => {
            gate::quorum_without(&view, node).map_err(|e| format!("refused: {e}"))?;
            true
        }
        _ => false,
    };
    progress.host(
        host.name(),
        "restoring the previous restate.toml and restarting",
    );
    let report: RollbackReport = host
        .ask(Operation::Rollback {
            node: host.node_target(timeouts.restart),
        })
        .await
        .map_err(|e| e.to_string())?;
    if !report.restart.healthy() {
        let last = report.restart.health.map(|h| h.last).unwrap_or_default();
        return Err(format!("not healthy after the rollback: {last}"));
    }
    if known {
        gate::healthy(clients, std::slice::from_ref(node), timeouts.join)
            .await
            .map_err(|e| format!("the cluster does not see it healthy after the rollback: {e}"))?;
    }
    Ok(format!(
        "restored {}",
        report
            .restored_from
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the copy taken before the last apply".into())
    ))
}

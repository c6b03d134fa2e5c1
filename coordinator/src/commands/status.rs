//! `restate-fleet status`: the cluster as its admin API sees it, matched with the inventory:
//! inventory hosts the cluster does not know and nodes the inventory lacks are both shown.

use super::{Outcome, common};
use crate::admin;
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::reach::Reached;
use crate::render::{self, LastChange, StatusReport};
use restate_fleet_proto::agent::AUDIT_LOG;

pub async fn run(global: &Global) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let hosts = common::selected(global, fleet)?;
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, unreachable, _) =
        common::reach_hosts(global, fleet, &hosts, false, &progress).await?;
    let clients: Vec<_> = reached.iter().map(|r| r.admin.clone()).collect();
    let ((view, error), last_changes) = tokio::join!(
        async {
            match admin::gather(&clients).await {
                Ok(view) => (Some(view), None),
                Err(err) => (None, Some(err.to_string())),
            }
        },
        last_changes(&reached)
    );
    let names: Vec<&str> = hosts.iter().map(|h| h.node_name.as_str()).collect();
    let report = StatusReport {
        unknown_to_cluster: view
            .as_ref()
            .map(|v| {
                hosts
                    .iter()
                    .filter(|h| v.node(&h.node_name).is_none())
                    .map(|h| h.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
        not_in_inventory: view
            .as_ref()
            .map(|v| {
                v.nodes
                    .iter()
                    .filter(|n| !names.contains(&n.name.as_str()))
                    .map(|n| n.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
        cluster: view,
        unreachable,
        error,
        last_changes,
    };
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::status(&report));
    }
    let healthy = report.cluster.as_ref().is_some_and(|v| v.all_alive())
        && report.unknown_to_cluster.is_empty()
        && report.unreachable.is_empty();
    Ok(if healthy {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// The last line of each host's audit log, read over its SSH session (a host without one, or
/// whose line does not parse, is left out).
async fn last_changes(reached: &[Reached]) -> Vec<LastChange> {
    let reads = reached.iter().map(|host| async move {
        let out = host
            .session
            .exec(&["tail", "-n", "1", AUDIT_LOG], b"")
            .await
            .ok()
            .filter(|o| o.success())?;
        let line = serde_json::from_slice(&out.stdout).ok()?;
        Some(LastChange {
            host: host.name().to_string(),
            line,
        })
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

//! `restate-fleet status`: the cluster as its admin API sees it, matched with the inventory:
//! inventory hosts the cluster does not know and nodes the inventory lacks are both shown.

use super::{Outcome, common};
use crate::admin;
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::render::{self, StatusReport};

pub async fn run(global: &Global) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let hosts = common::selected(global, fleet)?;
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, unreachable, _) =
        common::reach_hosts(global, fleet, &hosts, false, &progress).await?;
    let clients: Vec<_> = reached.iter().map(|r| r.admin.clone()).collect();
    let (view, error) = match admin::gather(&clients).await {
        Ok(view) => (Some(view), None),
        Err(err) => (None, Some(err.to_string())),
    };
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

//! Guide steps 1 and 2, changing nothing: every host's facts from its agent, and the cluster as
//! its admin API sees it.

use futures_util::future::join_all;
use restate_fleet_inventory::Fleet;
use restate_fleet_proto::agent::{Facts, Operation};

use crate::admin::{self, AdminClient, ClusterView};
use crate::reach::{ReachError, Reached};

/// Every host's facts and the cluster the hosts that run it see: guide steps 1 and 2 before
/// anything is judged. The view waits (up to 20 s) for nodes that say they are alive but that the
/// cluster has not noticed yet.
pub async fn facts_and_view(
    fleet: &Fleet,
    reached: &[Reached],
) -> Result<(Vec<Facts>, Option<ClusterView>), ReachError> {
    let started = std::time::Instant::now();
    // The cluster view usually comes from the first hosts of the inventory: ask them while the
    // agents gather facts, and keep the answer only if the facts then show it is the right one.
    let early: Vec<AdminClient> = admin_clients(reached.iter().take(EARLY_VIEW_HOSTS));
    let mut early_view = tokio::spawn({
        let early = early.clone();
        async move { admin::gather(&early).await }
    });
    let facts = gather_facts(reached).await?;
    for (host, facts) in reached.iter().zip(&facts) {
        host.admin.prefer_tls(takes_tls(facts));
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "survey: facts of every host"
    );
    let running_ours: Vec<AdminClient> = reached
        .iter()
        .zip(&facts)
        .filter(|(_, f)| {
            f.health
                .as_ref()
                .is_some_and(|h| h.cluster_name.as_deref() == Some(fleet.cluster.name.as_str()))
        })
        .map(|(r, _)| r.admin.clone())
        .collect();
    // Nodes that say Alive themselves but are dead in the cluster state were just (re)started:
    // the cluster notices them within seconds. Wait for that rather than refuse the run.
    let alive_by_own_word: Vec<String> = reached
        .iter()
        .zip(&facts)
        .filter(|(_, f)| f.health.as_ref().is_some_and(|h| h.is_alive()))
        .map(|(r, _)| r.host.node_name.clone())
        .collect();
    let view = if running_ours.is_empty() {
        None
    } else if let Ok(Ok(Ok(view))) =
        // Never waited for long: a node that does not answer must not hold up the survey.
        tokio::time::timeout(std::time::Duration::from_millis(200), &mut early_view)
                .await
        && let Some(view) = usable_early(view, fleet, &early, &running_ours, &alive_by_own_word)
    {
        Some(view)
    } else {
        settled_view(&running_ours, &alive_by_own_word).await
    };
    early_view.abort();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "survey: cluster view"
    );
    Ok((facts, view))
}

/// Whether the node's file has it take TLS on the fabric (`[tls] mode` allow or above).
pub fn takes_tls(facts: &Facts) -> bool {
    facts
        .config
        .values
        .tls_mode
        .as_deref()
        .and_then(restate_fleet_inventory::TlsMode::parse)
        .is_some_and(|m| m.loads_certificates())
}

/// Members first: they answer cluster-wide calls; new nodes would only fail first.
pub fn admin_clients<'a>(hosts: impl Iterator<Item = &'a Reached>) -> Vec<AdminClient> {
    hosts.map(|h| h.admin.clone()).collect()
}

/// How many of the first hosts are asked for the cluster view before the facts say who runs it.
const EARLY_VIEW_HOSTS: usize = 8;

/// The early view, when it is exactly what [`settled_view`] would have read at once: asked of
/// every node that runs our cluster, answered by one of them, about our cluster, every node that
/// says Alive alive in it; the other hosts' failed probes left out.
fn usable_early(
    mut view: ClusterView,
    fleet: &Fleet,
    asked: &[AdminClient],
    running_ours: &[AdminClient],
    alive: &[String],
) -> Option<ClusterView> {
    let ours: Vec<&str> = running_ours.iter().map(AdminClient::address).collect();
    let all_asked = ours.iter().all(|a| asked.iter().any(|c| c.address() == *a));
    if view.cluster_name != fleet.cluster.name
        || !all_asked
        || !ours.contains(&view.answered_by.as_str())
        || !settled(&view, alive)
    {
        return None;
    }
    view.unreachable
        .retain(|u| ours.contains(&u.address.as_str()));
    Some(view)
}

/// Every node in `alive` (alive by its own word) is alive in `view` too, or unknown to it.
fn settled(view: &ClusterView, alive: &[String]) -> bool {
    alive
        .iter()
        .all(|name| view.node(name).is_none_or(|node| node.alive))
}

/// The cluster view once every node in `alive` is alive in it too, or the last view after 20 s.
async fn settled_view(clients: &[AdminClient], alive: &[String]) -> Option<ClusterView> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let view = admin::gather(clients).await.ok();
        if view.as_ref().is_some_and(|v| settled(v, alive)) || std::time::Instant::now() >= deadline
        {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn gather_facts(reached: &[Reached]) -> Result<Vec<Facts>, ReachError> {
    let calls = reached.iter().map(|host| async move {
        let op = Operation::Facts {
            node: host.node_target(std::time::Duration::from_secs(1)),
            restate_server: None,
        };
        host.ask::<Box<Facts>>(op).await.map(|facts| *facts)
    });
    let mut all = Vec::with_capacity(reached.len());
    for result in join_all(calls).await {
        all.push(result?);
    }
    Ok(all)
}

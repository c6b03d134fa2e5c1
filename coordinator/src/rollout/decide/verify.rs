//! What the end of a run demands of the cluster (guide step 7), judged on one view.

use restate_fleet_inventory::Fleet;

use super::{membership, replication};
use crate::admin::ClusterView;
use crate::rollout::gate;

/// Why the cluster did not verify at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("verify: {0}")]
    Gate(#[from] gate::GateTimeout),
    #[error("verify: not alive and a metadata member: {}", .0.join(", "))]
    NotHealthy(Vec<String>),
    #[error("verify: not every partition has a leader")]
    PartitionsWithoutLeader,
    #[error("verify: the log provider is {0}, not replicated")]
    LogProvider(String),
    #[error(
        "verify: the metadata cluster does not follow [cluster] metadata-servers: not members: [{not_members}]; members it does not name: [{not_named}]"
    )]
    Membership {
        not_members: String,
        not_named: String,
    },
    #[error("verify: replication is partitions {partitions:?}, logs {logs:?}; asked for {asked}")]
    Spread {
        partitions: Option<String>,
        logs: Option<String>,
        asked: String,
    },
    #[error("verify: replication is partitions {partitions:?}, logs {logs:?}; asked for {asked}")]
    Replication {
        partitions: Option<u32>,
        logs: Option<u32>,
        asked: u32,
    },
}

/// What verify demands of one view; `names` must all be healthy (the gates check that already
/// when they pass an empty list).
pub fn check_view(
    fleet: &Fleet,
    view: &ClusterView,
    names: &[String],
    replication: Option<u32>,
) -> Result<(), VerifyError> {
    let sick: Vec<String> = names
        .iter()
        .filter(|n| !view.is_healthy(n))
        .cloned()
        .collect();
    if !sick.is_empty() {
        return Err(VerifyError::NotHealthy(sick));
    }
    let membership = membership::changes(fleet, view);
    if !membership.is_empty() {
        let hosts = |targets: &[membership::Target]| {
            targets
                .iter()
                .map(|t| t.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let joining: Vec<membership::Target> = membership
            .add_now
            .iter()
            .chain(&membership.add_after_restart)
            .cloned()
            .collect();
        return Err(VerifyError::Membership {
            not_members: hosts(&joining),
            not_named: hosts(&membership.remove),
        });
    }
    if !names.is_empty() && !gate::all_partitions_led(view) {
        return Err(VerifyError::PartitionsWithoutLeader);
    }
    if view.config.log_provider != crate::admin::KIND_REPLICATED {
        return Err(VerifyError::LogProvider(view.config.log_provider.clone()));
    }
    if let Some(wanted) =
        replication::wanted_replication(fleet, replication).filter(|w| w.is_location_aware())
        && !replication::replication_is(
            [
                view.config.partition_replication.as_deref(),
                view.config.log_replication.as_deref(),
            ],
            &wanted,
        )
    {
        return Err(VerifyError::Spread {
            partitions: view.config.partition_replication.clone(),
            logs: view.config.log_replication.clone(),
            asked: wanted.to_string(),
        });
    }
    if let Some(asked) = replication.or(fleet.cluster.replication) {
        let parse = |r: &Option<String>| r.as_deref().and_then(replication::replication_count);
        let (partitions, logs) = (
            parse(&view.config.partition_replication),
            parse(&view.config.log_replication),
        );
        if partitions != Some(asked) && partitions.is_some_and(|p| p < asked)
            || logs.is_some_and(|l| l < asked)
        {
            return Err(VerifyError::Replication {
                partitions,
                logs,
                asked,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_view;
    use crate::rollout::fixtures::{fleet, view};

    #[test]
    fn verify_demands_live_members_a_replicated_loglet_and_the_replication_asked() {
        let names = |ns: &[&str]| ns.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let three = fleet("", &["n1", "n2", "n3"]);
        let local = || {
            let mut v = view("grown");
            v.config.log_provider = "local".into();
            v
        };
        let dead_n2 = || {
            let mut v = view("grown");
            v.nodes[1].alive = false;
            v
        };
        let cases = [
            (
                "grown",
                view("grown"),
                names(&["n1", "n2", "n3"]),
                None,
                true,
            ),
            (
                "a dead member",
                dead_n2(),
                names(&["n1", "n2", "n3"]),
                None,
                false,
            ),
            (
                "a dead member nobody asked about",
                dead_n2(),
                names(&[]),
                None,
                true,
            ),
            ("the local loglet", local(), names(&[]), None, false),
            (
                "replication 1, asked 2",
                view("grown"),
                names(&[]),
                Some(2),
                false,
            ),
            (
                "replication 1, asked 1",
                view("grown"),
                names(&[]),
                Some(1),
                true,
            ),
        ];
        for (name, v, names, replication, ok) in cases {
            let got = check_view(&three, &v, &names, replication);
            assert_eq!(got.is_ok(), ok, "{name}: {got:?}");
        }
    }
}

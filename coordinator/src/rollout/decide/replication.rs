//! Replication as the inventory asks it and as the cluster has it: the one reading of Restate's
//! replication property (`{node: 2}`, `{node: 3, zone: 2}`) for the plan, removals, drains and
//! verify.

use restate_fleet_inventory::{Fleet, Replication, parse_replication};

use crate::admin::ClusterView;

/// The replication asked for: `--replication N` (copies on N nodes), else the inventory's.
pub fn wanted_replication(fleet: &Fleet, cli: Option<u32>) -> Option<Replication> {
    cli.map(Replication::nodes)
        .or(fleet.cluster.replication_property)
}

/// Whether the cluster's partition and log replication (as the server prints them) are
/// `wanted`; unset reads as Restate's default, one copy.
pub fn replication_is(current: [Option<&str>; 2], wanted: &Replication) -> bool {
    current
        .iter()
        .all(|r| parse_replication(r.unwrap_or("1")).is_ok_and(|have| have.same_as(wanted)))
}

/// `{node: 2}`, `2` or `{node: 3, zone: 2}` as the number of copies (Restate's `node` scope).
pub fn replication_count(text: &str) -> Option<u32> {
    parse_replication(text).ok().map(|r| r.nodes)
}

/// Partition and log replication as the cluster has them now (1 when it does not say).
pub fn current_replication(view: &ClusterView) -> (u32, u32) {
    let parse = |r: &Option<String>| r.as_deref().and_then(replication_count).unwrap_or(1);
    (
        parse(&view.config.partition_replication),
        parse(&view.config.log_replication),
    )
}

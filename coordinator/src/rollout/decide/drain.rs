//! Restarting a member gently: before it goes down, its partition leaders move to the other
//! workers (worker state `draining`, a handover the cluster controller does while the node still
//! runs) instead of the cluster noticing a dead leader seconds later; once it is back and
//! healthy, its worker is `active` again. The sequencers of the logs it runs move too (see
//! [`sequencer_moves`]). Needs restatectl (see `decide/restatectl.rs`); without it, or when the other
//! workers cannot take the partitions, the member restarts as before.

use std::collections::BTreeMap;

use restate_fleet_inventory::Fleet;

use super::replication::current_replication;
use super::survey::Survey;
use crate::admin::{ClusterState, ClusterView, KIND_REPLICATED, Logs};

/// Whether draining `node` before its restart helps (it leads partitions) and is safe (it is
/// alive and active, and the other active workers alone can hold the partition replication).
/// `coming_back` is a member just restarted, whose gate is still open: counted as an active
/// worker (the cluster places leaders on it once it sees it alive; the drain waits for that).
pub fn worthwhile(view: &ClusterView, node: &str, coming_back: Option<&str>) -> bool {
    let active = |n: &&crate::admin::NodeView| {
        (n.alive || coming_back == Some(n.name.as_str()))
            && n.roles.iter().any(|r| r == "worker")
            && n.worker_state.as_deref().is_none_or(|s| s == "active")
    };
    let Some(me) = view.node(node).filter(|n| active(n)) else {
        return false;
    };
    let (partition_replication, _) = current_replication(view);
    let others = view
        .nodes
        .iter()
        .filter(|n| n.name != node)
        .filter(active)
        .count();
    me.leader_partitions > 0 && others as u32 >= partition_replication.max(1)
}

/// The logs whose tail segment's sequencer runs on `node`, each with the node to run it on
/// instead: the partition's leader (log P belongs to partition P) when that is another node,
/// else (`leaders_moved`) another alive node of the tail's nodeset. A node that stops seals the
/// loglets it sequences, and every partition writing to them then waits for a new segment: about
/// 2 s measured on the lab (a cluster grown from one node has every sequencer on that node),
/// longer when the node was also the metadata leader that the new segment must be written to.
/// Before its leaders have moved (`leaders_moved` false), only the logs of partitions led
/// elsewhere move, alongside the drain; the others once their new leader is known.
pub fn sequencer_moves(
    state: &ClusterState,
    logs: &Logs,
    node: u32,
    leaders_moved: bool,
) -> Vec<(u32, u32)> {
    let leaders: BTreeMap<u32, u32> = state
        .alive_nodes()
        .filter(|(id, _)| *id != node)
        .flat_map(|(id, alive)| alive.leader_of.iter().map(move |p| (*p, id)))
        .collect();
    logs.logs
        .iter()
        .filter(|(_, chain)| chain.tail_sequencer() == Some(node))
        .filter_map(|(log, chain)| {
            let tail = chain.tail().filter(|t| t.kind == KIND_REPLICATED)?;
            let to = leaders.get(log).copied().or_else(|| {
                tail.nodeset
                    .iter()
                    .copied()
                    .find(|n| leaders_moved && *n != node && state.is_alive(*n))
            })?;
            Some((*log, to))
        })
        .collect()
}

/// Whether moving `host`'s partition leaders away before it restarts would spare clients a
/// stall: it leads partitions and the other workers can take them (see `worthwhile`).
pub fn handover_helps(fleet: &Fleet, survey: &Survey, host: &str) -> bool {
    let node = fleet.hosts.iter().find(|h| h.name == host);
    match (survey.view.as_ref(), node) {
        (Some(view), Some(node)) => worthwhile(view, &node.node_name, None),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AliveNode, LogChain, NodeLiveness, NodeView, Segment};
    use crate::rollout::fixtures;

    fn node(id: u32, leads: usize, worker_state: &str, alive: bool) -> NodeView {
        NodeView {
            leader_partitions: leads,
            worker_state: Some(worker_state.into()),
            alive,
            ..fixtures::node(id)
        }
    }

    fn view(nodes: Vec<NodeView>, replication: &str) -> ClusterView {
        let mut view = fixtures::cluster(nodes, &[]);
        view.config.partition_replication = Some(replication.into());
        view
    }

    #[test]
    fn when_draining_first_helps_and_is_safe() {
        let three = |r: &str| {
            view(
                vec![
                    node(1, 8, "active", true),
                    node(2, 8, "active", true),
                    node(3, 8, "active", true),
                ],
                r,
            )
        };
        let cases = [
            // Two others hold replication 2.
            (three("{node: 2}"), true),
            // Replication 3 needs all three.
            (three("{node: 3}"), false),
            // A single node: nobody to hand over to.
            (view(vec![node(1, 24, "active", true)], "{node: 1}"), false),
            // It leads nothing: nothing to move.
            (
                view(
                    vec![node(1, 0, "active", true), node(2, 24, "active", true)],
                    "{node: 1}",
                ),
                false,
            ),
            // The only other worker is dead, or draining itself.
            (
                view(
                    vec![node(1, 12, "active", true), node(2, 12, "active", false)],
                    "{node: 1}",
                ),
                false,
            ),
            (
                view(
                    vec![node(1, 24, "active", true), node(2, 0, "draining", true)],
                    "{node: 1}",
                ),
                false,
            ),
        ];
        for (view, want) in cases {
            assert_eq!(worthwhile(&view, "n1", None), want, "{:?}", view.nodes);
        }
        // n2, restarted by the step before, is not alive in the view yet: with n3 it holds
        // replication 2 once the cluster sees it.
        let n2_back = view(
            vec![
                node(1, 8, "active", true),
                node(2, 0, "active", false),
                node(3, 16, "active", true),
            ],
            "{node: 2}",
        );
        assert!(!worthwhile(&n2_back, "n1", None));
        assert!(worthwhile(&n2_back, "n1", Some("n2")));
    }

    /// Nodes 1-3; `leads` gives each alive node's partitions, a node without an entry is dead.
    fn state(leads: &[(u32, &[u32])], dead: &[u32]) -> ClusterState {
        let mut nodes: BTreeMap<u32, NodeLiveness> = leads
            .iter()
            .map(|(id, partitions)| {
                let alive = AliveNode {
                    generation: 1,
                    uptime_s: 60,
                    leader_of: partitions.to_vec(),
                    follower_of: Vec::new(),
                };
                (*id, NodeLiveness::Alive(alive))
            })
            .collect();
        nodes.extend(dead.iter().map(|id| (*id, NodeLiveness::Dead)));
        ClusterState {
            nodes_config_version: 5,
            partition_table_version: 3,
            logs_metadata_version: 9,
            nodes,
        }
    }

    /// One log per entry: its tail's kind, sequencer and nodeset.
    fn logs(tails: &[(u32, &str, Option<&str>, &[u32])]) -> Logs {
        let logs = tails
            .iter()
            .map(|(id, kind, sequencer, nodeset)| {
                let tail = Segment {
                    base_lsn: 1,
                    index: 2,
                    kind: kind.to_string(),
                    replication: Some("{node: 2}".into()),
                    nodeset: nodeset.to_vec(),
                    sequencer: sequencer.map(str::to_string),
                };
                (
                    *id,
                    LogChain {
                        segments: vec![tail],
                    },
                )
            })
            .collect();
        Logs {
            version: 9,
            default_provider: None,
            logs,
        }
    }

    #[test]
    fn sequencers_move_to_the_leader_else_to_an_alive_member_of_the_nodeset() {
        let all: &[u32] = &[1, 2, 3];
        let cases = [
            (
                "to each partition's leader",
                state(&[(1, &[]), (2, &[0]), (3, &[1])], &[]),
                logs(&[
                    (0, "replicated", Some("N1:3"), all),
                    (1, "replicated", Some("N1:3"), all),
                ]),
                vec![(0u32, 2u32), (1, 3)],
            ),
            (
                "only the logs node 1 sequences",
                state(&[(1, &[]), (2, &[0, 1])], &[]),
                logs(&[
                    (0, "replicated", Some("N2:1"), all),
                    (1, "replicated", Some("N1:3"), all),
                ]),
                vec![(1, 2)],
            ),
            (
                "a partition still led by node 1, or by nobody: an alive node of the nodeset",
                state(&[(1, &[0]), (3, &[])], &[2]),
                logs(&[
                    (0, "replicated", Some("N1:3"), all),
                    (1, "replicated", Some("N1:3"), all),
                ]),
                vec![(0, 3), (1, 3)],
            ),
            (
                "nowhere to go: the nodeset's other node is dead",
                state(&[(1, &[0])], &[2]),
                logs(&[(0, "replicated", Some("N1:3"), &[1, 2])]),
                vec![],
            ),
            (
                "a local tail has no sequencer to move",
                state(&[(1, &[0]), (2, &[])], &[]),
                logs(&[(0, "local", None, &[])]),
                vec![],
            ),
        ];
        for (what, state, logs, want) in cases {
            assert_eq!(sequencer_moves(&state, &logs, 1, true), want, "{what}");
        }
        // Before the leaders move: only the logs of partitions another node leads.
        let state = state(&[(1, &[0]), (2, &[1])], &[]);
        let logs = logs(&[
            (0, "replicated", Some("N1:3"), all),
            (1, "replicated", Some("N1:3"), all),
        ]);
        assert_eq!(sequencer_moves(&state, &logs, 1, false), vec![(1, 2)]);
    }
}

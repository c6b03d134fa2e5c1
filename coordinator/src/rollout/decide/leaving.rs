//! Nodes that leave the cluster (found in `observe/leaving.rs`): whether the nodes that stay can
//! let them go, decided before anything changes, and the nodesets their log tails move to. The
//! removal itself is `act/remove.rs`; docs/scale-down.md has the procedure.

use restate_fleet_inventory::{Fleet, Role};

use super::replication::current_replication;
use super::survey::{Class, Survey, came_back_empty};
use crate::admin::{ClusterView, Logs};
use crate::rollout::observe::leaving::{Holdings, Leaving, LeavingHost};

/// The old nodes of the inventory hosts that came back without their data: they leave before
/// their hosts join again.
pub fn coming_back(survey: &Survey) -> Vec<Leaving> {
    let Some(view) = &survey.view else {
        return Vec::new();
    };
    survey
        .hosts
        .iter()
        .filter(|h| h.class == Class::New)
        .filter_map(|h| {
            let node = came_back_empty(&h.reached.host, &h.facts, Some(view))?;
            Some(Leaving {
                node: node.clone(),
                in_logs: view.logs.in_nodesets.get(&node.id).copied().unwrap_or(0),
                host: LeavingHost::ComesBack(h.name().to_string()),
            })
        })
        .collect()
}

/// Why the nodes that stay cannot let `leaving` go, before anything changes; `None` when they
/// can. `log_replication` is the log replication once the run lowered it (replication the
/// remaining nodes cannot hold at all is refused by the run's replication check).
pub fn refusal(
    view: &ClusterView,
    leaving: &[(&str, Holdings)],
    log_replication: u32,
) -> Option<String> {
    for (name, held) in leaving {
        match (&held.unreachable, held.alive) {
            (Some(why), true) => {
                return Some(format!(
                    "{name} ({}) leaves the cluster, but its host cannot be reached to stop it ({why}); make it reachable over SSH with the [defaults] settings at the address it advertises, or stop restate-server there yourself and re-run; nothing was changed",
                    format_id(held.id)
                ));
            }
            (_, false) if log_replication <= 1 && held.in_logs > 0 && held.comes_back => {
                return Some(format!(
                    "{name} ({}) came back without its data and, with log replication 1, the log segments it held exist nowhere else; put its data directory back (from a backup) and re-run, or see docs/day-two.md for accepting the loss by hand; nothing was changed",
                    format_id(held.id)
                ));
            }
            (_, false) if log_replication <= 1 && held.in_logs > 0 => {
                return Some(format!(
                    "{name} ({}) is dead and, with log replication 1, the log segments it holds exist nowhere else; bring it back so that it can be drained, then re-run; nothing was changed",
                    format_id(held.id)
                ));
            }
            _ => {}
        }
    }
    let members = &view.metadata.members;
    let leaving_members: Vec<&str> = leaving
        .iter()
        .filter(|(_, h)| members.contains(&h.id))
        .map(|(name, _)| *name)
        .collect();
    if leaving_members.is_empty() {
        return None;
    }
    let staying: Vec<u32> = members
        .iter()
        .copied()
        .filter(|id| !leaving.iter().any(|(_, h)| h.id == *id))
        .collect();
    if staying.is_empty() {
        return Some(format!(
            "{} {} every metadata server of the cluster; keep at least one host with the metadata-server role in the inventory; nothing was changed",
            leaving_members.join(", "),
            if leaving_members.len() == 1 {
                "is"
            } else {
                "are"
            }
        ));
    }
    let alive = |id: &u32| view.nodes.iter().any(|n| n.id == *id && n.alive);
    let alive_staying = staying.iter().filter(|id| alive(id)).count();
    // Members leave one at a time: each change needs a quorum of the membership it changes,
    // the smallest of which is the final one.
    let quorum = staying.len() / 2 + 1;
    let alive_now = members.iter().filter(|id| alive(id)).count();
    if alive_staying < quorum || alive_now < members.len() / 2 + 1 {
        return Some(format!(
            "removing the metadata servers {} needs a quorum of the metadata cluster alive at every step; {alive_staying} of the {} that stay are alive ({quorum} needed); bring the dead ones back first; nothing was changed",
            leaving_members.join(", "),
            staying.len()
        ));
    }
    None
}

fn format_id(id: u32) -> String {
    format!("N{id}")
}

/// Replication that the cluster cannot hold once the run is done: asked for (`--replication` or
/// the inventory's), else the cluster's own when nodes leave it. Found before any change, not
/// after new nodes joined. Counts the inventory's hosts by role (log-server for logs, worker for
/// partitions): the cluster's other nodes leave it.
/// `leaving_from`: the cluster, when nodes leave it (its replication is then kept unless asked
/// otherwise).
pub fn replication_problem(
    fleet: &Fleet,
    leaving_from: Option<&ClusterView>,
    replication: Option<u32>,
) -> Option<String> {
    let asked = replication.or(fleet.cluster.replication);
    let kept = leaving_from.map(|view| {
        let (partitions, logs) = current_replication(view);
        partitions.max(logs)
    });
    let to = asked.or(kept)?;
    for (role, name, what) in [
        (Role::LogServer, "log-server", "logs"),
        (Role::Worker, "worker", "partitions"),
    ] {
        let holders: Vec<&str> = fleet
            .hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| h.node_name.as_str())
            .collect();
        if (holders.len() as u64) < u64::from(to) {
            let fix = if asked.is_some() {
                "lower --replication or `replication` in [cluster], or add hosts to the inventory"
            } else {
                "the cluster keeps its replication unless [cluster] `replication` lowers it; lower it, or keep enough hosts in the inventory"
            };
            return Some(format!(
                "replication {to} needs {to} nodes with the `{name}` role ({what}), the cluster would have {}: {}; {fix}; nothing was changed",
                holders.len(),
                holders.join(", ")
            ));
        }
    }
    None
}

/// What stops the leaving nodes from leaving (see `refusal`).
pub fn removal_problem(fleet: &Fleet, survey: &Survey, replication: Option<u32>) -> Option<String> {
    let view = survey.view.as_ref()?;
    if survey.leaving.is_empty() {
        return None;
    }
    let (_, logs) = current_replication(view);
    let log_replication = replication.or(fleet.cluster.replication).unwrap_or(logs);
    let holdings: Vec<(&str, Holdings)> = survey
        .leaving
        .iter()
        .map(|l| (l.node.name.as_str(), l.holdings()))
        .collect();
    refusal(view, &holdings, log_replication)
}

/// The logs whose tail is still written to leaving node `id`, each with a nodeset without it:
/// the tail's other nodes that are `writable` (read-write log servers), topped up from the rest
/// of `writable` to `replication` nodes; and a new sequencer (the first of them) when the
/// tail's runs on the leaving node. Restate moves such a tail by itself only when it sees a
/// better nodeset; one that must shrink to exactly the replication (three log servers to two
/// with replication 2, measured on 1.7.12) stays. Nothing when too few log servers are writable.
pub fn nodesets_without(
    logs: &Logs,
    id: u32,
    writable: &[u32],
    replication: usize,
) -> Vec<(u32, Vec<u32>, Option<u32>)> {
    if writable.len() < replication.max(1) {
        return Vec::new();
    }
    logs.logs
        .iter()
        .filter_map(|(log, chain)| {
            let tail = chain.tail().filter(|t| t.nodeset.contains(&id))?;
            let mut nodeset: Vec<u32> = tail
                .nodeset
                .iter()
                .copied()
                .filter(|n| writable.contains(n))
                .collect();
            for n in writable {
                if nodeset.len() >= replication.max(1) {
                    break;
                }
                if !nodeset.contains(n) {
                    nodeset.push(*n);
                }
            }
            nodeset.sort_unstable();
            let sequencer = (chain.tail_sequencer() == Some(id))
                .then(|| nodeset.first().copied())
                .flatten();
            Some((*log, nodeset, sequencer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::NodeView;
    use crate::rollout::fixtures;

    fn node(id: u32, alive: bool) -> NodeView {
        NodeView {
            roles: vec!["worker".into(), "log-server".into()],
            alive,
            ..fixtures::node(id)
        }
    }

    fn view(alive: &[bool], members: &[u32]) -> ClusterView {
        let nodes = alive
            .iter()
            .enumerate()
            .map(|(i, a)| NodeView {
                metadata_member: members.contains(&(i as u32 + 1)),
                ..node(i as u32 + 1, *a)
            })
            .collect();
        fixtures::cluster(nodes, members)
    }

    fn holding(id: u32, alive: bool, in_logs: usize, unreachable: bool) -> Holdings {
        Holdings {
            id,
            alive,
            leads: 0,
            follows: 0,
            in_logs,
            metadata_member: false,
            unreachable: unreachable.then(|| "connection refused".to_string()),
            comes_back: false,
        }
    }

    #[test]
    fn who_may_leave() {
        // (nodes alive, metadata members, leaving, log replication after, refused because)
        type Case = (
            &'static [bool],
            &'static [u32],
            Vec<Holdings>,
            u32,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            // A worker-only node of four, reachable.
            (
                &[true; 4],
                &[1, 2, 3],
                vec![holding(4, true, 13, false)],
                2,
                None,
            ),
            // Alive but its host unreachable: it could not be stopped.
            (
                &[true; 4],
                &[1, 2, 3],
                vec![holding(4, true, 13, true)],
                2,
                Some("cannot be reached"),
            ),
            // Dead and unreachable: fine when its logs are replicated elsewhere...
            (
                &[true, true, true, false],
                &[1, 2, 3],
                vec![holding(4, false, 13, true)],
                2,
                None,
            ),
            // ...refused when they are not.
            (
                &[true, true, true, false],
                &[1, 2, 3],
                vec![holding(4, false, 13, true)],
                1,
                Some("exist nowhere else"),
            ),
            // Its host came back empty: the same, said as what it is.
            (
                &[true, true, true, false],
                &[1, 2, 3],
                vec![Holdings {
                    comes_back: true,
                    ..holding(4, false, 13, false)
                }],
                1,
                Some("came back without its data"),
            ),
            (
                &[true, true, true, false],
                &[1, 2, 3],
                vec![Holdings {
                    comes_back: true,
                    ..holding(4, false, 13, false)
                }],
                2,
                None,
            ),
            // Dead, replication 1, but in no nodeset: nothing is lost.
            (
                &[true, true, false],
                &[1],
                vec![holding(3, false, 0, true)],
                1,
                None,
            ),
            // Two of five metadata members leave: three stay, all alive.
            (
                &[true; 5],
                &[1, 2, 3, 4, 5],
                vec![holding(4, true, 0, false), holding(5, true, 0, false)],
                2,
                None,
            ),
            // Two of five leave while one that stays is dead: 2 of 3 alive is still a quorum.
            (
                &[true, true, false, true, true],
                &[1, 2, 3, 4, 5],
                vec![holding(4, true, 0, false), holding(5, true, 0, false)],
                2,
                None,
            ),
            // Two of three that stay are dead: no quorum.
            (
                &[true, false, false, true, true],
                &[1, 2, 3, 4, 5],
                vec![holding(4, true, 0, false), holding(5, true, 0, false)],
                2,
                Some("quorum"),
            ),
            // The only metadata server leaves.
            (
                &[true, true],
                &[2],
                vec![holding(2, true, 0, false)],
                1,
                Some("every metadata server"),
            ),
        ];
        for (alive, members, leaving, replication, want) in cases {
            let view = view(alive, members);
            let named: Vec<(String, Holdings)> = leaving
                .into_iter()
                .map(|mut h| {
                    h.metadata_member = members.contains(&h.id);
                    (format!("n{}", h.id), h)
                })
                .collect();
            let leaving: Vec<(&str, Holdings)> =
                named.iter().map(|(n, h)| (n.as_str(), h.clone())).collect();
            let got = refusal(&view, &leaving, replication);
            match (want, &got) {
                (None, None) => {}
                (Some(needle), Some(why))
                    if why.contains(needle) && why.contains("nothing was changed") => {}
                _ => panic!(
                    "{alive:?} {members:?} {leaving:?} r{replication}: want {want:?}, got {got:?}"
                ),
            }
        }
    }

    #[test]
    fn holdings_read_like_a_sentence() {
        let mut held = holding(4, true, 13, false);
        held.leads = 7;
        held.follows = 5;
        assert_eq!(
            held.to_string(),
            "N4; leads 7 and follows 5 partitions; in the nodesets of 13 logs"
        );
        held.alive = false;
        held.metadata_member = true;
        assert_eq!(
            held.to_string(),
            "N4, dead; leads 7 and follows 5 partitions; in the nodesets of 13 logs; metadata member"
        );
    }
}

#[cfg(test)]
mod nodeset_tests {
    use super::*;
    use crate::admin::{LogChain, Segment};

    fn chain(nodeset: &[u32]) -> LogChain {
        LogChain {
            segments: vec![Segment {
                base_lsn: 1,
                index: 0,
                kind: "replicated".into(),
                replication: Some("{node: 2}".into()),
                nodeset: nodeset.to_vec(),
                sequencer: Some("N1:3".into()),
            }],
        }
    }

    #[test]
    fn tails_left_on_a_leaving_node_get_the_writable_log_servers() {
        let logs = Logs {
            logs: [
                (0, chain(&[1, 2, 3])),
                (1, chain(&[1, 4])),
                (2, chain(&[2, 3])),
            ]
            .into(),
            version: 1,
            default_provider: None,
        };
        // (case, leaving, writable, replication, moves)
        type Case = (
            &'static str,
            u32,
            Vec<u32>,
            usize,
            Vec<(u32, Vec<u32>, Option<u32>)>,
        );
        let cases: [Case; 5] = [
            (
                "three to two, replication 2",
                2,
                vec![1, 3],
                2,
                vec![(0, vec![1, 3], None), (2, vec![1, 3], None)],
            ),
            (
                "topped up from the other servers",
                3,
                vec![1, 2, 4],
                2,
                vec![(0, vec![1, 2], None), (2, vec![1, 2], None)],
            ),
            ("too few writable: left to Restate", 2, vec![1], 2, vec![]),
            ("a node no tail names", 5, vec![1, 2, 3], 2, vec![]),
            (
                "the leaving node sequences: the first of the new nodeset does",
                1,
                vec![2, 3, 4],
                2,
                vec![(0, vec![2, 3], Some(2)), (1, vec![2, 4], Some(2))],
            ),
        ];
        for (what, leaving, writable, replication, moves) in cases {
            assert_eq!(
                nodesets_without(&logs, leaving, &writable, replication),
                moves,
                "{what}"
            );
        }
    }
}

#[cfg(test)]
mod replication_tests {
    use super::replication_problem;
    use crate::rollout::fixtures::{fleet, view};

    #[test]
    fn replication_needs_as_many_nodes_of_each_role() {
        let replicated_twice = || {
            let mut v = view("grown");
            v.config.partition_replication = Some("{node: 2}".into());
            v.config.log_replication = Some("{node: 2}".into());
            v
        };
        let two = fleet("", &["n1", "n2"]);
        // (fleet, nodes leaving from, --replication, refused)
        let cases = [
            ("asked 2 of 2 hosts", &two, None, Some(2), false),
            ("asked 3 of 2 hosts", &two, None, Some(3), true),
            ("nothing asked, nothing leaving", &two, None, None, false),
            (
                "leaving a cluster of replication 2, 2 hosts stay",
                &two,
                Some(replicated_twice()),
                None,
                false,
            ),
            (
                "leaving a cluster of replication 2, 1 host stays",
                &fleet("", &["n1"]),
                Some(replicated_twice()),
                None,
                true,
            ),
            (
                "leaving, the inventory lowers it to 1",
                &fleet("replication = 1", &["n1"]),
                Some(replicated_twice()),
                None,
                false,
            ),
        ];
        for (name, fleet, leaving_from, replication, refused) in cases {
            let problem = replication_problem(fleet, leaving_from.as_ref(), replication);
            assert_eq!(problem.is_some(), refused, "{name}: {problem:?}");
            if let Some(problem) = problem {
                assert!(problem.contains("nothing was changed"), "{problem}");
            }
        }
    }
}

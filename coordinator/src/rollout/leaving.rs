//! Cluster nodes that no inventory host names any more: the inventory shrank, so they leave the
//! cluster. Here: which they are, how their hosts are reached, and whether the nodes that stay
//! can let them go (decided before anything changes). The removal itself is in `remove.rs`;
//! docs/scale-down.md has the procedure.

use restate_fleet_inventory::Fleet;
use serde::{Deserialize, Serialize};

use super::plan::replication_count;
use super::survey::{Class, Survey, came_back_empty};
use crate::admin::{ClusterView, NodeView};
use crate::reach::{Reached, Reacher};

/// A node that leaves.
pub struct Leaving {
    pub node: NodeView,
    /// Logs with a segment whose nodeset names it.
    pub in_logs: usize,
    pub host: LeavingHost,
}

/// Where a leaving node's host is.
pub enum LeavingHost {
    /// Reached with `[defaults]` at the address the node advertises.
    Reached(Box<Reached>),
    /// Why it could not be reached.
    Unreachable(String),
    /// The inventory host of that name, which came back without the node's data
    /// (`survey::came_back_empty`): it joins again as a new node once this one is gone.
    ComesBack(String),
}

/// What `check` and `plan` show of a leaving node, and what the refusal rules look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdings {
    pub id: u32,
    pub alive: bool,
    pub leads: usize,
    pub follows: usize,
    pub in_logs: usize,
    pub metadata_member: bool,
    /// Why its host could not be reached, when it could not.
    pub unreachable: Option<String>,
    /// Its host came back without its data and joins again as a new node under the same name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub comes_back: bool,
}

impl Leaving {
    pub fn holdings(&self) -> Holdings {
        Holdings {
            id: self.node.id,
            alive: self.node.alive,
            leads: self.node.leader_partitions,
            follows: self.node.follower_partitions,
            in_logs: self.in_logs,
            metadata_member: self.node.metadata_member,
            unreachable: match &self.host {
                LeavingHost::Unreachable(why) => Some(why.clone()),
                _ => None,
            },
            comes_back: matches!(self.host, LeavingHost::ComesBack(_)),
        }
    }

    /// The host to lock for the run: one reached for this node alone.
    pub fn own_host(&self) -> Option<&Reached> {
        match &self.host {
            LeavingHost::Reached(reached) => Some(reached),
            _ => None,
        }
    }
}

impl std::fmt::Display for Holdings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "N{}", self.id)?;
        if !self.alive {
            write!(f, ", dead")?;
        }
        write!(
            f,
            "; leads {} and follows {} partitions; in the nodesets of {} logs",
            self.leads, self.follows, self.in_logs
        )?;
        if self.metadata_member {
            write!(f, "; metadata member")?;
        }
        if self.comes_back {
            write!(
                f,
                "; its host came back without its data and joins again as a new node"
            )?;
        }
        Ok(())
    }
}

/// Nodes of the cluster whose name no inventory host has.
pub fn leaving_nodes<'v>(fleet: &Fleet, view: &'v ClusterView) -> Vec<&'v NodeView> {
    view.nodes
        .iter()
        .filter(|node| !fleet.hosts.iter().any(|h| h.node_name == node.name))
        .collect()
}

/// Reaches the leaving nodes' hosts (see [`Fleet::leaving_host`]).
pub async fn gather(fleet: &Fleet, view: &ClusterView, reacher: &Reacher) -> Vec<Leaving> {
    let nodes = leaving_nodes(fleet, view);
    let hosts: Vec<_> = nodes
        .iter()
        .map(|node| fleet.leaving_host(&node.name, &node.address))
        .collect();
    let reachable: Vec<_> = hosts.iter().flatten().cloned().collect();
    let mut reached = reacher.reach(&reachable).await.into_iter();
    nodes
        .into_iter()
        .zip(hosts)
        .map(|(node, host)| Leaving {
            node: node.clone(),
            in_logs: view.logs.in_nodesets.get(&node.id).copied().unwrap_or(0),
            host: match host {
                None => {
                    LeavingHost::Unreachable(format!("its address {} names no host", node.address))
                }
                Some(_) => match reached.next() {
                    Some(Ok(r)) => LeavingHost::Reached(Box::new(r)),
                    Some(Err(e)) => LeavingHost::Unreachable(e.to_string()),
                    None => LeavingHost::Unreachable("not reached".to_string()),
                },
            },
        })
        .collect()
}

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

/// Partition and log replication as the cluster has them now (1 when it does not say).
pub fn current_replication(view: &ClusterView) -> (u32, u32) {
    let parse = |r: &Option<String>| r.as_deref().and_then(replication_count).unwrap_or(1);
    (
        parse(&view.config.partition_replication),
        parse(&view.config.log_replication),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
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

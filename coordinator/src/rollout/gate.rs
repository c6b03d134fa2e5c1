//! Health gates: a step is done only when the cluster itself says so, several reads in a row.

use std::time::{Duration, Instant};

use crate::admin::{self, AdminClient, ClusterView};

/// A gate that did not open in time, with what the last read saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("after {after:?}: {last}")]
pub struct GateTimeout {
    pub after: Duration,
    pub last: String,
}

/// Why a node may not restart now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error("{node} is not in the cluster's nodes configuration")]
    NotInCluster { node: String },
    #[error(
        "restarting {node} would leave {alive_others} of {members} metadata servers alive, fewer than the {majority} a quorum needs; bring the dead metadata servers back first"
    )]
    WouldLoseQuorum {
        node: String,
        alive_others: usize,
        members: usize,
        majority: usize,
    },
}

/// Reads in a row that must all see the nodes healthy: one good read can be a stale answer.
const CONSECUTIVE: u32 = 3;
const INTERVAL: Duration = Duration::from_millis(100);

/// Waits until every named node is alive in the cluster state (and a metadata member when it
/// runs a metadata server), `CONSECUTIVE` reads in a row.
pub async fn healthy(
    clients: &[AdminClient],
    node_names: &[String],
    timeout: Duration,
) -> Result<ClusterView, GateTimeout> {
    let deadline = Instant::now() + timeout;
    let mut streak = 0;
    let mut last = String::from("no admin node answered yet");
    loop {
        match admin::gather(clients).await {
            Ok(view) => {
                let sick: Vec<&String> =
                    node_names.iter().filter(|n| !view.is_healthy(n)).collect();
                if sick.is_empty() {
                    streak += 1;
                    if streak >= CONSECUTIVE {
                        return Ok(view);
                    }
                } else {
                    streak = 0;
                    last = format!(
                        "not yet alive and a metadata member: {}",
                        sick.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    for name in sick {
                        let node = view.node(name);
                        tracing::debug!(
                            node = name.as_str(),
                            alive = node.is_some_and(|n| n.alive),
                            metadata_member = node.is_some_and(|n| n.metadata_member),
                            "gate: not healthy yet"
                        );
                    }
                }
            }
            Err(err) => {
                streak = 0;
                last = err.to_string();
            }
        }
        if Instant::now() >= deadline {
            return Err(GateTimeout {
                after: timeout,
                last,
            });
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Waits until every partition has a leader: snapshots, and the end of a run, need running
/// partition processors, which come a few seconds after the nodes report alive.
pub async fn partitions_led(
    clients: &[AdminClient],
    timeout: Duration,
) -> Result<ClusterView, GateTimeout> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match admin::gather(clients).await {
            Ok(view) => {
                if all_partitions_led(&view) {
                    return Ok(view);
                }
                format!(
                    "{} of {} partitions have a leader",
                    partitions_with_leader(&view),
                    view.config.num_partitions
                )
            }
            Err(err) => err.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(GateTimeout {
                after: timeout,
                last,
            });
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

fn partitions_with_leader(view: &ClusterView) -> usize {
    view.nodes
        .iter()
        .filter(|n| n.alive)
        .map(|n| n.leader_partitions)
        .sum()
}

pub fn all_partitions_led(view: &ClusterView) -> bool {
    partitions_with_leader(view) >= view.config.num_partitions as usize
}

/// Whether `node` may restart now: the metadata cluster keeps a majority of its members alive
/// without it. A single-member metadata cluster cannot (its one restart is the guide's own
/// downtime); that case is allowed and reported by the caller.
pub fn quorum_without(view: &ClusterView, node: &str) -> Result<(), QuorumError> {
    let Some(me) = view.node(node) else {
        return Err(QuorumError::NotInCluster { node: node.into() });
    };
    let members = &view.metadata.members;
    if !members.contains(&me.id) || members.len() <= 1 {
        return Ok(());
    }
    let alive_others = members
        .iter()
        .filter(|id| **id != me.id)
        .filter(|id| view.nodes.iter().any(|n| n.id == **id && n.alive))
        .count();
    let majority = members.len() / 2 + 1;
    if alive_others >= majority {
        Ok(())
    } else {
        Err(QuorumError::WouldLoseQuorum {
            node: node.into(),
            alive_others,
            members: members.len(),
            majority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::quorum_without;
    use crate::rollout::fixtures::view;

    #[test]
    fn a_member_restarts_only_while_the_others_hold_the_quorum() {
        // (node to restart, nodes dead, metadata members, allowed)
        let cases: [(&str, &[&str], &[u32], bool); 7] = [
            ("n1", &[], &[1, 2, 3], true),
            ("n1", &["n3"], &[1, 2, 3], false),
            ("n3", &["n3"], &[1, 2, 3], true),
            ("n1", &["n2", "n3"], &[1], true),
            ("n2", &["n3"], &[1], true),
            ("n1", &["n4"], &[1, 2, 3], true),
            ("n9", &[], &[1, 2, 3], false),
        ];
        for (node, dead, members, allowed) in cases {
            let mut v = view("grown");
            for n in v.nodes.iter_mut() {
                n.alive = !dead.contains(&n.name.as_str());
            }
            v.metadata.members = members.to_vec();
            let got = quorum_without(&v, node);
            assert_eq!(
                got.is_ok(),
                allowed,
                "{node} with {dead:?} dead, members {members:?}: {got:?}"
            );
        }
    }
}

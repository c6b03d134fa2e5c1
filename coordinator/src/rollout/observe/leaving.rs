//! Cluster nodes that no inventory host names any more: the inventory shrank, so they leave the
//! cluster. Here: which they are, how their hosts are reached, and what each holds. Whether they
//! may go is `decide/leaving.rs`; the removal itself `act/remove.rs`; docs/scale-down.md has the
//! procedure.

use restate_fleet_inventory::Fleet;
use serde::{Deserialize, Serialize};

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

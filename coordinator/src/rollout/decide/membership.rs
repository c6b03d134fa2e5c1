//! Metadata members follow `[cluster] metadata-servers`, for hosts that stay in the inventory: a
//! node the list names joins the metadata cluster (Restate's `AddNode` RPC, what `restatectl
//! metadata-server add-node` sends), a member it no longer names leaves it (`RemoveNode`) and
//! stays a standby metadata server (`metadata-server.auto-join = false` in its file, see
//! `desired.rs`). One at a time, each only while the membership it changes keeps a quorum; what
//! cannot be done so is refused before anything changes (`act/membership.rs` makes the changes).
//! Nodes whose host left the inventory leave in `act/remove.rs` instead.

use restate_fleet_inventory::{Fleet, Role};
use restate_fleet_version::Version;
use serde::Serialize;

use super::survey::{Class, Survey};
use crate::admin::{ClusterView, NodeView, STANDBY};

/// A node whose metadata membership changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The inventory host.
    pub host: String,
    /// Its plain node id.
    pub id: u32,
}

/// The membership changes, in the order the plan makes them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Listed nodes that run a metadata server already (standbys): added before anything else,
    /// so that the removals and restarts that follow have the larger quorum.
    pub add_now: Vec<Target>,
    /// Members the list no longer names: removed before the restarts that give every node the
    /// new address list (a node that also loses the role must not restart as a member).
    pub remove: Vec<Target>,
    /// Listed nodes that get the metadata-server role from this run: added after their restart.
    pub add_after_restart: Vec<Target>,
}

impl Membership {
    pub fn is_empty(&self) -> bool {
        self.add_now.is_empty() && self.remove.is_empty() && self.add_after_restart.is_empty()
    }
}

/// What the list asks of the inventory's hosts that are nodes of the cluster. Nothing when the
/// view shows no metadata cluster (no member answered): then nothing is known to change.
pub fn changes(fleet: &Fleet, view: &ClusterView) -> Membership {
    let mut membership = Membership::default();
    if view.metadata.members.is_empty() {
        return membership;
    }
    for host in &fleet.hosts {
        let Some(node) = view.node(&host.node_name) else {
            continue;
        };
        let target = Target {
            host: host.name.clone(),
            id: node.id,
        };
        match (host.metadata_server, node.metadata_member) {
            (true, false) if node.runs_metadata_server() => membership.add_now.push(target),
            (true, false) => membership.add_after_restart.push(target),
            (false, true) => membership.remove.push(target),
            _ => {}
        }
    }
    membership
}

/// Why the membership cannot change as asked, before anything changes; `None` when it can:
/// every step must keep a quorum ([`step_refusal`]), and the run must not end with 2 members.
pub fn refusal(view: &ClusterView, membership: &Membership) -> Option<String> {
    if membership.is_empty() {
        return None;
    }
    step_refusal(view, membership).or_else(|| two_members(view, membership))
}

/// Simulates the changes in plan order: each needs a majority alive both of the membership it
/// starts from and of the one it makes, and leaves at least one member.
pub fn step_refusal(view: &ClusterView, membership: &Membership) -> Option<String> {
    let alive = |id: u32| view.nodes.iter().any(|n| n.id == id && n.alive);
    let name = |t: &Target| format!("{} (N{})", t.host, t.id);
    for target in membership
        .add_now
        .iter()
        .chain(&membership.add_after_restart)
    {
        if !alive(target.id) {
            return Some(format!(
                "{} is to join the metadata cluster but is dead; bring it back first; nothing was changed",
                name(target)
            ));
        }
    }
    let mut members: Vec<u32> = view.metadata.members.clone();
    let steps = membership
        .add_now
        .iter()
        .map(|t| (t, true))
        .chain(membership.remove.iter().map(|t| (t, false)))
        .chain(membership.add_after_restart.iter().map(|t| (t, true)));
    for (target, join) in steps {
        let before = members.clone();
        if join {
            members.push(target.id);
        } else {
            members.retain(|id| *id != target.id);
        }
        if members.is_empty() {
            return Some(format!(
                "{} leaving would leave the metadata cluster without a member; keep at least one current member in [cluster] metadata-servers; nothing was changed",
                name(target)
            ));
        }
        for config in [&before, &members] {
            let up = config.iter().filter(|id| alive(**id)).count();
            let majority = config.len() / 2 + 1;
            if up < majority {
                return Some(format!(
                    "{} {} the metadata cluster needs {majority} of its {} members alive, {up} are; bring the dead ones back first; nothing was changed",
                    name(target),
                    if join { "joining" } else { "leaving" },
                    config.len()
                ));
            }
        }
    }
    None
}

/// Two members cannot lose one for a restart, and every node restarts for the new metadata
/// address list after a membership change: the rolls would stop half way.
fn two_members(view: &ClusterView, membership: &Membership) -> Option<String> {
    let mut members: Vec<u32> = view.metadata.members.clone();
    members.retain(|id| !membership.remove.iter().any(|t| t.id == *id));
    members.extend(
        membership
            .add_now
            .iter()
            .chain(&membership.add_after_restart)
            .map(|t| t.id),
    );
    if members.len() == 2 {
        return Some(format!(
            "the metadata cluster would have 2 members (N{}): neither could restart for its new metadata address list without losing the quorum; name 1, 3 or more hosts in [cluster] metadata-servers; nothing was changed",
            members
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", N")
        ));
    }
    None
}

/// Hosts with the metadata-server role that the list leaves out, which `auto-join = false`
/// cannot keep out of the metadata cluster: a new host whose restate-server predates the key
/// (1.5), and a node that Restate registered to join (`provisioning`: it first started with
/// auto-join) and that gets the role only now, which joins whatever its file says then.
pub fn auto_join_problems(survey: &Survey) -> Vec<String> {
    let mut problems = Vec::new();
    let fix = "add it to [cluster] metadata-servers, or leave the metadata-server role out of its roles; nothing was changed";
    for host in &survey.hosts {
        let inventory = &host.reached.host;
        if !inventory.has_role(Role::MetadataServer) || inventory.metadata_server {
            continue;
        }
        let name = host.name();
        let node = survey
            .view
            .as_ref()
            .and_then(|v| v.node(&inventory.node_name));
        match (&host.class, node) {
            (Class::New, _) => {
                let version = host
                    .server
                    .as_ref()
                    .filter(|s| s.changes())
                    .map(|s| s.version.as_str())
                    .or_else(|| {
                        host.facts
                            .restate_server
                            .as_ref()
                            .and_then(|b| b.version.as_deref())
                    });
                if version
                    .and_then(|v| v.parse::<Version>().ok())
                    .is_some_and(|v| v < AUTO_JOIN_SINCE)
                {
                    problems.push(format!(
                        "{name}: has the metadata-server role but metadata-servers does not name it, and restate-server {} has no metadata-server.auto-join (1.5+) to keep it from joining the metadata cluster by itself; {fix}",
                        version.unwrap_or("?")
                    ));
                }
            }
            (Class::Member, Some(node)) if gains_role_and_would_join(node) => {
                problems.push(format!(
                    "{name}: gets the metadata-server role but metadata-servers does not name it, and Restate registered N{} to join the metadata cluster when it first started (auto-join; its state is {}), so it would join as soon as it runs a metadata server, whatever auto-join says now; {fix}",
                    node.id,
                    node.metadata_server_state.as_deref().unwrap_or("unknown")
                ));
            }
            _ => {}
        }
    }
    problems
}

/// The first release with `metadata-server.auto-join`.
const AUTO_JOIN_SINCE: Version = Version::new(1, 5, 0);

fn gains_role_and_would_join(node: &NodeView) -> bool {
    !node.runs_metadata_server() && node.metadata_server_state.as_deref() != Some(STANDBY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::fixtures;

    fn fleet(list: &[&str], worker_only: &[&str]) -> Fleet {
        let mut text = format!(
            "[cluster]\nname = \"c\"\nmetadata-servers = [{}]\n",
            list.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for i in 1..=5 {
            text.push_str(&format!("[hosts.n{i}]\naddress = \"10.0.0.{i}\"\n"));
            if worker_only.contains(&format!("n{i}").as_str()) {
                text.push_str("roles = [\"worker\", \"log-server\"]\n");
            }
        }
        match restate_fleet_inventory::parse("inventory.toml", &text, &|_: &str| None) {
            Ok(loaded) => loaded.fleet,
            Err(err) => panic!("{err}"),
        }
    }

    /// Five nodes N1..N5 named n1..n5; `roles[i]`: runs a metadata server; `state`: its
    /// metadata server state in the nodes configuration.
    fn view(members: &[u32], dead: &[u32], no_role: &[u32], state: &str) -> ClusterView {
        let nodes = (1..=5)
            .map(|id| NodeView {
                roles: if no_role.contains(&id) {
                    vec!["worker".into()]
                } else {
                    vec!["worker".into(), "metadata-server".into()]
                },
                alive: !dead.contains(&id),
                metadata_member: members.contains(&id),
                metadata_server_state: Some(
                    if members.contains(&id) {
                        "member"
                    } else {
                        state
                    }
                    .into(),
                ),
                ..fixtures::node(id)
            })
            .collect();
        fixtures::cluster(nodes, members)
    }

    fn ids(targets: &[Target]) -> Vec<u32> {
        targets.iter().map(|t| t.id).collect()
    }

    #[test]
    fn what_the_list_changes_and_when_it_is_refused() {
        struct Case {
            what: &'static str,
            list: &'static [&'static str],
            worker_only: &'static [&'static str],
            members: &'static [u32],
            dead: &'static [u32],
            no_role: &'static [u32],
            // add now, remove, add after restart
            want: (&'static [u32], &'static [u32], &'static [u32]),
            refused: Option<&'static str>,
        }
        let cases = [
            Case {
                what: "converged",
                list: &["n1", "n2", "n3"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[],
                want: (&[], &[], &[]),
                refused: None,
            },
            Case {
                what: "3 -> 5, the two standbys join at once",
                list: &["n1", "n2", "n3", "n4", "n5"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[],
                want: (&[4, 5], &[], &[]),
                refused: None,
            },
            Case {
                what: "5 -> 3",
                list: &["n1", "n2", "n3"],
                worker_only: &[],
                members: &[1, 2, 3, 4, 5],
                dead: &[],
                no_role: &[],
                want: (&[], &[4, 5], &[]),
                refused: None,
            },
            Case {
                what: "3 -> 5 where n4 and n5 get the role from this run",
                list: &["n1", "n2", "n3", "n4", "n5"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[4, 5],
                want: (&[], &[], &[4, 5]),
                refused: None,
            },
            Case {
                what: "a swap: n4 in, n3 out",
                list: &["n1", "n2", "n4"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[],
                want: (&[4], &[3], &[]),
                refused: None,
            },
            Case {
                what: "3 -> 1",
                list: &["n1"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[],
                want: (&[], &[2, 3], &[]),
                refused: None,
            },
            Case {
                what: "3 -> 2: no member could restart afterwards",
                list: &["n1", "n2"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[],
                want: (&[], &[3], &[]),
                refused: Some("would have 2 members"),
            },
            Case {
                what: "every current member replaced by hosts that get the role only now",
                list: &["n4"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[],
                no_role: &[4],
                want: (&[], &[1, 2, 3], &[4]),
                refused: Some("without a member"),
            },
            Case {
                what: "5 -> 3 while two of the five are dead: 3 of 5 alive, but 1 of 3 after",
                list: &["n1", "n2", "n3"],
                worker_only: &[],
                members: &[1, 2, 3, 4, 5],
                dead: &[2, 3],
                no_role: &[],
                want: (&[], &[4, 5], &[]),
                refused: Some("needs"),
            },
            Case {
                what: "a dead standby cannot join",
                list: &["n1", "n2", "n3", "n4", "n5"],
                worker_only: &[],
                members: &[1, 2, 3],
                dead: &[5],
                no_role: &[],
                want: (&[4, 5], &[], &[]),
                refused: Some("is dead"),
            },
            Case {
                what: "a worker-only host leaves the list together with its role",
                list: &["n1", "n2", "n3"],
                worker_only: &["n4", "n5"],
                members: &[1, 2, 3, 4, 5],
                dead: &[],
                no_role: &[],
                want: (&[], &[4, 5], &[]),
                refused: None,
            },
        ];
        for case in cases {
            let fleet = fleet(case.list, case.worker_only);
            let view = view(case.members, case.dead, case.no_role, "standby");
            let got = changes(&fleet, &view);
            assert_eq!(
                (
                    ids(&got.add_now),
                    ids(&got.remove),
                    ids(&got.add_after_restart)
                ),
                (
                    case.want.0.to_vec(),
                    case.want.1.to_vec(),
                    case.want.2.to_vec()
                ),
                "{}",
                case.what
            );
            let refused = refusal(&view, &got);
            match (case.refused, &refused) {
                (None, None) => {}
                (Some(needle), Some(why))
                    if why.contains(needle) && why.contains("nothing was changed") => {}
                _ => panic!("{}: want {:?}, got {refused:?}", case.what, case.refused),
            }
        }
    }

    #[test]
    fn no_metadata_cluster_in_sight_changes_nothing() {
        let fleet = fleet(&["n1", "n2", "n3"], &[]);
        let view = view(&[], &[], &[], "standby");
        assert!(changes(&fleet, &view).is_empty());
    }

    #[test]
    fn who_would_join_by_itself_when_given_the_role() {
        let node = |roles: &[&str], state: &str| NodeView {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            metadata_server_state: Some(state.into()),
            ..view(&[1], &[], &[], "standby").nodes[0].clone()
        };
        assert!(gains_role_and_would_join(&node(
            &["worker"],
            "provisioning"
        )));
        assert!(!gains_role_and_would_join(&node(&["worker"], "standby")));
        // Runs a metadata server already: nothing changes for it at its restart.
        assert!(!gains_role_and_would_join(&node(
            &["worker", "metadata-server"],
            "provisioning"
        )));
    }
}

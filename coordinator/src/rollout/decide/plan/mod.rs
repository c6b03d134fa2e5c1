//! The ordered steps that take the surveyed fleet to what the inventory says, following the
//! scaling guide. Planning asks the agents for diffs but changes nothing.

mod step;

pub use step::{Step, keys_text, nodeset_size_text};

use restate_fleet_inventory::{Fleet, TlsMode};
use restate_fleet_proto::agent::{Operation, PatchOp, PatchPreview};
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::desired::{self, METADATA_ADDRESSES, Scope};
use super::membership;
use super::replication::{
    current_replication, replication_count, replication_is, wanted_replication,
};
use super::server::{Change, HostServer};
use super::survey::{Class, Surveyed};
use crate::admin::{ClusterView, KIND_REPLICATED};
use crate::rollout::observe::leaving::Holdings;

/// One host's planned change of restate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileChange {
    pub host: String,
    pub class: Class,
    #[serde(flatten)]
    pub preview: PatchPreview,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub files: Vec<FileChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The patch a host gets in the end.
pub fn full_patch(fleet: &Fleet, host: &Surveyed) -> Vec<PatchOp> {
    let pinned = host.facts.config.values.bifrost_default_provider.as_deref();
    desired::patch(fleet, &host.reached.host, Scope::Full, pinned, host.tls)
}

/// The patch of a TLS rollout's step: everything the inventory says, at fabric TLS `mode`.
pub fn tls_patch(fleet: &Fleet, host: &Surveyed, mode: TlsMode) -> Vec<PatchOp> {
    let pinned = host.facts.config.values.bifrost_default_provider.as_deref();
    desired::patch(fleet, &host.reached.host, Scope::Full, pinned, Some(mode))
}

/// The patch a member gets before new nodes join: everything but the new metadata server list,
/// or everything when `metadata_list` (see [`one_restart`]).
pub fn fix_patch(fleet: &Fleet, host: &Surveyed, metadata_list: bool) -> Vec<PatchOp> {
    if metadata_list {
        return full_patch(fleet, host);
    }
    let pinned = host.facts.config.values.bifrost_default_provider.as_deref();
    desired::patch(
        fleet,
        &host.reached.host,
        Scope::KeepMetadataList,
        pinned,
        host.tls,
    )
}

/// Whether a member running `version` (after any upgrade this run makes) may get the full
/// metadata server list in the same restart as its other fixes: restate-server 1.7 starts, stays
/// the metadata member and leads its partitions with addresses of nodes that do not exist yet
/// (measured on 1.7.12). Older servers keep the guide's two restarts.
pub fn one_restart(version: Option<&str>) -> bool {
    version
        .and_then(|v| v.parse::<Version>().ok())
        .is_some_and(|v| v >= Version::new(1, 7, 0))
}

/// The restate-server version a member runs once this run's upgrades are done.
pub fn version_after_upgrades(host: &Surveyed) -> Option<&str> {
    match host.server.as_ref().filter(|s| s.changes()) {
        Some(server) => Some(server.version.as_str()),
        None => host
            .facts
            .restate_server
            .as_ref()
            .and_then(|b| b.version.as_deref()),
    }
}

/// The agent's dry run of `patch` on `host`: what its restate.toml would become, checked with the
/// restate-server that reads it next.
pub fn preview_op(fleet: &Fleet, host: &Surveyed, patch: Vec<PatchOp>) -> Operation {
    Operation::Plan {
        config_path: host.reached.host.config_path.clone().into(),
        patch,
        service_user: host.reached.host.service_user.clone(),
        environment: desired::environment(fleet, &host.reached.host),
        server_binary: host.server_binary(false),
    }
}

/// What the plan is decided from: the survey's findings and what each host's restate.toml would
/// become, without the connections, so that [`plan`] is a pure function.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub hosts: Vec<HostState>,
    /// The cluster the members form, when any host runs one.
    pub view: Option<ClusterView>,
    /// Cluster nodes no inventory host names, and what each holds.
    pub leaving: Vec<(String, Holdings)>,
    /// The fabric TLS rollout, with `[cluster.tls]`.
    pub tls: Option<super::tls::Decided>,
}

#[derive(Debug, Clone)]
pub struct HostState {
    pub name: String,
    pub node_name: String,
    pub class: Class,
    pub server: Option<HostServer>,
    /// Whether it gets the full metadata server list in its first restart ([`one_restart`]).
    pub once: bool,
    /// Its restate.toml as the inventory wants it in the end.
    pub full: PatchPreview,
    /// A member's restate.toml before new nodes join ([`fix_patch`]).
    pub fix: Option<PatchPreview>,
    /// A member whose restate-server is not running on its reachable host ([`survey::stopped`]).
    pub stopped: bool,
    /// Its restate.toml names a snapshot repository already: its logs may have been trimmed.
    pub repository: bool,
}

/// A member as `restart` sees it.
pub struct Restartable<'a> {
    pub host: &'a str,
    /// Its systemd unit and `systemctl is-enabled`'s answer; `None` when the inventory runs
    /// restate-server with its own commands.
    pub unit: Option<(&'a str, &'a str)>,
}

/// `restate-fleet restart`: every member restarts in turn, as it is; refused while the cluster is
/// not whole (a node dead, a member stopped), since each restart takes one more node away.
/// `members`: the inventory's hosts that are members, in inventory order. With `reboot`, also
/// refused for a member whose restate-server would not start by itself at boot.
pub fn restarts<'a>(
    members: impl Iterator<Item = Restartable<'a>>,
    view: Option<&ClusterView>,
    reboot: bool,
) -> Result<Plan, String> {
    let Some(view) = view else {
        return Err("no cluster answers: nothing to restart".into());
    };
    let dead: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| !n.alive)
        .map(|n| format!("{} (N{})", n.name, n.id))
        .collect();
    if !dead.is_empty() {
        return Err(format!(
            "the cluster is not healthy: {} dead; a rolling restart takes one more node away at a time, so bring it back first (`restate-fleet apply` starts a stopped member; see docs/day-two.md); nothing was changed",
            dead.join(", ")
        ));
    }
    let members: Vec<Restartable> = members.collect();
    if reboot {
        let wont_start: Vec<String> = members
            .iter()
            .filter_map(|m| match m.unit {
                None => Some(format!(
                    "{}: restate-server runs under the inventory's own commands, which nothing starts at boot",
                    m.host
                )),
                Some((unit, enabled)) if enabled != "enabled" => Some(format!(
                    "{}: {unit} is {enabled}, so it would not start at boot (systemctl enable {unit})",
                    m.host
                )),
                Some(_) => None,
            })
            .collect();
        if !wont_start.is_empty() {
            return Err(format!(
                "--reboot brings each member back only through its own boot: {}; restart those without --reboot; nothing was changed",
                wont_start.join("; ")
            ));
        }
    }
    let steps = members
        .iter()
        .map(|m| Step::RestartMember {
            host: m.host.to_string(),
            reboot,
        })
        .collect();
    Ok(Plan {
        steps,
        files: Vec::new(),
    })
}

/// The hosts whose restate-server refuses the restate.toml this run would write (checked with
/// the server on the host, before anything changes), each with the server's message; with
/// `--limit`, of those hosts only.
pub fn rejections(gathered: &Gathered, limit: Option<&[String]>) -> Vec<String> {
    gathered
        .hosts
        .iter()
        .filter(|h| limit.is_none_or(|l| l.contains(&h.name)))
        .flat_map(|h| {
            let fix = h.fix.as_ref().and_then(|f| f.rejected.as_ref());
            let full = h.full.rejected.as_ref().filter(|&r| Some(r) != fix);
            fix.into_iter().chain(full).map(move |why| {
                format!(
                    "{}: the restate.toml this run would write is refused by its restate-server: {why}; fix the value in the inventory ([config] or the host's config) and re-run; nothing was changed",
                    h.name
                )
            })
        })
        .collect()
}

/// The plan, unless a host's restate-server refuses the file it would get (with `--limit`, of
/// those hosts only: [`rejections`]).
pub fn decided(
    fleet: &Fleet,
    gathered: &Gathered,
    limit: Option<&[String]>,
    replication: Option<u32>,
) -> Result<Plan, Vec<String>> {
    let rejected = rejections(gathered, limit);
    if rejected.is_empty() {
        Ok(plan(fleet, gathered, replication))
    } else {
        Err(rejected)
    }
}

/// The steps that take the fleet from what was gathered to what the inventory says, in the
/// guide's order (design.md): server binaries, member fixes, loglet, snapshots, joins, the
/// metadata list, removals, replication.
pub fn plan(fleet: &Fleet, gathered: &Gathered, replication: Option<u32>) -> Plan {
    let members: Vec<&HostState> = gathered
        .hosts
        .iter()
        .filter(|h| h.class == Class::Member)
        .collect();
    let new: Vec<String> = gathered
        .hosts
        .iter()
        .filter(|h| h.class == Class::New)
        .map(|h| h.name.clone())
        .collect();
    let files: Vec<FileChange> = gathered
        .hosts
        .iter()
        .filter(|h| h.full.changed)
        .map(|h| FileChange {
            host: h.name.clone(),
            class: h.class.clone(),
            preview: h.full.clone(),
        })
        .collect();
    let mut steps = repairs(gathered, &members);
    server_steps(gathered, &mut steps);
    steps.extend(tls_files(gathered));
    let membership = gathered
        .view
        .as_ref()
        .map(|view| membership::changes(fleet, view))
        .unwrap_or_default();
    // Joins first (a larger quorum for what follows), then leaves, both before the restarts
    // that write the new metadata address list: a node that also loses the role must not
    // restart while still a member.
    let add = |t: &membership::Target| Step::AddMetadataMember {
        host: t.host.clone(),
        id: t.id,
    };
    steps.extend(membership.add_now.iter().map(add));
    steps.extend(
        membership
            .remove
            .iter()
            .map(|t| Step::RemoveMetadataMember {
                host: t.host.clone(),
                id: t.id,
            }),
    );
    if members.is_empty() {
        steps.extend(provision(fleet, gathered, new, replication));
    } else {
        member_steps(fleet, gathered, &members, new, replication, &mut steps);
    }
    // Nodes that run a metadata server only once their restart above gave them the role.
    steps.extend(membership.add_after_restart.iter().map(add));
    removal_steps(fleet, gathered, replication, &mut steps);
    replication_steps(fleet, gathered, replication, &mut steps);
    steps.extend(tls_modes(gathered));
    Plan { steps, files }
}

/// The members' certificates before anything restarts (new hosts get theirs as they join).
fn tls_files(gathered: &Gathered) -> Option<Step> {
    let tls = gathered.tls.as_ref().filter(|t| !t.push.is_empty())?;
    Some(Step::TlsFiles {
        hosts: tls.push.clone(),
        issue: tls
            .issue
            .iter()
            .filter(|(h, _)| tls.push.contains(h))
            .map(|(h, _)| h.clone())
            .collect(),
        ca: tls.makes_ca.then(|| tls.ca_dir.clone()),
    })
}

/// Last, once the cluster is as the inventory says otherwise: each mode in turn on every host,
/// then, at `require`, the check that strangers are refused (also after nodes joined or a cluster
/// was made at `require`).
fn tls_modes(gathered: &Gathered) -> Vec<Step> {
    let Some(tls) = gathered.tls.as_ref() else {
        return Vec::new();
    };
    let mut steps: Vec<Step> = tls
        .rollout
        .phases
        .iter()
        .flat_map(|(mode, hosts)| {
            hosts.iter().map(|host| Step::TlsMode {
                host: host.clone(),
                mode: *mode,
            })
        })
        .collect();
    let joining = gathered.hosts.iter().any(|h| h.class == Class::New);
    if (joining || !steps.is_empty()) && tls.rollout.target == TlsMode::Require {
        steps.push(Step::TlsRefusals);
    }
    steps
}

/// What comes before anything else, so that every later step sees the cluster whole: a stopped
/// member starts again; a draining member (which would make every later restart refuse to drain
/// another) is active again.
fn repairs(gathered: &Gathered, members: &[&HostState]) -> Vec<Step> {
    let starts = members
        .iter()
        .filter(|m| m.stopped)
        .map(|m| Step::StartMember {
            host: m.name.clone(),
        });
    let draining = members.iter().filter(|member| {
        gathered
            .view
            .as_ref()
            .and_then(|v| v.node(&member.node_name))
            .is_some_and(|n| {
                n.roles.iter().any(|r| r == "worker")
                    && n.worker_state.as_deref() == Some("draining")
            })
    });
    let activations = draining.map(|m| Step::ActivateWorker {
        host: m.name.clone(),
    });
    starts.chain(activations).collect()
}

/// No member yet: the new hosts form the cluster, provisioned on the first metadata server.
fn provision(
    fleet: &Fleet,
    gathered: &Gathered,
    new: Vec<String>,
    replication: Option<u32>,
) -> Option<Step> {
    let first = new.first()?.clone();
    let on = fleet
        .cluster
        .metadata_servers
        .first()
        .cloned()
        .unwrap_or(first);
    let wanted = wanted_replication(fleet, replication);
    Some(Step::Provision {
        hosts: new,
        on,
        replication: wanted.map(|r| r.nodes),
        property: wanted.map(|r| r.to_string()),
        tls: joining_tls(gathered),
    })
}

/// The fabric TLS mode new nodes start at with their certificates, with `[cluster.tls]`.
fn joining_tls(gathered: &Gathered) -> Option<TlsMode> {
    gathered.tls.as_ref().and_then(|t| t.joining_with_files())
}

/// The members' fixes (live or with a restart), the replicated loglet, then the new nodes'
/// snapshot and join with the members' rolling restarts after them; with no one joining, the
/// members' remaining changes roll.
fn member_steps(
    fleet: &Fleet,
    gathered: &Gathered,
    members: &[&HostState],
    new: Vec<String>,
    replication: Option<u32>,
    steps: &mut Vec<Step>,
) {
    if let Some(restarting) = joins_first(gathered, members, &new) {
        gentle_grow(fleet, gathered, &restarting, new, replication, steps);
        return;
    }
    // A member whose fix is only the metadata list gets it after the new nodes joined, not
    // before: without a restart on 1.7+ ([`Step::SetMetadataList`]), else in a restart whose
    // leaders then have the new workers to move to while the member restarted before it is
    // still suspect to the cluster (a drain took 6-7 s instead of 2-3 s on the lab). The new
    // nodes find the metadata servers through the members.
    let list_only = |m: &HostState| (!new.is_empty() || m.once) && fixes_only_the_list(m);
    for member in members.iter().filter(|m| !list_only(m)) {
        steps.extend(fix(member, new.is_empty()));
    }
    if !loglet_ready(gathered.view.as_ref()) {
        steps.push(Step::ReplicatedLoglet);
    }
    let fixing = |steps: &[Step], name: &str| {
        steps.iter().any(|s| {
            matches!(s, Step::FixMember { host, .. } | Step::ReloadMember { host, .. } if host == name)
        })
    };
    let mut rolls = Vec::new();
    if new.is_empty() {
        // No one joins: a member's remaining change (e.g. the metadata list) still rolls.
        for member in members
            .iter()
            .filter(|m| m.full.changed && !fixing(steps, &m.name))
        {
            rolls.push(roll(member, member.full.changed_keys.clone()));
        }
    } else {
        // Restarted once already with the full list, or needing no change at all.
        for member in members.iter().filter(|m| !m.once || list_only(m)) {
            let changes = if list_only(member) {
                member.full.changed_keys.clone()
            } else {
                left_after_fix(member)
            };
            rolls.push(roll(member, changes));
        }
        // A host that came back without its data joins under its old name, which Restate
        // binds to the old node until that node is removed: the removal comes first.
        steps.extend(removals(gathered, true));
        steps.push(Step::Snapshot);
        steps.push(Step::JoinNew {
            hosts: new,
            tls: joining_tls(gathered),
        });
    }
    steps.extend(rolls);
}

/// The members of a grow whose restarts can wait until the new nodes took their partitions
/// over: every member runs 1.7 (it takes the metadata list of nodes to come in that restart),
/// runs and is not upgraded, the cluster runs the replicated loglet, and each member that
/// restarts for its fix is a metadata member whose restate.toml names no snapshot repository yet
/// (no automatic trim from it, so the new nodes can replay its logs). The members that do not
/// restart need no change at all. The usual case is a lone member; a grow cut short in its join
/// leaves it with the nodes that joined, which must not restart it before the rest joined either
/// (two metadata servers have no quorum without one). The new nodes then join before any
/// snapshot (measured in docs/gentle-grow.md). The members that restart, in inventory order.
fn joins_first<'a>(
    gathered: &Gathered,
    members: &[&'a HostState],
    new: &[String],
) -> Option<Vec<&'a HostState>> {
    let view = gathered.view.as_ref()?;
    // A fix of the metadata list alone needs no restart on 1.7 ([`Step::SetMetadataList`]).
    let restarts = |m: &HostState| {
        m.fix.as_ref().is_some_and(|f| {
            f.changed && !super::reload::takes_live(&f.changed_keys, f.environment_changed)
        }) && !fixes_only_the_list(m)
    };
    let ready = |m: &&HostState| {
        m.once && !m.stopped && !m.server.as_ref().is_some_and(HostServer::changes)
    };
    let (restarting, others): (Vec<&HostState>, Vec<&HostState>) =
        members.iter().copied().partition(|m| restarts(m));
    let restart_ok = |m: &&HostState| {
        !m.repository && view.node(&m.node_name).is_some_and(|n| n.metadata_member)
    };
    (!new.is_empty()
        && !restarting.is_empty()
        && members.iter().all(ready)
        && restarting.iter().all(restart_ok)
        && others.iter().all(|m| !m.full.changed)
        && loglet_ready(Some(view)))
    .then_some(restarting)
}

/// The gentler grow ([`joins_first`]): the new nodes join (their file has the snapshot
/// repository), replication is raised so that they follow, then each member that restarts hands
/// its leaders over and restarts once with its fix and the full metadata list, and only then is
/// every partition snapshotted, when every leader has the repository. No restart happens while
/// the restarted node leads every partition.
fn gentle_grow(
    fleet: &Fleet,
    gathered: &Gathered,
    restarting: &[&HostState],
    new: Vec<String>,
    replication: Option<u32>,
    steps: &mut Vec<Step>,
) {
    steps.extend(removals(gathered, true));
    steps.push(Step::JoinNew {
        hosts: new,
        tls: joining_tls(gathered),
    });
    if let Some(wanted) = wanted_replication(fleet, replication).filter(|w| w.nodes > 1) {
        steps.push(Step::RaiseReplication {
            to: wanted.nodes,
            property: wanted.to_string(),
        });
    }
    steps.extend(restarting.iter().filter_map(|m| fix(m, false)));
    steps.push(Step::Snapshot);
}

/// A member's fix before new nodes join: live when nothing joins and every changed key is
/// reloaded by the running server, else with a restart.
fn fix(member: &HostState, nothing_joins: bool) -> Option<Step> {
    let fix = member.fix.as_ref().filter(|f| f.changed)?;
    Some(
        if nothing_joins && super::reload::takes_live(&fix.changed_keys, fix.environment_changed) {
            Step::ReloadMember {
                host: member.name.clone(),
                changes: fix.changed_keys.clone(),
            }
        } else {
            Step::FixMember {
                host: member.name.clone(),
                metadata_list: member.once,
                changes: fix.changed_keys.clone(),
            }
        },
    )
}

/// Whether the cluster runs the replicated loglet already. A tail that is sealed for a moment (a
/// reconfiguration under way) is not a reason to switch the provider again; only the local
/// loglet still in use is.
fn loglet_ready(view: Option<&ClusterView>) -> bool {
    view.is_some_and(|v| {
        v.config.log_provider == KIND_REPLICATED
            && v.logs.holding_local_segments.is_empty()
            && !v
                .logs
                .tail_kinds
                .keys()
                .any(|k| k != KIND_REPLICATED && k != "sealed")
    })
}

/// Replication raised to what is asked (lowering is a removal step), and the nodeset size the
/// inventory asks for when no loglet or replication step sets it already.
fn replication_steps(
    fleet: &Fleet,
    gathered: &Gathered,
    replication: Option<u32>,
    steps: &mut Vec<Step>,
) {
    if let Some(wanted) = wanted_replication(fleet, replication) {
        let to = wanted.nodes;
        let current = gathered.view.as_ref().map(|v| {
            let parse = |r: &Option<String>| r.as_deref().and_then(replication_count).unwrap_or(1);
            let count =
                parse(&v.config.partition_replication).min(parse(&v.config.log_replication));
            let placed = replication_is(
                [
                    v.config.partition_replication.as_deref(),
                    v.config.log_replication.as_deref(),
                ],
                &wanted,
            );
            (count, placed)
        });
        // Fewer copies than asked, or the same number not yet spread over zones or regions as
        // asked.
        let raise = current
            .is_none_or(|(c, placed)| c < to || (c == to && wanted.is_location_aware() && !placed));
        let raised = steps
            .iter()
            .any(|s| matches!(s, Step::Provision { .. } | Step::RaiseReplication { .. }));
        if raise && !raised {
            steps.push(Step::RaiseReplication {
                to,
                property: wanted.to_string(),
            });
        }
    }
    if let (Some(to), Some(view)) = (fleet.cluster.nodeset_size, &gathered.view) {
        let set_anyway = steps
            .iter()
            .any(|s| matches!(s, Step::ReplicatedLoglet | Step::RaiseReplication { .. }));
        if view.config.nodeset_size != to && !set_anyway {
            steps.push(Step::NodesetSize {
                from: view.config.nodeset_size,
                to,
            });
        }
    }
}

/// A member's fix that changes the metadata server list and nothing else (no credentials either).
fn fixes_only_the_list(member: &HostState) -> bool {
    member
        .fix
        .as_ref()
        .is_some_and(|f| f.changed && !f.environment_changed && only_list(&f.changed_keys))
}

fn only_list(keys: &[String]) -> bool {
    !keys.is_empty() && keys.iter().all(|k| k == METADATA_ADDRESSES)
}

/// A member's change after the joins: the metadata list alone needs no restart where the server
/// follows the metadata members itself ([`one_restart`]'s 1.7+), anything else rolls.
fn roll(member: &HostState, changes: Vec<String>) -> Step {
    if member.once && !member.full.environment_changed && only_list(&changes) {
        Step::SetMetadataList {
            host: member.name.clone(),
        }
    } else if super::reload::takes_live(&changes, member.full.environment_changed) {
        Step::ReloadMember {
            host: member.name.clone(),
            changes,
        }
    } else {
        Step::RollMember {
            host: member.name.clone(),
            changes,
        }
    }
}

/// The keys a member's second restart writes: what its final file changes beyond its first.
fn left_after_fix(member: &HostState) -> Vec<String> {
    let fixed = member.fix.as_ref().map_or(&[][..], |f| &f.changed_keys);
    member
        .full
        .changed_keys
        .iter()
        .filter(|k| !fixed.contains(k))
        .cloned()
        .collect()
}

/// Lowering replication, then one removal per leaving node; after any growth, so that the nodes
/// that stay are there to take over.
fn removal_steps(
    fleet: &Fleet,
    gathered: &Gathered,
    replication: Option<u32>,
    steps: &mut Vec<Step>,
) {
    let Some(view) = &gathered.view else {
        return;
    };
    if let Some(wanted) = wanted_replication(fleet, replication) {
        let to = wanted.nodes;
        let (partitions, logs) = current_replication(view);
        if partitions > to || logs > to {
            steps.push(Step::LowerReplication {
                to,
                property: wanted.to_string(),
            });
        }
    }
    steps.extend(removals(gathered, false));
}

/// The removals of the leaving nodes whose hosts come back (`true`) or do not.
fn removals(gathered: &Gathered, coming_back: bool) -> impl Iterator<Item = Step> + '_ {
    gathered
        .leaving
        .iter()
        .filter(move |(_, holds)| holds.comes_back == coming_back)
        .map(|(node, holds)| Step::RemoveNode {
            node: node.clone(),
            holds: holds.clone(),
        })
}

/// Guide step 1 before any other: uploads, then members upgraded one at a time, then the binary
/// on the hosts that join.
fn server_steps(gathered: &Gathered, steps: &mut Vec<Step>) {
    let changing: Vec<(&HostState, &HostServer)> = gathered
        .hosts
        .iter()
        .filter_map(|h| h.server.as_ref().filter(|s| s.changes()).map(|s| (h, s)))
        .collect();
    let Some((_, any)) = changing.first() else {
        return;
    };
    let version = any.version.clone();
    let uploads: Vec<String> = changing
        .iter()
        .filter(|(_, s)| s.upload)
        .map(|(h, _)| h.name.clone())
        .collect();
    if !uploads.is_empty() {
        steps.push(Step::StageServer {
            hosts: uploads,
            version: version.clone(),
            mib: any.local.size.div_ceil(1 << 20),
        });
    }
    let mut installs = Vec::new();
    for (host, server) in &changing {
        match &server.change {
            Change::Upgrade { from } => steps.push(Step::UpgradeMember {
                host: host.name.clone(),
                from: from.clone(),
                to: server.version.clone(),
            }),
            Change::Install { .. } => installs.push(host.name.clone()),
            Change::Keep => {}
        }
    }
    if !installs.is_empty() {
        steps.push(Step::InstallServer {
            hosts: installs,
            version,
        });
    }
}

impl Plan {
    /// Keeps the cluster-wide steps and the host steps of the `--limit` hosts only.
    pub fn restrict_to(&mut self, hosts: &[String]) {
        let kept = |h: &String| hosts.contains(h);
        self.steps.retain_mut(|step| match step {
            Step::StartMember { host }
            | Step::FixMember { host, .. }
            | Step::ReloadMember { host, .. }
            | Step::RollMember { host, .. }
            | Step::RestartMember { host, .. }
            | Step::SetMetadataList { host }
            | Step::UpgradeMember { host, .. }
            | Step::RemoveNode { node: host, .. }
            | Step::AddMetadataMember { host, .. }
            | Step::RemoveMetadataMember { host, .. }
            | Step::ActivateWorker { host } => kept(host),
            Step::JoinNew { hosts, .. }
            | Step::Provision { hosts, .. }
            | Step::StageServer { hosts, .. }
            | Step::InstallServer { hosts, .. } => {
                hosts.retain(kept);
                !hosts.is_empty()
            }
            _ => true,
        });
        self.files.retain(|f| kept(&f.host));
    }
}

#[cfg(test)]
mod tests;

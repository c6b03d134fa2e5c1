//! The ordered steps that take the surveyed fleet to what the inventory says, following the
//! scaling guide. Planning asks the agents for diffs but changes nothing.

use restate_fleet_inventory::{Fleet, Replication, parse_replication};
use restate_fleet_proto::agent::{Operation, PatchOp, PatchPreview};
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::desired::{self, METADATA_ADDRESSES, Scope};
use super::leaving;
use super::membership;
use super::server::{Change, HostServer};
use super::survey::{Class, Surveyed};
use crate::admin::{ClusterView, KIND_REPLICATED};
use crate::rollout::observe::leaving::Holdings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A member whose restate-server stopped (a crash, a reboot with the unit not started)
    /// starts again with its own service manager, behind the health gate, before anything else.
    StartMember { host: String },
    /// Upload the inventory's restate-server to the hosts that lack it (changes no service).
    StageServer {
        hosts: Vec<String>,
        version: String,
        mib: u64,
    },
    /// Guide step 1: a member gets the new binary and restarts, behind the health gate; its old
    /// binary comes back when it does not.
    UpgradeMember {
        host: String,
        from: String,
        to: String,
    },
    /// Hosts that are not members yet get the binary.
    InstallServer { hosts: Vec<String>, version: String },
    /// Guide steps 2-4 on a member: roles, loglet pin, snapshot repository; with
    /// `metadata_list`, guide step 6's full metadata server list too, so that one restart does
    /// what the guide does in two. Restarts it.
    FixMember {
        host: String,
        #[serde(default)]
        metadata_list: bool,
        /// The restate.toml keys that change (see [`keys_text`]).
        #[serde(default)]
        changes: Vec<String>,
    },
    /// Guide step 3: the cluster's log provider to `replicated`, then every log's tail on it.
    ReplicatedLoglet,
    /// Guide step 5: every partition snapshotted with trim, then no `local` segment left.
    Snapshot,
    /// Guide step 6: write the new nodes' files and start them; wait until they joined.
    JoinNew { hosts: Vec<String> },
    /// No cluster yet: start every node and provision the cluster on the first metadata server.
    /// `replication`: partition and log replication to provision with (`--replication`, else
    /// the inventory's; Restate's default 1 when neither says).
    Provision {
        hosts: Vec<String>,
        on: String,
        #[serde(default)]
        replication: Option<u32>,
        /// The same as Restate's replication property, with zones or regions when the inventory
        /// asks for them (`{node: 3, zone: 2}`).
        #[serde(default)]
        property: Option<String>,
    },
    /// A member's change that a running server applies from its file ([`super::reload`]):
    /// written, and held until its `config` table shows it; restarted behind the usual gates
    /// when it does not.
    ReloadMember {
        host: String,
        #[serde(default)]
        changes: Vec<String>,
    },
    /// Guide step 6: a member gets the full metadata server list; restarted one at a time.
    RollMember {
        host: String,
        #[serde(default)]
        changes: Vec<String>,
    },
    /// `restate-fleet restart`: a member restarts as it is (same file, same binary), behind the
    /// same handover and gates as a rolling change; with `reboot` (`restart --reboot`), its whole
    /// host reboots and restate-server must come back by itself.
    RestartMember {
        host: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reboot: bool,
    },
    /// A running 1.7+ member's new metadata server list, written without a restart: once
    /// joined, its metadata client drops the configured addresses and follows the members in the
    /// nodes configuration (restate 1.7, `metadata-providers/src/replicated.rs`); the file's
    /// list only counts when it starts again.
    SetMetadataList { host: String },
    /// Guide step 8: raise partition and log replication.
    RaiseReplication { to: u32, property: String },
    /// A member's worker left draining (by a run cut short while it restarted the member, or
    /// by hand) takes partitions again.
    ActivateWorker { host: String },
    /// The logs' nodeset size as `[cluster] nodeset-size` says (0: auto).
    NodesetSize { from: u32, to: u32 },
    /// Lower partition and log replication, before nodes leave.
    LowerReplication { to: u32, property: String },
    /// A node no inventory host names leaves the cluster (docs/scale-down.md): drained, out of
    /// the metadata cluster, out of every nodeset, stopped and disabled, removed, its data kept
    /// aside on its host.
    RemoveNode { node: String, holds: Holdings },
    /// `[cluster] metadata-servers` names a node of the cluster that is no metadata member: it
    /// joins the metadata cluster (membership.rs).
    AddMetadataMember { host: String, id: u32 },
    /// A metadata member the list no longer names leaves the metadata cluster; it stays a
    /// standby metadata server while it keeps the role.
    RemoveMetadataMember { host: String, id: u32 },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::StartMember { host } => write!(
                f,
                "{host}: start restate-server (stopped; a member of the cluster), wait until healthy and alive in the cluster"
            ),
            Step::StageServer {
                hosts,
                version,
                mib,
            } => write!(
                f,
                "{}: upload restate-server {version} ({mib} MiB, gzip on the wire)",
                hosts.join(", ")
            ),
            Step::UpgradeMember { host, from, to } => write!(
                f,
                "{host}: upgrade restate-server {from} -> {to}, restart, wait until healthy and every partition led (the old binary comes back if not)"
            ),
            Step::InstallServer { hosts, version } => {
                write!(f, "{}: install restate-server {version}", hosts.join(", "))
            }
            Step::FixMember { host, changes, .. } => write!(
                f,
                "{host}: set {}, restart, wait until healthy",
                keys_text(changes)
            ),
            Step::ReplicatedLoglet => write!(
                f,
                "cluster: switch the log provider to replicated and wait until every log's tail is replicated"
            ),
            Step::Snapshot => write!(
                f,
                "cluster: snapshot every partition with log trim; check that no log keeps a local segment"
            ),
            Step::JoinNew { hosts } => write!(
                f,
                "{}: write restate.toml (auto-provision = false), start, wait until alive and joined",
                hosts.join(", ")
            ),
            Step::Provision {
                hosts,
                on,
                replication,
                property,
            } => {
                write!(
                    f,
                    "{}: write restate.toml, start; provision the cluster on {on}",
                    hosts.join(", ")
                )?;
                match (replication, property) {
                    (Some(to), Some(p)) if spreads(p) => write!(f, " with replication {to} ({p})"),
                    (Some(to), _) => write!(f, " with replication {to}"),
                    (None, _) => Ok(()),
                }
            }
            Step::RestartMember {
                host,
                reboot: false,
            } => write!(
                f,
                "{host}: restart restate-server (rolling restart), wait until healthy"
            ),
            Step::RestartMember { host, reboot: true } => write!(
                f,
                "{host}: reboot the host (rolling reboot), wait for SSH and for restate-server to start by itself, wait until healthy"
            ),
            Step::ReloadMember { host, changes } => write!(
                f,
                "{host}: set {} live (Restate applies it without a restart), wait until its config table shows it",
                keys_text(changes)
            ),
            Step::RollMember { host, changes } => write!(
                f,
                "{host}: set {}, restart (quorum kept), wait until healthy",
                keys_text(changes)
            ),
            Step::SetMetadataList { host } => write!(
                f,
                "{host}: set {METADATA_ADDRESSES}, no restart (the running server follows the metadata members itself)"
            ),
            Step::RaiseReplication { to, property } if spreads(property) => write!(
                f,
                "cluster: set partition and log replication to {to} copies spread as {property}"
            ),
            Step::RaiseReplication { to, .. } => {
                write!(f, "cluster: raise partition and log replication to {to}")
            }
            Step::ActivateWorker { host } => write!(
                f,
                "{host}: worker draining (no partitions run on it): set it active again"
            ),
            Step::LowerReplication { to, property } if spreads(property) => write!(
                f,
                "cluster: lower partition and log replication to {to} copies spread as {property}"
            ),
            Step::LowerReplication { to, .. } => {
                write!(f, "cluster: lower partition and log replication to {to}")
            }
            Step::NodesetSize { from, to } => write!(
                f,
                "cluster: nodeset size {} -> {}",
                nodeset_size_text(*from),
                nodeset_size_text(*to)
            ),
            Step::AddMetadataMember { host, id } => write!(
                f,
                "{host} (N{id}): joins the metadata cluster (AddNode, as restatectl metadata-server add-node N{id}), quorum kept, wait until it is a member"
            ),
            Step::RemoveMetadataMember { host, id } => write!(
                f,
                "{host} (N{id}): leaves the metadata cluster (RemoveNode, as restatectl metadata-server remove-node N{id}), quorum kept; a standby from then on while it keeps the metadata-server role (auto-join = false)"
            ),
            Step::RemoveNode { node, holds } => {
                write!(
                    f,
                    "{node} ({holds}): leaves the cluster: log storage read-only, worker draining, "
                )?;
                if holds.metadata_member {
                    write!(f, "out of the metadata cluster, ")?;
                }
                write!(f, "snapshots with trim until no log segment names it, ")?;
                match &holds.unreachable {
                    None => write!(
                        f,
                        "restate-server stopped and disabled, removed from the cluster, its data directory kept renamed on its host"
                    ),
                    Some(why) => write!(
                        f,
                        "removed from the cluster; its host is not reachable ({why}): clean it up by hand"
                    ),
                }
            }
        }
    }
}

/// The keys a member's restart writes, as its step line names them: three or more under one table
/// read as that table (`worker.snapshots.* (7 keys)`); none is the environment file alone (the
/// snapshot repository's credentials).
pub fn keys_text(keys: &[String]) -> String {
    if keys.is_empty() {
        return "the environment file".to_string();
    }
    let parent = |key: &str| key.rsplit_once('.').map(|(p, _)| p.to_string());
    let mut shown: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let table = parent(key);
        let siblings = keys.iter().filter(|k| parent(k) == table).count();
        match table {
            Some(table) if siblings >= 3 => {
                if !seen.contains(&table) {
                    shown.push(format!("{table}.* ({siblings} keys)"));
                    seen.push(table);
                }
            }
            _ => shown.push(key.clone()),
        }
    }
    shown.join(", ")
}

/// Whether a replication property places copies by zone or region.
fn spreads(property: &str) -> bool {
    parse_replication(property).is_ok_and(|r| r.is_location_aware())
}

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

/// A nodeset size as operators read it: 0 is Restate's choice.
pub fn nodeset_size_text(size: u32) -> String {
    match size {
        0 => "auto".to_string(),
        n => n.to_string(),
    }
}

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
    desired::patch(fleet, &host.reached.host, Scope::Full, pinned)
}

/// The patch a member gets before new nodes join: everything but the new metadata server list,
/// or everything when `metadata_list` (see [`one_restart`]).
pub fn fix_patch(fleet: &Fleet, host: &Surveyed, metadata_list: bool) -> Vec<PatchOp> {
    if metadata_list {
        return full_patch(fleet, host);
    }
    let pinned = host.facts.config.values.bifrost_default_provider.as_deref();
    desired::patch(fleet, &host.reached.host, Scope::KeepMetadataList, pinned)
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
    let mut steps = Vec::new();
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

    // First: a stopped member starts again, so that every later step sees the cluster whole.
    for member in members.iter().filter(|m| m.stopped) {
        steps.push(Step::StartMember {
            host: member.name.clone(),
        });
    }
    // Then: a draining member would make every later restart refuse to drain another.
    for member in &members {
        let draining = gathered
            .view
            .as_ref()
            .and_then(|v| v.node(&member.node_name))
            .is_some_and(|n| {
                n.roles.iter().any(|r| r == "worker")
                    && n.worker_state.as_deref() == Some("draining")
            });
        if draining {
            steps.push(Step::ActivateWorker {
                host: member.name.clone(),
            });
        }
    }
    server_steps(gathered, &mut steps);
    let membership = gathered
        .view
        .as_ref()
        .map(|view| membership::changes(fleet, view))
        .unwrap_or_default();
    // Joins first (a larger quorum for what follows), then leaves, both before the restarts
    // that write the new metadata address list: a node that also loses the role must not
    // restart while still a member.
    for target in &membership.add_now {
        steps.push(Step::AddMetadataMember {
            host: target.host.clone(),
            id: target.id,
        });
    }
    for target in &membership.remove {
        steps.push(Step::RemoveMetadataMember {
            host: target.host.clone(),
            id: target.id,
        });
    }
    if members.is_empty() {
        if !new.is_empty() {
            let on = fleet
                .cluster
                .metadata_servers
                .first()
                .cloned()
                .unwrap_or_else(|| new[0].clone());
            let wanted = wanted_replication(fleet, replication);
            steps.push(Step::Provision {
                hosts: new,
                on,
                replication: wanted.map(|r| r.nodes),
                property: wanted.map(|r| r.to_string()),
            });
        }
    } else {
        // A member whose fix is only the metadata list gets it after the new nodes joined, not
        // before: without a restart on 1.7+ ([`Step::SetMetadataList`]), else in a restart
        // whose leaders then have the new workers to move to while the member restarted before
        // it is still suspect to the cluster (a drain took 6-7 s instead of 2-3 s on the lab).
        // The new nodes find the metadata servers through the members.
        let list_only = |m: &HostState| {
            (!new.is_empty() || m.once)
                && m.fix.as_ref().is_some_and(|f| {
                    f.changed && !f.environment_changed && only_list(&f.changed_keys)
                })
        };
        for member in members.iter().filter(|m| !list_only(m)) {
            if let Some(fix) = member.fix.as_ref().filter(|f| f.changed) {
                steps.push(
                    if new.is_empty()
                        && super::reload::takes_live(&fix.changed_keys, fix.environment_changed)
                    {
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
                );
            }
        }
        // A tail that is sealed for a moment (a reconfiguration under way) is not a reason to
        // switch the provider again; only the local loglet still in use is.
        let loglet_ready = gathered.view.as_ref().is_some_and(|v| {
            v.config.log_provider == KIND_REPLICATED
                && v.logs.holding_local_segments.is_empty()
                && !v
                    .logs
                    .tail_kinds
                    .keys()
                    .any(|k| k != KIND_REPLICATED && k != "sealed")
        });
        if !loglet_ready {
            steps.push(Step::ReplicatedLoglet);
        }
        let fixing = |name: &str| {
            steps.iter().any(|s| {
                matches!(s, Step::FixMember { host, .. } | Step::ReloadMember { host, .. } if host == name)
            })
        };
        let mut rolls = Vec::new();
        if !new.is_empty() {
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
            steps.push(Step::JoinNew { hosts: new });
        } else {
            // No one joins: a member's remaining change (e.g. the metadata list) still rolls.
            for member in members
                .iter()
                .filter(|m| m.full.changed && !fixing(&m.name))
            {
                rolls.push(roll(member, member.full.changed_keys.clone()));
            }
        }
        steps.extend(rolls);
    }

    // Nodes that run a metadata server only once their restart above gave them the role.
    for target in &membership.add_after_restart {
        steps.push(Step::AddMetadataMember {
            host: target.host.clone(),
            id: target.id,
        });
    }
    removal_steps(fleet, gathered, replication, &mut steps);
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
        // asked (lowering is a removal step).
        let raise = current
            .is_none_or(|(c, placed)| c < to || (c == to && wanted.is_location_aware() && !placed));
        if raise && !matches!(steps.first(), Some(Step::Provision { .. })) {
            steps.push(Step::RaiseReplication {
                to,
                property: wanted.to_string(),
            });
        }
    }
    // Asked for in the inventory and not set by a loglet or replication step already.
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
    Plan { steps, files }
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
        let (partitions, logs) = leaving::current_replication(view);
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

/// `{node: 2}`, `2` or `{node: 3, zone: 2}` as the number of copies (Restate's `node` scope).
pub fn replication_count(text: &str) -> Option<u32> {
    parse_replication(text).ok().map(|r| r.nodes)
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
            Step::JoinNew { hosts }
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

//! The survey as judged (guide steps 1 and 2): each host's facts with its class (member, new or
//! conflicting) and what happens to its restate-server, the cluster's view, the nodes that
//! leave, and the problems and warnings found. `rollout/survey.rs` builds it; [`classify`]
//! decides each host's class.

use restate_fleet_inventory::{Fleet, Host};
use restate_fleet_proto::agent::Facts;
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::restatectl::Finding;
use super::server::HostServer;
use crate::admin::{AdminClient, ClusterView, NodeView};
use crate::reach::Reached;
use crate::rollout::observe::cluster::admin_clients;
use crate::rollout::observe::leaving::Leaving;
use crate::rollout::observe::snapshot_store::Probe;

/// The oldest Restate with the replicated metadata server and loglet.
pub const MIN_VERSION: Version = Version::new(1, 4, 0);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class", content = "reason")]
pub enum Class {
    /// Already a node of the inventory's cluster.
    Member,
    /// Joins the cluster.
    New,
    /// Must not be touched; the run stops before any change.
    Conflicting(String),
}

pub struct Surveyed {
    pub reached: Reached,
    pub facts: Facts,
    pub class: Class,
    /// What happens to its restate-server, when the inventory names one.
    pub server: Option<HostServer>,
    /// The fabric TLS mode its restate.toml is kept at by every step but the TLS rollout's own
    /// (`None`: its `[tls]` is left alone): a member's own, a new host's the members' (see
    /// `decide/tls.rs`).
    pub tls: Option<restate_fleet_inventory::TlsMode>,
}

impl Surveyed {
    pub fn name(&self) -> &str {
        self.reached.name()
    }

    /// The restate-server that reads this host's restate.toml next: the inventory's once it is
    /// installed (`installed`: the run's upgrades and installs are done), else the one there now.
    /// `None` when that is not known yet, or not there yet.
    pub fn server_binary(&self, installed: bool) -> Option<std::path::PathBuf> {
        match &self.server {
            Some(server) if server.changes() => installed.then(|| server.target.clone()),
            Some(server) => Some(server.target.clone()),
            None => self.facts.restate_server.as_ref().map(|b| b.path.clone()),
        }
    }
}

pub struct Survey {
    pub hosts: Vec<Surveyed>,
    /// The cluster the members form, when any host runs one.
    pub view: Option<ClusterView>,
    /// Nodes of that cluster that no inventory host names: they leave it.
    pub leaving: Vec<Leaving>,
    /// What stops the run, each naming the host and the fix.
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// The restatectl steps would use (`None`: no cluster, so none needs it).
    pub restatectl: Option<Finding>,
    /// Whether each worker host reaches the snapshot repository's endpoint.
    pub snapshot_store: Vec<Probe>,
    /// What the run does about fabric TLS, when the inventory has `[cluster.tls]`.
    pub tls: Option<super::tls::Decided>,
}

impl Survey {
    pub fn host(&self, name: &str) -> Option<&Surveyed> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    pub fn members(&self) -> impl Iterator<Item = &Surveyed> {
        self.hosts.iter().filter(|h| h.class == Class::Member)
    }

    pub fn new_hosts(&self) -> impl Iterator<Item = &Surveyed> {
        self.hosts.iter().filter(|h| h.class == Class::New)
    }

    pub fn admin_clients(&self) -> Vec<AdminClient> {
        admin_clients(self.hosts.iter().map(|h| &h.reached))
    }
}

pub fn classify(fleet: &Fleet, host: &Host, facts: &Facts, view: Option<&ClusterView>) -> Class {
    let ours = fleet.cluster.name.as_str();
    if let Some(err) = &facts.config.parse_error {
        return Class::Conflicting(format!(
            "{} does not parse at line {}, column {}: {}; fix the file by hand, restate-fleet never rewrites a file it cannot read",
            host.config_path, err.line, err.column, err.message
        ));
    }
    let data = facts.data_dir.as_ref().filter(|d| d.exists);
    if let Some(theirs) = data.and_then(|d| d.cluster_name.as_deref())
        && theirs != ours
    {
        return Class::Conflicting(format!(
            "its data directory {} belongs to cluster {theirs:?}, not {ours:?}; move that data away or remove the host from the inventory",
            data.map(|d| d.path.display().to_string())
                .unwrap_or_default()
        ));
    }
    let values = &facts.config.values;
    let has_history = data.is_some() || facts.health.is_some();
    if let Some(name) = values.node_name.as_deref()
        && name != host.node_name
        && has_history
    {
        return Class::Conflicting(format!(
            "its node-name would change from {name:?} to {:?}, but a node keeps its name once it has data; set node-name = {name:?} for this host in the inventory",
            host.node_name
        ));
    }
    if came_back_empty(host, facts, view).is_some() {
        return Class::New;
    }
    if let Some(node) = view.and_then(|view| view.node(&host.node_name)) {
        let here =
            node.address.trim_end_matches('/') == host.advertised_address.trim_end_matches('/');
        if here || has_history {
            return Class::Member;
        }
        if node.alive {
            return Class::Conflicting(format!(
                "node-name {:?} is taken by live node N{} at {}; give this host another node-name",
                host.node_name, node.id, node.address
            ));
        }
    }
    // A node running under our cluster-name is one, even when the view missed it: right after a
    // restart its admin API answers with no nodes for a moment, and the data directory is not
    // always where the agent looks (a relative base-dir under the service's working directory).
    // Taking it for new would provision or join it again, skipping the snapshots.
    let running_ours = facts
        .health
        .as_ref()
        .is_some_and(|h| h.cluster_name.as_deref() == Some(ours));
    if data.is_some() || running_ours {
        // Data of our cluster but unknown to it (or no cluster answered): it was a member.
        return Class::Member;
    }
    Class::New
}

/// The cluster's node that this host ran, when the host came back without it: its name is the
/// name of a node the cluster has dead, its restate-server is not running and no data directory
/// is there (a replaced disk, a rebuilt VM). Started under that name, Restate would take the old
/// node id again and stop on `data-loss` (docs/day-two.md), so the host joins as a new node once
/// the old one is removed: a replacement in place.
pub fn came_back_empty<'v>(
    host: &Host,
    facts: &Facts,
    view: Option<&'v ClusterView>,
) -> Option<&'v NodeView> {
    let no_data = !facts.data_dir.as_ref().is_some_and(|d| d.exists);
    view?
        .node(&host.node_name)
        .filter(|node| !node.alive && facts.health.is_none() && no_data)
}

/// A member whose restate-server is not running on its host, which was reached, while the
/// cluster knows its node (dead, or not noticed yet: the failure detector takes seconds) and its
/// data directory is still there: starting it with its own service manager brings it back as
/// it was (same node id). Without its data it would come back empty under an old name, which
/// is a replacement, not a start.
pub fn stopped(host: &Surveyed, view: Option<&ClusterView>) -> bool {
    stopped_facts(&host.reached.host, &host.facts, &host.class, view)
}

pub fn stopped_facts(
    host: &Host,
    facts: &Facts,
    class: &Class,
    view: Option<&ClusterView>,
) -> bool {
    *class == Class::Member
        && facts.health.is_none()
        && facts.data_dir.as_ref().is_some_and(|d| d.exists)
        && view.and_then(|v| v.node(&host.node_name)).is_some()
}

//! The survey's preflight: what stands in the way of growing the cluster (guide steps 1 and 2),
//! each a problem that stops the run or a warning, naming the host and the fix.

use restate_fleet_inventory::{Fleet, Host, Role};
use restate_fleet_proto::agent::{Facts, SystemdState};
use restate_fleet_version::Version;

use super::server::HostServer;
use super::survey::{Class, MIN_VERSION, came_back_empty, stopped_facts};
use crate::admin::ClusterView;

#[derive(Debug, PartialEq)]
enum Finding {
    Problem(String),
    Warning(String),
}

/// What the host's systemd says against the inventory's `manager = "systemd"`: no systemd at
/// all, or a masked unit, stop the run before any change; a disabled unit is reported and left
/// as the operator set it.
fn systemd_finding(
    service: &restate_fleet_inventory::Service,
    systemd: Option<&SystemdState>,
) -> Option<Finding> {
    let restate_fleet_inventory::Service::Systemd { unit } = service else {
        return None;
    };
    let systemd = systemd?;
    if !systemd.booted {
        return Some(Finding::Problem(
            "the inventory runs restate-server under systemd, but systemd does not run on this host (no /run/systemd/system); set service = { manager = \"command\", start = ..., stop = ..., restart = ..., status = ... } for it".to_string(),
        ));
    }
    match systemd.enabled.as_str() {
        "masked" | "masked-runtime" => Some(Finding::Problem(format!(
            "{unit} is masked, so it can never start; unmask it (systemctl unmask {unit}) if it should run restate-server, or name another unit in service.unit"
        ))),
        "disabled" => Some(Finding::Warning(format!(
            "{unit} is disabled: it will not start at boot; left as it is (systemctl enable {unit} to change that)"
        ))),
        _ => None,
    }
}

/// What preflight reads of one surveyed host (not its connection).
pub struct Seen<'a> {
    pub host: &'a Host,
    pub facts: &'a Facts,
    pub class: &'a Class,
    pub server: Option<&'a HostServer>,
}

/// The guide's preconditions over what the survey saw: problems stop the run before any change,
/// warnings do not.
pub fn preflight(
    fleet: &Fleet,
    hosts: &[Seen],
    view: Option<&ClusterView>,
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut versions = std::collections::BTreeSet::new();
    for host in hosts {
        versions.extend(host_findings(host, &mut problems, &mut warnings));
    }
    if versions.len() > 1 {
        let list: Vec<String> = versions.iter().map(Version::to_string).collect();
        warnings.push(format!(
            "mixed restate-server versions: {}",
            list.join(", ")
        ));
    }
    let members: Vec<&Seen> = hosts.iter().filter(|h| *h.class == Class::Member).collect();
    member_findings(fleet, &members, view, &mut problems, &mut warnings);
    new_host_findings(fleet, hosts, &members, view, &mut problems, &mut warnings);
    (problems, warnings)
}

/// One host's own findings: its class, its restate-server, the keys its upgrade renames or
/// removes, systemd, its roles. The version it runs, when it is kept and known.
fn host_findings(
    host: &Seen,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<Version> {
    let mut version = None;
    let name = host.host.name.as_str();
    if let Class::Conflicting(reason) = &host.class {
        problems.push(format!("{name}: {reason}"));
    }
    // The inventory's binary replaces whatever the host has (or lacks).
    let replaced = host.server.is_some_and(|s| s.changes());
    match host.facts.restate_server.as_ref().filter(|_| !replaced) {
        None if replaced => {}
        None => problems.push(format!(
            "{name}: no restate-server found on the host's PATH; install Restate 1.4.0 or newer"
        )),
        Some(binary) => match binary.version.as_deref().and_then(|v| v.parse::<Version>().ok()) {
            Some(v) if v < MIN_VERSION => problems.push(format!(
                "{name}: restate-server {v} at {} is older than 1.4.0, which brought the replicated metadata server and loglet; upgrade it first",
                binary.path.display()
            )),
            Some(v) => version = Some(v),
            None => problems.push(format!(
                "{name}: cannot tell the version of {} ({}); check that it runs",
                binary.path.display(),
                binary.version_output
            )),
        },
    }
    if let Some(server) = host.server
        && let super::server::Change::Upgrade { from } = &server.change
    {
        let inventory: Vec<String> = host.host.config.iter().map(|e| e.path.join(".")).collect();
        if let Some((in_file, in_inventory)) = super::release_keys::of_upgrade(
            from,
            &server.version,
            &host.facts.config.keys,
            &inventory,
        ) {
            problems.extend(super::release_keys::refusals(name, &in_file, &in_inventory));
            warnings.extend(super::release_keys::rename_notes(name, &in_file));
        }
    }
    let systemd = host.facts.service.as_ref().and_then(|s| s.systemd.as_ref());
    if let Some(finding) = systemd_finding(&host.host.service, systemd) {
        match finding {
            Finding::Problem(text) => problems.push(format!("{name}: {text}")),
            Finding::Warning(text) => warnings.push(format!("{name}: {text}")),
        }
    }
    if !host.host.has_role(Role::LogServer) && host.host.has_role(Role::Worker) {
        warnings.push(format!(
            "{name}: no log-server role; the replicated loglet stores no logs on this node"
        ));
    }
    version
}

/// The members against the cluster's view: stopped, dead, outside the metadata cluster, moved.
fn member_findings(
    fleet: &Fleet,
    members: &[&Seen],
    view: Option<&ClusterView>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    match view {
        None if !members.is_empty() => problems.push(format!(
            "{}: member(s) of cluster {:?} but no node answers the admin API; start them and re-run",
            members
                .iter()
                .map(|m| m.host.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            fleet.cluster.name
        )),
        None => {}
        Some(view) => {
            for member in members {
                let name = member.host.name.as_str();
                let node_name = &member.host.node_name;
                match view.node(node_name) {
                    Some(_)
                        if stopped_facts(member.host, member.facts, member.class, Some(view)) =>
                    {
                        warnings.push(format!(
                            "{name}: restate-server is not running (a member of the cluster); apply starts it first, behind the health gate"
                        ))
                    }
                    Some(node) if !node.alive => problems.push(format!(
                        "{name}: member N{} is dead in the cluster state although its restate-server answers; look at its log (restate-fleet logs, journalctl -u restate) and re-run",
                        node.id
                    )),
                    // A standby is out of the metadata cluster on purpose (membership.rs).
                    Some(node)
                        if node.runs_metadata_server()
                            && !node.metadata_member
                            && !node.is_metadata_standby() =>
                    {
                        problems.push(format!(
                            "{name}: runs metadata-server but is not a member of the replicated metadata cluster; migrate it to the replicated metadata server first (Restate docs: metadata server)"
                        ))
                    }
                    _ => {}
                }
                let registered = view.node(node_name).and_then(|n| n.location.as_deref());
                if let Some(why) =
                    location_change(member.host.location.as_ref(), registered)
                {
                    problems.push(format!("{name}: {why}"));
                }
            }
        }
    }
}

/// The new hosts: a host that came back without its data, joining without a snapshot
/// repository, a metadata server list of two.
fn new_host_findings(
    fleet: &Fleet,
    hosts: &[Seen],
    members: &[&Seen],
    view: Option<&ClusterView>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for host in hosts.iter().filter(|h| *h.class == Class::New) {
        if let Some(node) = came_back_empty(host.host, host.facts, view) {
            let name = &host.host.name;
            warnings.push(format!(
                "{name}: came back without its data (no data directory{}; the cluster has its node N{} dead): a replacement in place: N{} is removed, then {name} joins as a new node under the same name with a new id; if its data lives elsewhere, set base-dir for it in the inventory's config and re-run instead",
                host.facts
                    .data_dir
                    .as_ref()
                    .map(|d| format!(" at {}", d.path.display()))
                    .unwrap_or_default(),
                node.id,
                node.id
            ));
        }
    }
    let mut new_hosts = hosts.iter().filter(|h| *h.class == Class::New);
    let joining_metadata = new_hosts
        .clone()
        .any(|h| fleet.cluster.metadata_servers.contains(&h.host.name));
    if new_hosts.next().is_some()
        && fleet.cluster.snapshots.is_none()
        && !members
            .iter()
            .any(|m| m.facts.config.values.snapshots_destination.is_some())
        && !members.is_empty()
    {
        problems.push(
            "no snapshot repository: new nodes can only join after every partition is snapshotted; add [cluster.snapshots] with an s3:// destination to the inventory".to_string(),
        );
    }
    // Members get the new metadata list by a rolling restart, which keeps a quorum only with
    // three or more metadata servers: two would stop the run half way, so refuse up front.
    if fleet.cluster.metadata_servers.len() == 2 && !members.is_empty() && joining_metadata {
        problems.push(format!(
            "the inventory names 2 metadata servers ({}): the existing node could then not restart without losing the metadata quorum; name 1 or 3 or more in [cluster] metadata-servers",
            fleet.cluster.metadata_servers.join(", ")
        ));
    }
}

/// Why a member may not get the inventory's `location`: it registered another one. Restate
/// applies a change with a warning and never clears one, but data already placed by zone or
/// region keeps the old placement, so replication by location could be broken without a word.
pub fn location_change(
    inventory: Option<&restate_fleet_inventory::Location>,
    registered: Option<&str>,
) -> Option<String> {
    let (asked, have) = (inventory?.to_string(), registered?);
    (asked != have).then(|| format!(
        "its location would change from {have:?} to {asked:?}, which Restate advises against once a node has data (what is already placed by zone stays where it is); set location = {have:?} for this host, or remove the node and add the host back as a new one"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_registered_location_stays() {
        let loc = |t: &str| restate_fleet_inventory::Location {
            region: t.split('.').next().unwrap_or_default().to_string(),
            zone: t.split('.').nth(1).map(str::to_string),
        };
        let cases = [
            (None, None, false),
            (Some(loc("eu.a")), None, false),
            (None, Some("eu.a"), false),
            (Some(loc("eu.a")), Some("eu.a"), false),
            (Some(loc("eu.b")), Some("eu.a"), true),
            (Some(loc("eu")), Some("eu.a"), true),
        ];
        for (inventory, registered, refused) in cases {
            assert_eq!(
                super::location_change(inventory.as_ref(), registered).is_some(),
                refused,
                "{inventory:?} {registered:?}"
            );
        }
    }
}

#[cfg(test)]
mod systemd_tests {
    use restate_fleet_inventory::Service;
    use restate_fleet_proto::agent::SystemdState;

    use super::{Finding, systemd_finding};

    #[test]
    fn systemd_on_the_host_against_the_inventory() {
        let systemd = Service::Systemd {
            unit: "restate.service".into(),
        };
        let command = Service::Command {
            start: vec!["s".into()],
            stop: vec!["s".into()],
            restart: vec!["s".into()],
            status: vec!["s".into()],
            log: None,
        };
        let state = |booted: bool, enabled: &str| SystemdState {
            booted,
            enabled: enabled.into(),
        };
        let problem = |f: Option<Finding>| matches!(f, Some(Finding::Problem(_)));
        let warning = |f: Option<Finding>| matches!(f, Some(Finding::Warning(_)));
        assert!(problem(systemd_finding(&systemd, Some(&state(false, "")))));
        assert!(problem(systemd_finding(
            &systemd,
            Some(&state(true, "masked"))
        )));
        assert!(warning(systemd_finding(
            &systemd,
            Some(&state(true, "disabled"))
        )));
        for fine in ["enabled", "not-found", "static", "enabled-runtime"] {
            assert_eq!(
                systemd_finding(&systemd, Some(&state(true, fine))),
                None,
                "{fine}"
            );
        }
        assert_eq!(systemd_finding(&command, Some(&state(false, ""))), None);
        assert_eq!(systemd_finding(&systemd, None), None);
        let Some(Finding::Problem(text)) = systemd_finding(&systemd, Some(&state(false, "")))
        else {
            unreachable!()
        };
        assert!(text.contains("manager = \"command\""), "{text}");
    }
}

#[cfg(test)]
mod decision_tests {
    use serde_json::json;

    use super::{Seen, preflight};
    use crate::rollout::decide::survey::{Class, classify};
    use crate::rollout::fixtures::{facts, fleet, view};

    #[test]
    fn hosts_are_members_new_or_conflicting_by_what_they_hold() {
        let fleet = fleet("", &["n1", "n2", "n3", "n4"]);
        let host = |name: &str| {
            fleet
                .hosts
                .iter()
                .find(|h| h.name == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name}"))
        };
        let data = |cluster: &str| json!({ "data_dir": { "path": "/var/lib/restate/restate-data", "exists": true, "cluster_name": cluster } });
        let broken = json!({ "config": { "path": "/etc/restate/restate.toml", "exists": true, "values": {},
            "parse_error": { "line": 3, "column": 1, "message": "expected `=`" } } });
        let renamed = json!({ "config": { "path": "/etc/restate/restate.toml", "exists": true,
            "values": { "node_name": "old-name" } },
            "data_dir": { "path": "/var/lib/restate/restate-data", "exists": true, "cluster_name": "c" } });
        let running = json!({ "health": { "address": "http://10.0.0.4:5122/", "status": "ALIVE",
            "cluster_name": "c", "roles": [], "raw": null } });
        // The grown view, its n1 advertised where the inventory's n1 is.
        let mut here = view("grown");
        here.nodes[0].address = "http://10.0.0.1:5122/".into();
        let mut dead = here.clone();
        dead.nodes[0].alive = false;
        let cases = [
            ("a fresh host", "n4", facts(json!({})), None, "new"),
            (
                "a file that does not parse",
                "n4",
                facts(broken),
                None,
                "conflicting",
            ),
            (
                "data of another cluster",
                "n4",
                facts(data("other")),
                None,
                "conflicting",
            ),
            (
                "data of ours, unknown to a view",
                "n4",
                facts(data("c")),
                None,
                "member",
            ),
            (
                "a node-name that would change",
                "n4",
                facts(renamed),
                None,
                "conflicting",
            ),
            (
                "running under our cluster name",
                "n4",
                facts(running),
                None,
                "member",
            ),
            (
                "in the view, at its address",
                "n1",
                facts(json!({})),
                Some(here.clone()),
                "member",
            ),
            (
                "dead in the view, without its data: comes back empty",
                "n1",
                facts(json!({})),
                Some(dead.clone()),
                "new",
            ),
            (
                "dead in the view, with its data: stopped",
                "n1",
                facts(data("c")),
                Some(dead),
                "member",
            ),
            (
                "its name taken by a live node elsewhere",
                "n2",
                facts(json!({})),
                Some(here),
                "conflicting",
            ),
        ];
        for (name, host_name, facts, view, want) in cases {
            let class = classify(&fleet, &host(host_name), &facts, view.as_ref());
            let got = match class {
                Class::Member => "member",
                Class::New => "new",
                Class::Conflicting(_) => "conflicting",
            };
            assert_eq!(got, want, "{name}: {class:?}");
        }
    }

    #[test]
    fn preflight_stops_what_the_guide_forbids_and_warns_of_the_rest() {
        let binary = |version: &str| {
            json!({ "restate_server": { "path": "/usr/local/bin/restate-server",
                "version_output": format!("restate-server {version}"), "version": version } })
        };
        let snapshots = json!({ "config": { "path": "/etc/restate/restate.toml", "exists": true,
            "values": { "snapshots_destination": "s3://b/p" } },
            "restate_server": { "path": "/usr/local/bin/restate-server",
                "version_output": "restate-server 1.7.12", "version": "1.7.12" } });
        let with = |mut a: serde_json::Value, b: serde_json::Value| {
            if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
                a.extend(b.clone());
            }
            a
        };
        let stopped_data = || {
            json!({ "data_dir": { "path": "/var/lib/restate/restate-data/n2", "exists": true,
                "cluster_name": "c", "cluster_fingerprint": null, "server_version": "1.7.12" } })
        };
        let answering = || {
            json!({ "health": { "address": "http://n2:5122/health", "status": "StartingUp",
                "node_id": null, "cluster_name": "c", "roles": [], "raw": {} } })
        };
        let dead_n2 = || {
            let mut v = view("grown");
            v.nodes[1].alive = false;
            v
        };
        // (case, [cluster] extra, hosts as (class, facts), view, problems, warnings)
        type Host = (Class, serde_json::Value);
        type Case = (
            &'static str,
            &'static str,
            Vec<Host>,
            Option<crate::admin::ClusterView>,
            usize,
            usize,
        );
        let member = |f: serde_json::Value| (Class::Member, f);
        let new = |f: serde_json::Value| (Class::New, f);
        let cases: Vec<Case> = vec![
            (
                "a grown cluster",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                ],
                Some(view("grown")),
                0,
                0,
            ),
            (
                "a conflicting host",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    (Class::Conflicting("its data".into()), binary("1.7.12")),
                ],
                Some(view("grown")),
                1,
                0,
            ),
            (
                "no restate-server",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    member(json!({})),
                ],
                Some(view("grown")),
                1,
                0,
            ),
            (
                "older than 1.4.0",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    member(binary("1.3.9")),
                ],
                Some(view("grown")),
                1,
                0,
            ),
            (
                "mixed versions",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    member(binary("1.6.2")),
                ],
                Some(view("grown")),
                0,
                1,
            ),
            (
                "members but no admin API answers",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                    member(binary("1.7.12")),
                ],
                None,
                1,
                0,
            ),
            (
                "a dead member without its data directory (a replaced disk): replaced in place",
                "",
                vec![
                    member(snapshots.clone()),
                    new(binary("1.7.12")),
                    member(snapshots.clone()),
                ],
                Some(dead_n2()),
                0,
                1,
            ),
            (
                "a stopped member with its data: apply starts it",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(with(binary("1.7.12"), stopped_data())),
                    member(binary("1.7.12")),
                ],
                Some(dead_n2()),
                0,
                1,
            ),
            (
                "a dead member whose server answers",
                "",
                vec![
                    member(binary("1.7.12")),
                    member(with(binary("1.7.12"), answering())),
                    member(binary("1.7.12")),
                ],
                Some(dead_n2()),
                1,
                0,
            ),
            (
                "new hosts and no snapshot repository",
                "",
                vec![
                    member(binary("1.7.12")),
                    new(binary("1.7.12")),
                    new(binary("1.7.12")),
                ],
                Some(view("single")),
                1,
                0,
            ),
            (
                "new hosts, the member's own repository",
                "",
                vec![
                    member(snapshots.clone()),
                    new(binary("1.7.12")),
                    new(binary("1.7.12")),
                ],
                Some(view("single")),
                0,
                0,
            ),
            (
                "two metadata servers, one joining",
                "metadata-servers = [\"n1\", \"n2\"]",
                vec![
                    member(snapshots.clone()),
                    new(binary("1.7.12")),
                    new(binary("1.7.12")),
                ],
                Some(view("single")),
                1,
                0,
            ),
        ];
        for (name, cluster, hosts, view, problems, warnings) in cases {
            let fleet = fleet(cluster, &["n1", "n2", "n3"]);
            let facts: Vec<_> = hosts.iter().map(|(_, f)| facts(f.clone())).collect();
            let seen: Vec<Seen> = hosts
                .iter()
                .zip(&fleet.hosts)
                .zip(&facts)
                .map(|(((class, _), host), facts)| Seen {
                    host,
                    facts,
                    class,
                    server: None,
                })
                .collect();
            let (p, w) = preflight(&fleet, &seen, view.as_ref());
            assert_eq!(
                (p.len(), w.len()),
                (problems, warnings),
                "{name}: {p:?} {w:?}"
            );
        }
    }
}

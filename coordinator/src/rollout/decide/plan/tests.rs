//! The plan's decisions over the fleet shapes that matter, table-driven: each row is a shape
//! (fresh hosts, a single old-style node, a 1.7 node, an upgrade, a converged cluster, a run cut
//! short half way, a node leaving, a draining worker, replication and nodeset changes) and the
//! steps it must give. Cluster views are the ones recorded on a lab for render/'s tests.

use restate_fleet_proto::agent::PatchPreview;

use super::{Gathered, HostState, Step, plan, rejections, replication_count};
use crate::admin::ClusterView;
use crate::rollout::decide::server::{Change, HostServer};
use crate::rollout::decide::survey::Class;
use crate::rollout::fixtures::{fleet, view};
use crate::rollout::observe::leaving::Holdings;
use crate::server_binary::LocalServer;

fn preview(keys: &[&str]) -> PatchPreview {
    PatchPreview {
        path: "/etc/restate/restate.toml".into(),
        changed: !keys.is_empty(),
        diff: String::new(),
        changed_keys: keys.iter().map(|k| k.to_string()).collect(),
        environment_changed: false,
        access: None,
        rejected: None,
    }
}

fn server(change: Change) -> Option<HostServer> {
    Some(HostServer {
        change,
        version: "1.7.12".into(),
        target: "/usr/local/bin/restate-server".into(),
        upload: true,
        staged: "/var/lib/restate-fleet/binaries/x".into(),
        local: LocalServer {
            size: 100 << 20,
            ..LocalServer::default()
        },
    })
}

fn member(name: &str, once: bool, fix: &[&str], full: &[&str]) -> HostState {
    HostState {
        name: name.into(),
        node_name: name.into(),
        class: Class::Member,
        server: None,
        once,
        full: preview(full),
        fix: Some(preview(fix)),
        stopped: false,
        repository: false,
    }
}

/// Members whose files need no change.
fn converged(names: &[&str]) -> Vec<HostState> {
    names.iter().map(|n| member(n, true, &[], &[])).collect()
}

fn new(name: &str) -> HostState {
    HostState {
        name: name.into(),
        node_name: name.into(),
        class: Class::New,
        server: None,
        once: true,
        full: preview(&[
            "cluster-name",
            "auto-provision",
            "metadata-client.addresses",
        ]),
        fix: None,
        stopped: false,
        repository: false,
    }
}

const FIX: &[&str] = &[
    "roles",
    "bifrost.default-provider",
    "worker.snapshots.destination",
];
const LIST: &str = "metadata-client.addresses";

fn leaving(name: &str, id: u32) -> (String, Holdings) {
    (
        name.into(),
        Holdings {
            id,
            alive: true,
            leads: 8,
            follows: 0,
            in_logs: 24,
            metadata_member: true,
            unreachable: None,
            comes_back: false,
        },
    )
}

fn tags(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| {
            let value = serde_json::to_value(s).unwrap_or_default();
            value["step"].as_str().unwrap_or("?").to_string()
        })
        .collect()
}

#[test]
fn every_fleet_shape_gets_the_guides_steps() {
    let local = || {
        let mut v = view("single");
        v.config.log_provider = "local".into();
        v.logs.tail_kinds = [("local".to_string(), 24)].into();
        v.logs.holding_local_segments = (0..24).collect();
        v
    };
    let draining = || {
        let mut v = view("grown");
        v.nodes[1].worker_state = Some("draining".into());
        v
    };
    let replicated_twice = || {
        let mut v = view("grown");
        v.config.partition_replication = Some("{node: 2}".into());
        v.config.log_replication = Some("{node: 2}".into());
        v
    };
    let with_list = [FIX, &[LIST]].concat();
    struct Case {
        name: &'static str,
        cluster: &'static str,
        inventory: &'static [&'static str],
        hosts: Vec<HostState>,
        view: Option<ClusterView>,
        leaving: Vec<(String, Holdings)>,
        replication: Option<u32>,
        steps: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "fresh hosts: provisioned together, with the inventory's replication",
            cluster: "replication = 2",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![new("n1"), new("n2"), new("n3")],
            view: None,
            leaving: vec![],
            replication: None,
            steps: &["provision"],
        },
        Case {
            name: "a single old-style 1.6 node grows: two restarts, loglet, snapshot, join",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![member("n1", false, FIX, &with_list), new("n2"), new("n3")],
            view: Some(local()),
            leaving: vec![],
            replication: None,
            steps: &[
                "fix_member",
                "replicated_loglet",
                "snapshot",
                "join_new",
                "roll_member",
            ],
        },
        Case {
            name: "a single 1.7 node grows: the metadata list in its one restart",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &with_list, &with_list),
                new("n2"),
                new("n3"),
            ],
            view: Some(local()),
            leaving: vec![],
            replication: Some(2),
            steps: &[
                "fix_member",
                "replicated_loglet",
                "snapshot",
                "join_new",
                "raise_replication",
            ],
        },
        Case {
            name: "a single 1.7 node on the replicated loglet without a repository grows gently: the new nodes join and follow, then it hands over and restarts, then the snapshot",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &with_list, &with_list),
                new("n2"),
                new("n3"),
            ],
            view: Some(view("single")),
            leaving: vec![],
            replication: Some(2),
            steps: &["join_new", "raise_replication", "fix_member", "snapshot"],
        },
        Case {
            name: "the same without replication asked: the new nodes join, then its restart, then the snapshot",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &with_list, &with_list),
                new("n2"),
                new("n3"),
            ],
            view: Some(view("single")),
            leaving: vec![],
            replication: None,
            steps: &["join_new", "fix_member", "snapshot"],
        },
        Case {
            name: "a gentle grow cut short in its join: the rest joins before the unfixed member restarts (two metadata servers have no quorum without one)",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &with_list, &with_list),
                HostState {
                    repository: true,
                    ..member("n2", true, &[], &[])
                },
                new("n3"),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["join_new", "fix_member", "snapshot"],
        },
        Case {
            name: "a single 1.7 node that has a repository already may have trimmed its logs: the guide's order, snapshot first",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                HostState {
                    repository: true,
                    ..member("n1", true, &with_list, &with_list)
                },
                new("n2"),
                new("n3"),
            ],
            view: Some(view("single")),
            leaving: vec![],
            replication: Some(2),
            steps: &["fix_member", "snapshot", "join_new", "raise_replication"],
        },
        Case {
            name: "three 1.7 members grow to five: the new nodes join, then the members get the list without a restart",
            cluster: "",
            inventory: &["n1", "n2", "n3", "n4", "n5"],
            hosts: vec![
                member("n1", true, &[LIST], &[LIST]),
                member("n2", true, &[LIST], &[LIST]),
                member("n3", true, &[LIST], &[LIST]),
                new("n4"),
                new("n5"),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &[
                "snapshot",
                "join_new",
                "set_metadata_list",
                "set_metadata_list",
                "set_metadata_list",
            ],
        },
        Case {
            name: "three 1.6 members grow to five: the members roll for the list after the join",
            cluster: "",
            inventory: &["n1", "n2", "n3", "n4", "n5"],
            hosts: vec![
                member("n1", false, &[], &[LIST]),
                member("n2", false, &[], &[LIST]),
                member("n3", false, &[], &[LIST]),
                new("n4"),
                new("n5"),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &[
                "snapshot",
                "join_new",
                "roll_member",
                "roll_member",
                "roll_member",
            ],
        },
        Case {
            name: "a member whose credentials change with the list restarts for them",
            cluster: "",
            inventory: &["n1", "n2", "n3", "n4"],
            hosts: vec![
                HostState {
                    full: PatchPreview {
                        environment_changed: true,
                        ..preview(&[LIST])
                    },
                    fix: Some(PatchPreview {
                        environment_changed: true,
                        ..preview(&[LIST])
                    }),
                    ..member("n1", true, &[], &[])
                },
                member("n2", true, &[LIST], &[LIST]),
                member("n3", true, &[], &[]),
                new("n4"),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["fix_member", "snapshot", "join_new", "set_metadata_list"],
        },
        Case {
            name: "a rolling change of a key that needs a restart restarts each member",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &["log-filter"], &["log-filter"]),
                member("n2", true, &["log-filter", LIST], &["log-filter", LIST]),
                member("n3", true, &[], &[]),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["fix_member", "fix_member"],
        },
        Case {
            name: "a key Restate applies live is written and held against the config table, no restart; with a restart key beside it, a restart",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member(
                    "n1",
                    true,
                    &["rocksdb-total-memory-size"],
                    &["rocksdb-total-memory-size"],
                ),
                member(
                    "n2",
                    true,
                    &["rocksdb-total-memory-size", LIST],
                    &["rocksdb-total-memory-size", LIST],
                ),
                member("n3", true, &[], &[]),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["reload_member", "fix_member"],
        },
        Case {
            name: "an upgrade and an install come first",
            cluster: "",
            inventory: &["n1", "n2"],
            hosts: vec![
                HostState {
                    server: server(Change::Upgrade {
                        from: "1.6.2".into(),
                    }),
                    ..member("n1", true, &with_list, &with_list)
                },
                HostState {
                    server: server(Change::Install { from: None }),
                    ..new("n2")
                },
            ],
            view: Some(view("single")),
            leaving: vec![],
            replication: None,
            steps: &[
                "stage_server",
                "upgrade_member",
                "install_server",
                "fix_member",
                "snapshot",
                "join_new",
            ],
        },
        Case {
            name: "a converged cluster: nothing to do",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: converged(&["n1", "n2", "n3"]),
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &[],
        },
        Case {
            name: "a run cut short after the fix: only the join is left",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: vec![
                member("n1", true, &[], &[]),
                member("n2", true, &[], &[]),
                new("n3"),
            ],
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["snapshot", "join_new"],
        },
        Case {
            name: "a node the inventory dropped leaves after the others get the shorter list",
            cluster: "",
            inventory: &["n1", "n2"],
            hosts: vec![
                member("n1", true, &[LIST], &[LIST]),
                member("n2", true, &[LIST], &[LIST]),
            ],
            view: Some(view("grown")),
            leaving: vec![leaving("n3", 3)],
            replication: None,
            steps: &["set_metadata_list", "set_metadata_list", "remove_node"],
        },
        Case {
            name: "replication lowered before the node leaves",
            cluster: "replication = 1",
            inventory: &["n1", "n2"],
            hosts: converged(&["n1", "n2"]),
            view: Some(replicated_twice()),
            leaving: vec![leaving("n3", 3)],
            replication: None,
            steps: &["lower_replication", "remove_node"],
        },
        Case {
            name: "a member that came back without its data: its old node leaves before it joins again, another leaving node after",
            cluster: "",
            inventory: &["n1", "n2"],
            hosts: vec![member("n1", true, &[], &[]), new("n2")],
            view: Some(view("grown")),
            leaving: vec![
                leaving("n3", 3),
                (
                    "n2".into(),
                    Holdings {
                        alive: false,
                        comes_back: true,
                        ..leaving("n2", 2).1
                    },
                ),
            ],
            replication: None,
            steps: &["remove_node", "snapshot", "join_new", "remove_node"],
        },
        Case {
            name: "a stopped member starts first, then rolls like the others",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: {
                let mut hosts = vec![
                    member("n1", true, &[], &["log-filter"]),
                    member("n2", true, &[], &["log-filter"]),
                ];
                let mut n3 = member("n3", true, &[], &["log-filter"]);
                n3.stopped = true;
                hosts.push(n3);
                hosts
            },
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["start_member", "roll_member", "roll_member", "roll_member"],
        },
        Case {
            name: "a worker left draining is activated first",
            cluster: "",
            inventory: &["n1", "n2", "n3"],
            hosts: converged(&["n1", "n2", "n3"]),
            view: Some(draining()),
            leaving: vec![],
            replication: None,
            steps: &["activate_worker"],
        },
        Case {
            name: "a host the metadata-servers list drops leaves the metadata cluster, staying a node",
            cluster: "metadata-servers = [\"n1\", \"n2\"]",
            inventory: &["n1", "n2", "n3"],
            hosts: converged(&["n1", "n2", "n3"]),
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["remove_metadata_member"],
        },
        Case {
            name: "the inventory's nodeset size",
            cluster: "nodeset-size = 3",
            inventory: &["n1", "n2", "n3"],
            hosts: converged(&["n1", "n2", "n3"]),
            view: Some(view("grown")),
            leaving: vec![],
            replication: None,
            steps: &["nodeset_size"],
        },
    ];
    for case in cases {
        let fleet = fleet(case.cluster, case.inventory);
        let gathered = Gathered {
            hosts: case.hosts,
            view: case.view,
            leaving: case.leaving,
            tls: None,
        };
        let plan = plan(&fleet, &gathered, case.replication);
        assert_eq!(tags(&plan.steps), case.steps, "{}", case.name);
    }
}

/// The TLS rollout comes after everything else, one mode on every host before the next; the
/// certificates come before anything restarts; a re-run at the target plans nothing.
#[test]
fn fabric_tls_moves_every_host_one_mode_at_a_time_after_the_rest() {
    use crate::rollout::decide::tls::{Decided, Rollout};
    use restate_fleet_inventory::TlsMode::{Allow, Prefer, Require};
    let fleet = fleet("", &["n1", "n2", "n3"]);
    let all: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let tls =
        |phases: Vec<(restate_fleet_inventory::TlsMode, Vec<String>)>, push: Vec<String>| Decided {
            rollout: Rollout {
                join_at: None,
                phases,
                target: Require,
            },
            issue: push
                .iter()
                .map(|h| (h.clone(), "none issued yet".to_string()))
                .collect(),
            push,
            ca_dir: "/ca".into(),
            makes_ca: true,
            files_in_place: false,
        };
    let gathered = |decided| Gathered {
        hosts: converged(&["n1", "n2", "n3"]),
        view: Some(view("grown")),
        leaving: vec![],
        tls: Some(decided),
    };
    let from_off = plan(
        &fleet,
        &gathered(tls(
            vec![
                (Allow, all.clone()),
                (Prefer, all.clone()),
                (Require, all.clone()),
            ],
            all.clone(),
        )),
        None,
    );
    let mut want = vec!["tls_files".to_string()];
    want.extend(std::iter::repeat_n("tls_mode".to_string(), 9));
    want.push("tls_refusals".into());
    assert_eq!(tags(&from_off.steps), want);
    let modes: Vec<String> = from_off.steps.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(modes.join("\n"));
    assert!(
        modes[0].contains("make the CA in /ca; issue certificates for n1, n2, n3"),
        "{}",
        modes[0]
    );
    assert!(modes[0].contains("<redacted>"), "{}", modes[0]);
    assert!(
        modes[1].starts_with("n1: fabric TLS allow, restart"),
        "{}",
        modes[1]
    );
    assert!(
        modes[4].starts_with("n1: fabric TLS prefer (advertises https://)"),
        "{}",
        modes[4]
    );
    assert!(
        modes[9].starts_with("n3: fabric TLS require"),
        "{}",
        modes[9]
    );
    let done = plan(&fleet, &gathered(tls(vec![], vec![])), None);
    assert!(done.steps.is_empty(), "{:?}", tags(&done.steps));

    // New nodes start at the members' mode with their files, and the plan says so; a cluster
    // made from nothing starts at the inventory's.
    let at_require = Decided {
        rollout: Rollout {
            join_at: Some(Require),
            phases: vec![],
            target: Require,
        },
        ..tls(vec![], vec![])
    };
    let mut hosts = converged(&["n1", "n2"]);
    hosts.push(new("n3"));
    let joins = plan(
        &fleet,
        &Gathered {
            hosts,
            tls: Some(at_require.clone()),
            ..gathered(at_require.clone())
        },
        None,
    );
    let made = plan(
        &fleet,
        &Gathered {
            hosts: ["n1", "n2", "n3"].map(new).to_vec(),
            view: None,
            ..gathered(at_require)
        },
        None,
    );
    let lines: Vec<String> = [joins, made]
        .iter()
        .flat_map(|p| p.steps.iter().map(ToString::to_string))
        .filter(|l| l.contains("write restate.toml"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    insta::assert_snapshot!("new_nodes_start_with_fabric_tls", lines.join("\n"));
    for line in &lines {
        assert!(
            line.contains("with fabric TLS require (certificate, key 0600 <redacted>"),
            "{line}"
        );
    }
}

#[test]
fn keys_under_one_table_read_as_the_table() {
    let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let cases: [(&[&str], &str); 4] = [
        (&[], "the environment file"),
        (
            &["roles", "metadata-client.addresses"],
            "roles, metadata-client.addresses",
        ),
        (
            &[
                "roles",
                "worker.snapshots.destination",
                "worker.snapshots.aws-region",
                "auto-provision",
                "worker.snapshots.aws-allow-http",
            ],
            "roles, worker.snapshots.* (3 keys), auto-provision",
        ),
        (&["a.x", "a.y"], "a.x, a.y"),
    ];
    for (given, want) in cases {
        assert_eq!(super::keys_text(&keys(given)), want, "{given:?}");
    }
}

#[test]
fn step_lines_name_the_keys_that_change() {
    let fleet = fleet("", &["n1", "n2", "n3"]);
    let gathered = Gathered {
        hosts: vec![
            member("n1", false, FIX, &[FIX, &[LIST]].concat()),
            new("n2"),
            new("n3"),
        ],
        view: Some(view("single")),
        leaving: vec![],
        tls: None,
    };
    let lines: Vec<String> = plan(&fleet, &gathered, None)
        .steps
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn one_restart_where_the_server_takes_addresses_of_nodes_to_come() {
    for (version, once) in [
        (Some("1.7.12"), true),
        (Some("1.7.0"), true),
        (Some("1.8.1"), true),
        (Some("2.0.0"), true),
        (Some("1.6.2"), false),
        (Some("1.4.0"), false),
        (Some("garbage"), false),
        (None, false),
    ] {
        assert_eq!(super::one_restart(version), once, "{version:?}");
    }
}

#[test]
fn replication_reads_both_forms() {
    assert_eq!(replication_count("{node: 2}"), Some(2));
    assert_eq!(replication_count("3"), Some(3));
    assert_eq!(replication_count("{zone: x}"), None);
    assert_eq!(replication_count("{node: 3, zone: 2}"), Some(3));
    assert_eq!(replication_count("{zone: 2}"), Some(2));
}

#[test]
fn replication_in_place_or_not() {
    use restate_fleet_inventory::parse_replication;
    let wanted = |t: &str| parse_replication(t).expect("valid");
    let cases = [
        ([Some("{node: 2}"), Some("{node: 2}")], "2", true),
        ([None, None], "1", true),
        ([Some("{node: 2}"), Some("{node: 3}")], "2", false),
        (
            [Some("{node: 3, zone: 2}"), Some("{node: 3, zone: 2}")],
            "{zone: 2, node: 3}",
            true,
        ),
        (
            [Some("{node: 3}"), Some("{node: 3}")],
            "{zone: 2, node: 3}",
            false,
        ),
    ];
    for (current, asked, want) in cases {
        assert_eq!(
            super::replication_is(current, &wanted(asked)),
            want,
            "{current:?} {asked}"
        );
    }
}

#[test]
fn a_file_the_server_refuses_stops_the_run_once_per_host_and_only_within_the_limit() {
    let refused = |why: &str| PatchPreview {
        rejected: Some(why.to_string()),
        ..preview(&["worker.internal-queue-length"])
    };
    let mut n1 = member("n1", true, &[], &[]);
    n1.full = refused("plenty is no number");
    n1.fix = Some(refused("plenty is no number"));
    let mut n2 = new("n2");
    n2.full = refused("lots is no size");
    let gathered = Gathered {
        hosts: vec![n1, n2, member("n3", true, &[], &[])],
        view: Some(view("grown")),
        leaving: vec![],
        tls: None,
    };
    let all = rejections(&gathered, None);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("n1: ") && all[0].contains("plenty is no number"));
    assert!(all[1].starts_with("n2: ") && all[1].contains("nothing was changed"));
    let limited = rejections(&gathered, Some(&["n3".to_string()]));
    assert!(limited.is_empty(), "{limited:?}");
}

#[test]
fn a_rolling_restart_takes_every_member_in_turn_and_refuses_a_cluster_with_a_dead_node() {
    let members = || {
        ["n1", "n2"].into_iter().map(|host| super::Restartable {
            host,
            unit: Some(("restate.service", "enabled")),
        })
    };
    let plan =
        super::restarts(members(), Some(&view("grown")), false).unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "n1: restart restate-server (rolling restart), wait until healthy",
            "n2: restart restate-server (rolling restart), wait until healthy",
        ],
        "members only, their files left as they are"
    );
    assert!(plan.files.is_empty());
    let mut dead = view("grown");
    dead.nodes[2].alive = false;
    let refused = super::restarts(members(), Some(&dead), false)
        .err()
        .unwrap_or_default();
    assert!(
        refused.contains("not healthy") && refused.contains("n3 (N"),
        "{refused}"
    );
    assert!(super::restarts(members(), None, false).is_err());
}

#[test]
fn a_rolling_reboot_needs_every_member_to_start_by_itself_at_boot() {
    let grown = view("grown");
    let member = |host, unit| super::Restartable { host, unit };
    /// A case, its members, and the parts of its refusal (`None`: planned).
    type Case<'a> = (&'a str, Vec<super::Restartable<'a>>, Option<&'a [&'a str]>);
    let cases: Vec<Case> = vec![
        (
            "enabled units",
            vec![
                member("n1", Some(("restate.service", "enabled"))),
                member("n2", Some(("restate.service", "enabled"))),
            ],
            None,
        ),
        (
            "a disabled unit",
            vec![
                member("n1", Some(("restate.service", "enabled"))),
                member("n2", Some(("restate.service", "disabled"))),
            ],
            Some(&[
                "n2: restate.service is disabled, so it would not start at boot",
                "nothing was changed",
            ]),
        ),
        (
            "the inventory's own commands",
            vec![member("n1", None)],
            Some(&["n1: restate-server runs under the inventory's own commands"]),
        ),
    ];
    for (case, members, refusal) in cases {
        let planned = super::restarts(members.into_iter(), Some(&grown), true);
        match (planned, refusal) {
            (Ok(plan), None) => {
                assert!(
                    plan.steps
                        .iter()
                        .all(|s| s.to_string().contains("reboot the host")),
                    "{case}"
                );
                let json = serde_json::to_value(&plan.steps[0]).expect("JSON");
                assert_eq!(json["reboot"], true, "{case}: {json}");
            }
            (Err(why), Some(parts)) => {
                assert!(parts.iter().all(|p| why.contains(p)), "{case}: {why}")
            }
            (planned, _) => panic!("{case}: {:?}", planned.map(|p| p.steps.len())),
        }
    }
    // A plain restart's step is written as before: no `reboot` field.
    let plan =
        super::restarts([member("n1", None)].into_iter(), Some(&grown), false).expect("planned");
    let json = serde_json::to_value(&plan.steps[0]).expect("JSON");
    assert!(json.get("reboot").is_none(), "{json}");
}

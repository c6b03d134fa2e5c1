//! Every human output, rendered from JSON documents recorded on a lab by
//! `scripts/record-render-fixtures` (real surveys, plans, recaps and cluster views), snapshotted
//! with insta. Reading each document back and writing it again must give the recorded JSON: the
//! `--output json` contract loses no field.

use std::path::Path;

use restate_fleet_inventory::Fleet;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StatusReport;
use crate::rollout::recap::Recap;
use crate::rollout::{Mode, Report};

fn fixture<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/render")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let document: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_value(&document).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        again, value,
        "{name}: the JSON document changed on a round trip"
    );
    document
}

#[test]
fn check_plan_and_apply() {
    let cases = [
        ("check-grow", Mode::Check),
        ("plan-grow", Mode::Plan),
        ("check-refused", Mode::Check),
        ("apply-refused", Mode::Apply),
        ("apply-grow", Mode::Apply),
        ("apply-converged", Mode::Apply),
        ("plan-remove", Mode::Plan),
        ("plan-rolling-no-restatectl", Mode::Plan),
        ("apply-rolling-no-restatectl", Mode::Apply),
        ("plan-remove-no-restatectl", Mode::Plan),
    ];
    for (name, mode) in cases {
        let report: Report = fixture(name);
        insta::assert_snapshot!(name, super::report(&report, mode));
    }
}

#[test]
fn status() {
    for name in ["status-grown", "status-not-in-inventory"] {
        let report: StatusReport = fixture(name);
        insta::assert_snapshot!(name, super::status(&report));
    }
}

#[test]
fn status_names_a_dead_node_and_how_to_repair_it() {
    let mut report: StatusReport = fixture("status-grown");
    let view = report.cluster.as_mut().expect("a cluster");
    view.nodes[1].alive = false;
    view.nodes[1].uptime_s = None;
    insta::assert_snapshot!("status-dead-node", super::status(&report));
    let mut report: StatusReport = fixture("status-not-in-inventory");
    let gone = report
        .not_in_inventory
        .first()
        .cloned()
        .expect("a node not in the inventory");
    let view = report.cluster.as_mut().expect("a cluster");
    if let Some(node) = view.nodes.iter_mut().find(|n| n.name == gone) {
        node.alive = false;
        node.uptime_s = None;
    }
    insta::assert_snapshot!("status-dead-not-in-inventory", super::status(&report));
}

#[test]
fn a_stopped_run_that_changed_nothing_does_not_claim_the_fleet_matches() {
    let recap = Recap::new(["n1", "n2"].into_iter());
    insta::assert_snapshot!("recap-converged", super::recap(&recap, false));
    insta::assert_snapshot!("recap-stopped", super::recap(&recap, true));
}

/// The documentation's complete example (docs/inventory.md), with a command-managed host and
/// values written out instead of read from the environment.
const INVENTORY: &str = r#"
[cluster]
name = "my-cluster"
replication = 2
metadata-servers = ["n1", "n2", "n3"]
restate-server = { version = "1.7.12", path = { x86_64 = "/srv/restate/restate-server-x86_64", aarch64 = "/srv/restate/restate-server-aarch64" }, install-path = "/usr/local/bin/restate-server" }

[cluster.snapshots]
destination = "s3://snapshots/my-cluster"
aws-region = "us-east-1"
aws-endpoint-url = "http://10.0.0.9:9000"
aws-allow-http = true

[defaults]
user = "deploy"
port = 2222
become = true
config-path = "/etc/restate/restate.toml"
service = { manager = "systemd", unit = "restate.service", user = "restate" }
roles = ["worker", "admin", "metadata-server", "log-server", "http-ingress"]

[defaults.config]
rocksdb-total-memory-size = "512 MiB"

[groups.workers]
hosts = ["n4", "n5"]
roles = ["worker", "log-server", "http-ingress"]

[hosts.n1]
address = "10.0.0.1"
[hosts.n2]
address = "10.0.0.2"
advertised-address = "http://n2.internal:5122/"
[hosts.n3]
address = "10.0.0.3"
[hosts.n4]
address = "10.0.0.4"
[hosts.n5]
address = "10.0.0.5"
node-name = "worker-5"
service = { manager = "command", start = "/opt/restate/start", stop = "/opt/restate/stop", restart = "/opt/restate/restart", status = "/opt/restate/status" }
"#;

#[test]
fn inventory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, INVENTORY).unwrap_or_else(|e| panic!("{e}"));
    let loaded = restate_fleet_inventory::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    let fleet: &Fleet = &loaded.fleet;
    let hosts: Vec<_> = fleet.hosts.iter().collect();
    insta::assert_snapshot!("inventory", super::inventory(fleet, &hosts));
}

#[test]
fn table_widths_count_characters_not_bytes() {
    let rows = [
        vec!["HOST".to_string(), "ROLE".to_string()],
        vec!["nœud-1".to_string(), "worker".to_string()],
    ];
    assert_eq!(super::table(&rows), "HOST    ROLE\nnœud-1  worker\n");
}

/// The journals `scripts/record-render-fixtures` kept of its runs: the list, a run that grew
/// the cluster, one SIGKILLed in its first step, one refused.
#[test]
fn history_and_history_show() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render/history");
    let (runs, problems) = restate_fleet_journal::list(&dir);
    assert!(problems.is_empty(), "{problems:?}");
    insta::assert_snapshot!("history", super::history(&runs, &dir));
    let pick = |state: restate_fleet_journal::RunState, changed: bool| {
        runs.iter()
            .find(|r| r.state == state && r.hosts_changed().is_empty() != changed)
            .unwrap_or_else(|| panic!("a {state} run among the fixtures"))
    };
    use restate_fleet_journal::RunState;
    for (name, run) in [
        ("history-show-grow", pick(RunState::Done, true)),
        ("history-show-killed", pick(RunState::Stopped, false)),
        ("history-show-refused", pick(RunState::Refused, false)),
    ] {
        insta::assert_snapshot!(name, super::run(run));
    }
    assert_eq!(
        super::history(
            &[],
            Path::new("/home/operator/.local/state/restate-fleet/runs")
        ),
        "no runs on record in /home/operator/.local/state/restate-fleet/runs\n"
    );
}

#[test]
fn logs() {
    let report: crate::logs::LogsReport = fixture("logs-grown");
    insta::assert_snapshot!("logs-grown", super::logs(&report.lines));
}

#[test]
fn collect() {
    let report: crate::bundle::CollectReport = fixture("collect-grown");
    insta::assert_snapshot!("collect-grown", super::collect(&report));
    let missing = crate::bundle::CollectReport {
        problems: vec![
            "n3: unreachable: connection refused".into(),
            "cluster: no admin API answered: n1: unavailable".into(),
        ],
        ..report
    };
    insta::assert_snapshot!("collect-partial", super::collect(&missing));
    insta::assert_snapshot!(
        "collect-readme",
        super::bundle_readme(&["n1".into(), "n2".into()], &missing.problems)
    );
}

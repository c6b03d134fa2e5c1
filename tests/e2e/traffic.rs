//! Live traffic through rollouts: the workload (a Restate service with a counter, durable timers
//! and a workflow, and a driver with idempotency keys) runs while restate-fleet grows the cluster,
//! changes every member's config and rolls one back. Nothing may be lost or doubled, every timer
//! must fire and every workflow finish. The clients' view (longest stretch without a successful
//! call, latencies) is printed for the record; targets for it live in the benchmark, not here.

use std::collections::BTreeMap;
use std::time::Duration;

use lab::workload::{Driver, Load, Report};
use lab::{Kind, Lab, Spec};

const WAIT: Duration = Duration::from_secs(60);

use crate::faults::{assert_cluster_of, config_of, inventory_with_restart, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, fleet_with, restatectl_until};

/// Runs `during` while the workload drives traffic, then checks the driver's verdict.
pub(crate) fn under_traffic(lab: &Lab, what: &str, during: impl FnOnce()) -> Report {
    let driver = Driver::start(lab, &Load::default()).expect("workload driver starts");
    // Traffic flows before the rollout begins, and after it ends.
    std::thread::sleep(Duration::from_secs(2));
    during();
    std::thread::sleep(Duration::from_secs(2));
    let report = driver.finish().expect("the driver reports");
    eprintln!("{what}: {report:?}");
    assert!(
        report.calls >= 40,
        "{what}: too little traffic to judge: {report:?}"
    );
    assert_eq!(report.lost, 0, "{what}: calls lost: {report:?}");
    assert_eq!(report.doubled, 0, "{what}: calls doubled: {report:?}");
    assert_eq!(
        report.timers.done, report.timers.total,
        "{what}: timers: {report:?}"
    );
    assert_eq!(
        report.workflows.done, report.workflows.total,
        "{what}: workflows: {report:?}"
    );
    assert!(report.verified, "{what}: {:?}", report.problems);
    report
}

#[test]
fn growing_one_node_to_three_under_traffic_loses_nothing() {
    let mut lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    lab.start_workload("n1")
        .expect("workload service registered");
    under_traffic(&lab, "grow 1 -> 3", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "apply under traffic");
    });
    assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
}

#[test]
fn a_rolling_change_and_a_rollback_on_a_replicated_cluster_lose_nothing() {
    // restatectl only on the coordinator's PATH, as Restate's guide has operators run it.
    let mut lab = harness::lab(
        Spec::new(3)
            .with(1, Kind::Existing)
            .restatectl_on_laptop_only(),
    );
    let grown = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
    assert_exit(&grown, 0, "grow with replication 2");
    lab.start_workload("n1")
        .expect("workload service registered");

    // Every member's restate.toml changes: three restarts, one at a time. Without restatectl,
    // `plan` says that the leaders would stay put and what that costs clients.
    set_inventory(
        &lab,
        &inventory_with_restart(&lab, "warn,restate=info,lab=warn"),
    );
    let plan = harness::fleet_without_restatectl(&lab, &["plan", "--replication", "2"]);
    assert_exit(&plan, 0, "plan of a rolling change with no restatectl");
    let text = printed(&plan);
    assert!(
        text.contains("restarts without moving partition leaders")
            && text.contains("clients may wait about 5 s per member"),
        "{text}"
    );
    under_traffic(&lab, "rolling config change", || {
        let out = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
        assert_exit(&out, 0, "rolling change under traffic");
        // Members handed their partition leaders and the sequencers of their logs over before
        // their restarts (after the growth, n1 holds them all), through the real restatectl: a
        // sequencer left on a member stalls every partition writing to it as the member stops.
        let text = printed(&out);
        assert!(
            text.contains(": moving its partition leaders away")
                && text.contains(": moving the sequencers of"),
            "{text}"
        );
        assert!(!text.contains("did not move"), "{text}");
    });
    under_traffic(&lab, "rollback of n2", || {
        let out = fleet(&lab, &["--limit", "n2", "rollback", "--yes"]);
        assert_exit(&out, 0, "rollback under traffic");
    });
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);

    // A rolling restart of every member as it is: each restarts once behind the same handover
    // (same node id, a new generation), no file changes, nothing lost.
    let three = ["n1", "n2", "n3"];
    let before = generations(&lab, "n1", &three);
    let files: Vec<_> = three.iter().map(|h| config_of(&lab, h)).collect();
    under_traffic(&lab, "rolling restart", || {
        let out = fleet(&lab, &["restart", "--yes"]);
        assert_exit(&out, 0, "restart under traffic");
        let text = printed(&out);
        assert_eq!(
            text.matches("restarted (rolling restart)").count(),
            3,
            "{text}"
        );
        assert!(
            text.contains(": moving its partition leaders away"),
            "{text}"
        );
    });
    let after = generations(&lab, "n1", &three);
    let id = |generation: &String| generation.split(':').next().map(str::to_string);
    for member in three {
        assert_eq!(
            id(&after[member]),
            id(&before[member]),
            "{member} keeps its id"
        );
        assert_ne!(after[member], before[member], "{member} restarted");
    }
    let unchanged: Vec<_> = three.iter().map(|h| config_of(&lab, h)).collect();
    assert_eq!(unchanged, files, "a restart changes no file");

    // A key a running server applies from its file: written on every member, seen in each
    // node's config table, and no member restarted. (First n2, rolled back above, gets the
    // inventory's file again: that is a restart.)
    let converged = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
    assert_exit(&converged, 0, "n2 back on the inventory's file");
    let live = std::fs::read_to_string(lab.inventory_path())
        .expect("inventory")
        .replace(
            "rocksdb-total-memory-size = \"512 MiB\"",
            "rocksdb-total-memory-size = \"384 MiB\"",
        );
    set_inventory(&lab, &live);
    let before = generations(&lab, "n1", &three);
    under_traffic(&lab, "live change", || {
        let out = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
        assert_exit(&out, 0, "live change under traffic");
        let text = printed(&out);
        assert_eq!(
            text.matches("restate.toml: set rocksdb-total-memory-size, applied live (no restart)")
                .count(),
            3,
            "{text}"
        );
    });
    assert_eq!(
        generations(&lab, "n1", &three),
        before,
        "no member restarted for a live change"
    );
    let table = lab
        .restatectl(
            "n1",
            &[
                "sql",
                "SELECT plain_node_id, value FROM config WHERE key = 'rocksdb-total-memory-size'",
                "--json",
            ],
        )
        .expect("restatectl sql");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&table.stdout).expect("restatectl's JSON");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["value"] == "384.0 MiB"),
        "every node runs with the new size: {rows:?}"
    );

    // Refused while a node is dead: restarting another would leave the cluster two short.
    lab.host("n3").stop_restate().expect("n3 stops");
    restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
    let pids: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|h| lab.host(h).restate_pid())
        .collect();
    let refused = fleet(&lab, &["restart", "--yes"]);
    assert_exit(&refused, 1, "restart with n3 dead");
    let text = printed(&refused);
    assert!(
        text.contains("the cluster is not healthy: n3 (N") && text.contains("nothing was changed"),
        "{text}"
    );
    let still: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|h| lab.host(h).restate_pid())
        .collect();
    assert_eq!(still, pids, "nothing restarted");
}

#[test]
fn upgrading_from_1_6_and_growing_to_three_under_traffic_loses_nothing() {
    let mut lab = harness::lab(Spec::new(3).with(1, Kind::Existing).old_server(1));
    lab.start_workload("n1")
        .expect("workload service registered");
    let current = lab::paths::restate_server().expect("restate-server 1.7.12");
    let inventory = crate::install::inventory_with_server(&lab, "upgrade.toml", &current, "1.7.12");
    under_traffic(&lab, "upgrade 1.6.2 -> 1.7.12 and grow 1 -> 3", || {
        let out = fleet_with(&lab, &inventory, &["apply", "--yes"]);
        assert_exit(&out, 0, "upgrade and grow under traffic");
    });
    assert_cluster_of(&lab, "n3", &["n1", "n2", "n3"]);
}

#[test]
fn growing_three_nodes_to_five_with_replication_two_under_traffic_loses_nothing() {
    let mut lab = harness::lab(Spec::new(5));
    let full = lab.inventory();
    let cut = full.find("\n[hosts.n4]").expect("n4 in the inventory");
    let three = lab.dir().join("three.toml");
    std::fs::write(&three, &full[..cut]).expect("write");
    assert_exit(
        &fleet_with(&lab, &three, &["apply", "--yes", "--replication", "2"]),
        0,
        "a 3-node cluster with replication 2",
    );
    lab.start_workload("n1")
        .expect("workload service registered");
    let members = ["n1", "n2", "n3"];
    let before = generations(&lab, "n1", &members);
    under_traffic(&lab, "grow 3 -> 5 with replication 2", || {
        let out = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
        assert_exit(&out, 0, "3 -> 5 under traffic");
        // The new nodes join before the members get the longer metadata list.
        let text = printed(&out);
        let joined = text.find("n4, n5: write restate.toml");
        let listed = text.find("n1: set metadata-client.addresses, no restart");
        assert!(
            joined.is_some() && listed.is_some() && joined < listed,
            "{text}"
        );
    });
    assert_cluster_of(&lab, "n4", &["n1", "n2", "n3", "n4", "n5"]);
    // The members kept running (restatectl's N<id>:<generation> is unchanged), and their files
    // name the new metadata servers for their next start.
    let after = generations(&lab, "n1", &members);
    let n5 = lab.host("n5").address.to_string();
    for member in members {
        let was = before
            .get(member)
            .expect("every member in restatectl status");
        assert_eq!(after.get(member), Some(was), "{member} restarted");
        let file =
            String::from_utf8(config_of(&lab, member).expect("restate.toml")).expect("utf-8");
        assert!(file.contains(&n5), "{member}'s list lacks n5:\n{file}");
    }
}

/// restatectl's `N<id>:<generation>` of `names`, by name: the first two columns of `restatectl
/// status`, read until every one of them has a row (a node that just joined may not list the
/// others yet).
pub(crate) fn generations(lab: &Lab, via: &str, names: &[&str]) -> BTreeMap<String, String> {
    let rows = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|line| {
                let mut cols = line.split_whitespace();
                let id = cols
                    .next()
                    .filter(|c| c.starts_with('N') && c.contains(':'))?;
                Some((cols.next()?.to_string(), id.to_string()))
            })
            .collect()
    };
    let status = restatectl_until(lab, via, &["status"], Duration::from_secs(60), |out| {
        let found = rows(out);
        names.iter().all(|n| found.contains_key(*n))
    });
    rows(&status)
}

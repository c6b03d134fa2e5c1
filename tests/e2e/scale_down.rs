//! Shrinking by editing the inventory: a host deleted from it is a node that leaves the cluster,
//! drained and removed the way Restate documents it, under live traffic, judged with restatectl.

use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{footprint, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, fleet_without_restatectl, restatectl_until};
use crate::traffic::under_traffic;

/// Only worker, log-server and ingress: no admin, no metadata server.
const WORKER_ONLY: &str = "roles = [\"worker\", \"log-server\", \"http-ingress\"]\n";

/// The lab's inventory (which names no restatectl: the coordinator finds it on its PATH) without
/// the `[hosts.*]` tables of `gone`, with replication 2 and the hosts in `worker_only`
/// worker-only.
fn inventory_without(lab: &Lab, gone: &[&str], worker_only: &[&str]) -> String {
    let mut text = lab
        .inventory()
        .replace("[cluster]\n", "[cluster]\nreplication = 2\n");
    assert!(
        !text.contains("restatectl = "),
        "the inventory names no restatectl"
    );
    for host in worker_only {
        let table = format!("[hosts.{host}]\naddress = \"{}\"\n", lab.host(host).address);
        text = text.replace(&table, &format!("{table}{WORKER_ONLY}"));
    }
    without_hosts(text, gone)
}

/// An inventory's text without the `[hosts.*]` tables of `gone`.
pub(crate) fn without_hosts(mut text: String, gone: &[&str]) -> String {
    for host in gone {
        let start = text
            .find(&format!("[hosts.{host}]"))
            .unwrap_or_else(|| panic!("{host} in the inventory"));
        let end = text[start + 1..]
            .find("\n[")
            .map_or(text.len(), |i| start + 1 + i + 1);
        text.replace_range(start..end, "");
    }
    text
}

/// restatectl shows `gone` nowhere: not a node, not running a partition, in no log's segments.
fn assert_gone(lab: &Lab, via: &str, gone: &str, id: &str) {
    restatectl_until(
        lab,
        via,
        &["nodes", "list"],
        Duration::from_secs(30),
        |out| !out.contains(&format!(" {gone} ")) && out.contains(" n1 "),
    );
    restatectl_until(
        lab,
        via,
        &["partitions", "list"],
        Duration::from_secs(30),
        |out| !out.contains(&format!("{id}:")) && out.contains("Leader"),
    );
    for log in 0..24 {
        let log = log.to_string();
        let described = restatectl_until(
            lab,
            via,
            &["logs", "describe", &log],
            Duration::from_secs(30),
            |out| out.contains("Log Id"),
        );
        assert!(
            !described.contains(&format!("{id},")) && !described.contains(&format!("{id}]")),
            "log {log} still names {id}:\n{described}"
        );
    }
    assert!(
        lab.host(gone).restate_pid().is_none(),
        "{gone}: restate-server stopped"
    );
    let data = lab
        .host(gone)
        .path("/var/lib/restate/restate-data")
        .expect("path");
    let entries: Vec<String> = std::fs::read_dir(&data)
        .expect("the data directory's parent stays")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !entries.iter().any(|e| e == gone)
            && entries
                .iter()
                .any(|e| e.starts_with(&format!("{gone}.removed-"))),
        "{gone}: its data directory kept, renamed: {entries:?}"
    );
}

/// The node id `plan` prints for `name` (`n5 (N5; ...`).
fn planned_id(text: &str, name: &str) -> String {
    let at = text.find(&format!("{name} (N")).expect("the node's id") + name.len() + 2;
    text[at..]
        .chars()
        .take_while(|c| *c != ';' && *c != ',')
        .collect()
}

/// The metadata cluster (asked through `via`) has exactly `count` members.
pub(crate) fn assert_metadata_members(lab: &Lab, via: &str, count: usize) {
    restatectl_until(
        lab,
        via,
        &["metadata-server", "list-servers"],
        Duration::from_secs(30),
        |out| out.lines().filter(|l| l.contains("Member")).count() == count,
    );
}

#[test]
fn five_to_three_two_metadata_members_then_a_worker_only_node_leave_under_traffic() {
    // restatectl only on the coordinator's PATH: none on any host, none in the inventory.
    let mut lab = harness::lab(
        Spec::new(5)
            .with(1, Kind::Existing)
            .restatectl_on_laptop_only(),
    );
    set_inventory(&lab, &inventory_without(&lab, &[], &[]));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 5");
    assert_metadata_members(&lab, "n1", 5);
    lab.start_workload("n1")
        .expect("workload service registered");

    // Refused before anything changes: n1 alone cannot hold the cluster's replication 2. (With
    // `replication = 2` in the inventory, the inventory check says so, exit 2.)
    set_inventory(
        &lab,
        &inventory_without(&lab, &["n2", "n3", "n4", "n5"], &[]).replace("replication = 2\n", ""),
    );
    let before = footprint(&lab);
    let refused = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, "removing four of five with replication 2");
    let text = printed(&refused);
    assert!(
        text.contains("replication 2 needs 2 nodes")
            && text.contains("keeps its replication")
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(footprint(&lab), before, "nothing changed");

    // With no restatectl anywhere, `plan` names the removals it cannot carry out and `apply`
    // refuses them before any change.
    set_inventory(&lab, &inventory_without(&lab, &["n4", "n5"], &[]));
    let plan = fleet_without_restatectl(&lab, &["plan"]);
    assert_exit(&plan, 1, "plan of removals with no restatectl anywhere");
    let text = printed(&plan);
    assert!(
        text.contains("restatectl: none found")
            && text.matches("needs restatectl, and none was found").count() == 2
            && text.contains("on this machine's PATH"),
        "{text}"
    );
    let before = footprint(&lab);
    let refused = fleet_without_restatectl(&lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, "removals with no restatectl anywhere");
    let text = printed(&refused);
    assert!(
        text.contains("needs restatectl") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(footprint(&lab), before, "no file or process changed");

    // Two metadata members leave in one run: the metadata cluster goes from 5 members to 3.
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan");
    assert!(
        printed(&plan)
            .contains("(on this machine's PATH), runs here against n1 through its SSH session"),
        "plan names the restatectl it uses:\n{}",
        printed(&plan)
    );
    let (n4, n5) = (
        planned_id(&printed(&plan), "n4"),
        planned_id(&printed(&plan), "n5"),
    );
    assert!(
        printed(&plan)
            .matches("metadata member): leaves the cluster")
            .count()
            == 2,
        "plan names both members that leave:\n{}",
        printed(&plan)
    );
    under_traffic(&lab, "n4 and n5 (metadata members) leave", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "5 -> 3");
    });
    assert_gone(&lab, "n1", "n4", &n4);
    assert_gone(&lab, "n1", "n5", &n5);
    assert_metadata_members(&lab, "n2", 3);

    // n5 comes back worker-only, a new node (its old data stays aside), then leaves: 4 -> 3.
    set_inventory(&lab, &inventory_without(&lab, &["n4"], &["n5"]));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "n5 back, 3 -> 4");
    crate::faults::assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);
    set_inventory(&lab, &inventory_without(&lab, &["n4", "n5"], &[]));
    let plan = fleet(&lab, &["plan"]);
    let again = planned_id(&printed(&plan), "n5");
    assert_ne!(again, n5, "n5 came back as a new node");
    under_traffic(&lab, "n5 (worker only) leaves", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "4 -> 3");
    });
    assert_gone(&lab, "n1", "n5", &again);
    crate::faults::assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
    crate::faults::assert_rerun_changes_nothing(&lab, "after shrinking to three");
}

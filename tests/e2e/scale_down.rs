//! Shrinking by editing the inventory: a host deleted from it is a node that leaves the cluster,
//! drained and removed the way Restate documents it, under live traffic, judged with restatectl.

use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{footprint, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, restatectl_until};
use crate::traffic::under_traffic;

/// Only worker, log-server and ingress: no admin, no metadata server.
const WORKER_ONLY: &str = "roles = [\"worker\", \"log-server\", \"http-ingress\"]\n";

/// The lab's inventory (which names restatectl for the removals) without the `[hosts.*]` tables
/// of `gone`, with replication 2 and n5 worker-only.
fn inventory_without(lab: &Lab, gone: &[&str]) -> String {
    let mut text = lab
        .inventory()
        .replace("[cluster]\n", "[cluster]\nreplication = 2\n");
    assert!(text.contains("restatectl = "), "the lab names restatectl");
    let n5 = format!("[hosts.n5]\naddress = \"{}\"\n", lab.host("n5").address);
    text = text.replace(&n5, &format!("{n5}{WORKER_ONLY}"));
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

#[test]
fn five_to_three_a_worker_only_node_then_a_metadata_member_leave_under_traffic() {
    let mut lab = harness::lab(Spec::new(5).with(1, Kind::Existing));
    set_inventory(&lab, &inventory_without(&lab, &[]));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 5");
    lab.start_workload("n1")
        .expect("workload service registered");

    // Refused before anything changes: n1 alone cannot hold the cluster's replication 2. (With
    // `replication = 2` in the inventory, the inventory check says so, exit 2.)
    set_inventory(
        &lab,
        &inventory_without(&lab, &["n2", "n3", "n4", "n5"]).replace("replication = 2\n", ""),
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

    // The worker-only n5 leaves.
    set_inventory(&lab, &inventory_without(&lab, &["n5"]));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan");
    assert!(
        printed(&plan).contains("n5 (N") && printed(&plan).contains("leaves the cluster"),
        "plan names the node that leaves:\n{}",
        printed(&plan)
    );
    let id = |text: &str, name: &str| -> String {
        let at = text.find(&format!("{name} (N")).expect("the node's id") + name.len() + 2;
        text[at..]
            .chars()
            .take_while(|c| *c != ';' && *c != ',')
            .collect()
    };
    let n5 = id(&printed(&plan), "n5");
    under_traffic(&lab, "n5 (worker only) leaves", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "5 -> 4");
    });
    assert_gone(&lab, "n1", "n5", &n5);

    // The metadata member n4 leaves: the metadata cluster goes from 4 members to 3.
    set_inventory(&lab, &inventory_without(&lab, &["n4", "n5"]));
    let plan = fleet(&lab, &["plan"]);
    let n4 = id(&printed(&plan), "n4");
    assert!(
        printed(&plan).contains("metadata member"),
        "{}",
        printed(&plan)
    );
    under_traffic(&lab, "n4 (metadata member) leaves", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "4 -> 3");
    });
    assert_gone(&lab, "n1", "n4", &n4);
    restatectl_until(
        &lab,
        "n2",
        &["metadata-server", "list-servers"],
        Duration::from_secs(30),
        |out| {
            out.lines().filter(|l| l.contains("Member")).count() == 3
                && !out.contains(&format!("{n4},"))
                && !out.contains(&format!("{n4}]"))
        },
    );
    crate::faults::assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
    crate::faults::assert_rerun_changes_nothing(&lab, "after shrinking to three");
}

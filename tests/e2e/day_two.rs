//! Day two, when something broke (docs/day-two.md): a member whose restate-server stopped is
//! started by `apply` (same node id, nobody else restarted), a metadata member whose host died
//! for good is replaced by a fresh host in one `apply --yes`, and a member whose disk was lost
//! is replaced in place in one run (the old node removed, the host joined again under its name
//! with a new id), refused when it held the only copy; under live traffic, judged with
//! restatectl.
//! restatectl only on the coordinator's PATH, as Restate's guide has operators run it.

use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, restatectl_until};
use crate::scale_down::{assert_metadata_members, without_hosts};
use crate::traffic::{generations, under_traffic};

const WAIT: Duration = Duration::from_secs(60);

/// The lab's inventory with replication 2, `metadata-servers` as given and only `hosts`.
fn inventory_of(lab: &Lab, hosts: &[&str], metadata: &[&str]) -> String {
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = lab.inventory().replace(
        "[cluster]\n",
        &format!(
            "[cluster]\nreplication = 2\nmetadata-servers = [{}]\n",
            quoted(metadata)
        ),
    );
    let gone: Vec<&str> = lab
        .hosts()
        .iter()
        .map(|h| h.name.as_str())
        .filter(|h| !hosts.contains(h))
        .collect();
    without_hosts(text, &gone)
}

/// The plain id (`N3`) of `generation` (`N3:2`).
fn plain(generation: &str) -> String {
    generation
        .split(':')
        .next()
        .unwrap_or(generation)
        .to_string()
}

#[test]
fn a_stopped_member_a_dead_host_and_a_lost_disk_under_traffic() {
    let mut lab = harness::lab(
        Spec::new(4)
            .with(1, Kind::Existing)
            .all_systemd()
            .restatectl_on_laptop_only(),
    );
    let three = ["n1", "n2", "n3"];
    set_inventory(&lab, &inventory_of(&lab, &three, &three));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 3");
    assert_metadata_members(&lab, "n1", 3);
    lab.start_workload("n1")
        .expect("workload service registered");

    // A member that stopped (a crash, a reboot with the unit not started): apply starts it with
    // its own unit, before anything else; it keeps its node id, and nobody else restarts.
    let before = generations(&lab, "n1", &three);
    lab.host("n2").stop_restate().expect("n2 stops");
    restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan with n2 stopped");
    assert!(
        printed(&plan).contains("n2: start restate-server (stopped"),
        "plan starts n2 first:\n{}",
        printed(&plan)
    );
    under_traffic(&lab, "a stopped member started", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "apply with n2 stopped");
        let text = printed(&out);
        assert!(
            text.contains("restate-server started (it was stopped)"),
            "{text}"
        );
    });
    let after = generations(&lab, "n1", &three);
    assert_eq!(plain(&after["n2"]), plain(&before["n2"]), "n2 keeps its id");
    assert_ne!(after["n2"], before["n2"], "n2 started again");
    for member in ["n1", "n3"] {
        assert_eq!(after[member], before[member], "{member} was not restarted");
    }
    crate::faults::assert_cluster_of(&lab, "n2", &three);

    // n3's host dies for good (its link cut: no sshd, no fabric). The operator takes it out of
    // the inventory and adds a fresh n4 in its place: one run joins n4 and removes n3.
    let gone = plain(&after["n3"]);
    lab.set_link("n3", false).expect("n3's link down");
    restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
    let replaced = ["n1", "n2", "n4"];
    set_inventory(&lab, &inventory_of(&lab, &replaced, &replaced));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan of the replacement");
    let text = printed(&plan);
    assert!(
        text.contains("n3 (") && text.contains("leaves the cluster") && text.contains("n4"),
        "{text}"
    );
    under_traffic(&lab, "a dead metadata member replaced", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "replace n3 by n4");
    });
    restatectl_until(&lab, "n1", &["nodes", "list"], WAIT, |out| {
        !out.contains(" n3 ") && out.contains(" n4 ")
    });
    assert_metadata_members(&lab, "n1", 3);
    let members = restatectl_until(
        &lab,
        "n1",
        &["metadata-server", "list-servers"],
        WAIT,
        |out| out.contains("Member"),
    );
    assert!(
        !members
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{gone} "))),
        "{gone} is no metadata server any more:\n{members}"
    );
    for log in 0..24 {
        let log = log.to_string();
        let described = restatectl_until(&lab, "n1", &["logs", "describe", &log], WAIT, |out| {
            out.contains("Log Id")
        });
        assert!(
            !described.contains(&format!("{gone},")) && !described.contains(&format!("{gone}]")),
            "log {log} still names {gone}:\n{described}"
        );
    }
    let config = restatectl_until(&lab, "n1", &["config", "get"], WAIT, |out| {
        out.contains("Partition replication")
    });
    assert!(
        config.contains("{node: 2}"),
        "replication 2 held:\n{config}"
    );
    crate::faults::assert_cluster_of(&lab, "n2", &replaced);
    crate::faults::assert_rerun_changes_nothing(&lab, "after the replacement");

    // n2's disk is lost (its server stopped, its data directory gone, its restate.toml kept).
    // Restate would take the old id again and stop on `data-loss`, so n2 is not started: one
    // run removes the old node and joins n2 again under its name with a new id.
    let wiped = plain(&generations(&lab, "n1", &replaced)["n2"]);
    wipe(&lab, "n2");
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan with n2's disk lost");
    let text = printed(&plan);
    assert!(
        text.contains("n2: came back without its data") && text.contains("a replacement in place"),
        "{text}"
    );
    let removal = text
        .find(&format!("n2 ({wiped}"))
        .expect("the old node's removal");
    let join = text.find("n2: write restate.toml").expect("n2's join");
    assert!(
        removal < join,
        "the old node leaves before n2 joins:\n{text}"
    );
    under_traffic(&lab, "a wiped member replaced in place", || {
        assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "n2 replaced in place");
    });
    let again = plain(&generations(&lab, "n1", &replaced)["n2"]);
    assert_ne!(again, wiped, "n2 came back with a new id");
    let nodes = restatectl_until(&lab, "n1", &["nodes", "list"], WAIT, |out| {
        out.contains(" n2 ")
    });
    assert!(
        !nodes
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{wiped} "))),
        "{wiped} is gone from the nodes:\n{nodes}"
    );
    assert_metadata_members(&lab, "n1", 3);
    crate::faults::assert_cluster_of(&lab, "n4", &replaced);
    let enabled = lab
        .host("n2")
        .command(&["systemctl", "is-enabled", lab::systemd::UNIT])
        .output()
        .expect("systemctl runs");
    assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "enabled");
    crate::faults::assert_rerun_changes_nothing(&lab, "after n2 came back");

    // With replication 1, a wiped node's log segments exist nowhere else: the replacement is
    // refused before any change, and n4 is not started on its empty disk.
    let mut once = inventory_of(&lab, &replaced, &replaced);
    once = once.replace("replication = 2", "replication = 1");
    set_inventory(&lab, &once);
    assert_exit(
        &fleet(&lab, &["apply", "--yes"]),
        0,
        "replication lowered to 1",
    );
    wipe(&lab, "n4");
    let before = crate::faults::footprint(&lab);
    let refused = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, "replacing a node that held the only copy");
    let text = printed(&refused);
    assert!(
        text.contains("n4 (N")
            && text.contains("exist nowhere else")
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(crate::faults::footprint(&lab), before, "nothing changed");
    assert!(lab.host("n4").restate_pid().is_none(), "n4 not started");
}

/// `host`'s disk is lost: its server stopped, its data directory gone, its restate.toml kept;
/// the cluster has it dead.
fn wipe(lab: &Lab, host: &str) {
    let node = lab.host(host);
    node.stop_restate().expect("the server stops");
    node.exec(&[
        "mv",
        &format!("/var/lib/restate/restate-data/{host}"),
        "/var/lib/restate/lost-disk",
    ])
    .expect("its data directory gone");
    restatectl_until(lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
}

//! Metadata members follow `[cluster] metadata-servers` by the list alone: hosts stay in the
//! inventory, only the list changes (and, once, a host's roles lose metadata-server with it),
//! under live traffic, judged with restatectl.

use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{config_of, footprint, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, restatectl_until};
use crate::traffic::under_traffic;

/// The lab's inventory (every host with all five roles) with replication 2 and `list` as the
/// metadata servers.
fn inventory_listing(lab: &Lab, list: &[&str]) -> String {
    let names: Vec<String> = list.iter().map(|n| format!("\"{n}\"")).collect();
    lab.inventory().replace(
        "[cluster]\n",
        &format!(
            "[cluster]\nreplication = 2\nmetadata-servers = [{}]\n",
            names.join(", ")
        ),
    )
}

/// `text` with `host` running no metadata server.
fn without_metadata_role(lab: &Lab, text: &str, host: &str) -> String {
    let table = format!("[hosts.{host}]\naddress = \"{}\"\n", lab.host(host).address);
    assert!(text.contains(&table), "{host} in the inventory");
    text.replace(
        &table,
        &format!("{table}roles = [\"worker\", \"admin\", \"log-server\", \"http-ingress\"]\n"),
    )
}

/// restatectl lists exactly `members` as metadata members and every other host as a standby.
fn assert_members(lab: &Lab, via: &str, members: &[&str], standbys: &[&str]) {
    let ids: Vec<String> = lab
        .hosts()
        .iter()
        .map(|h| h.name.clone())
        .filter(|n| members.contains(&n.as_str()) || standbys.contains(&n.as_str()))
        .collect();
    let out = restatectl_until(
        lab,
        via,
        &["metadata-server", "list-servers"],
        Duration::from_secs(60),
        |out| {
            out.lines().filter(|l| l.contains("Member")).count() == members.len()
                && out.lines().filter(|l| l.contains("Standby")).count() == standbys.len()
        },
    );
    assert_eq!(ids.len(), members.len() + standbys.len(), "{out}");
    let status = restatectl_until(lab, via, &["status"], Duration::from_secs(60), |out| {
        !out.contains("offline")
    });
    for line in status.lines() {
        let named = |n: &&str| line.contains(&format!(" {n} "));
        if members.iter().any(named) {
            assert!(line.contains("Member"), "a member:\n{status}");
        }
        if standbys.iter().any(named) {
            assert!(!line.contains("Member"), "not a member:\n{status}");
        }
    }
}

/// Whether `host`'s restate.toml holds its metadata server back (`[metadata-server]
/// auto-join = false`, the only auto-join the tool writes).
fn auto_join_false(lab: &Lab, host: &str) -> bool {
    let text = String::from_utf8(config_of(lab, host).expect("restate.toml")).expect("utf-8");
    text.lines()
        .any(|l| l.replace(' ', "").ends_with("auto-join=false"))
}

#[test]
fn metadata_members_three_to_five_to_three_by_the_list_alone_under_traffic() {
    // No restatectl on any host or in the inventory: the membership goes through Restate's
    // own RPCs, the restarts' handover through restatectl on the coordinator's PATH.
    let mut lab = harness::lab(
        Spec::new(5)
            .with(1, Kind::Existing)
            .restatectl_on_laptop_only(),
    );
    let three = ["n1", "n2", "n3"];
    let five = ["n1", "n2", "n3", "n4", "n5"];

    // Grown with three metadata servers: n4 and n5 keep the role but do not join by themselves.
    set_inventory(&lab, &inventory_listing(&lab, &three));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 5");
    assert_members(&lab, "n1", &three, &["n4", "n5"]);
    assert!(auto_join_false(&lab, "n4") && auto_join_false(&lab, "n5"));
    assert!(!auto_join_false(&lab, "n1"));
    lab.start_workload("n1")
        .expect("workload service registered");

    // 3 -> 5 by the list alone.
    set_inventory(&lab, &inventory_listing(&lab, &five));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan 3 -> 5");
    let said = printed(&plan);
    for host in ["n4", "n5"] {
        assert!(
            said.lines()
                .any(|l| l.contains(&format!("{host} (N")) && l.contains("joins the metadata")),
            "plan names {host} joining:\n{said}"
        );
    }
    under_traffic(&lab, "metadata members 3 -> 5", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "3 -> 5");
    });
    assert_members(&lab, "n2", &five, &[]);
    assert!(!auto_join_false(&lab, "n4") && !auto_join_false(&lab, "n5"));

    // 5 -> 3 by the list alone; n4 keeps the role (a standby), n5 also loses it (it leaves the
    // metadata cluster before its restart without the role).
    let shrunk = without_metadata_role(&lab, &inventory_listing(&lab, &three), "n5");
    set_inventory(&lab, &shrunk);
    let plan = fleet(&lab, &["check"]);
    assert_exit(&plan, 0, "check 5 -> 3");
    let said = printed(&plan);
    for host in ["n4", "n5"] {
        assert!(
            said.lines()
                .any(|l| l.contains(&format!("{host} (N")) && l.contains("leaves the metadata")),
            "check names {host} leaving:\n{said}"
        );
    }
    under_traffic(&lab, "metadata members 5 -> 3", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "5 -> 3");
    });
    assert_members(&lab, "n3", &three, &["n4"]);
    assert!(auto_join_false(&lab, "n4") && !auto_join_false(&lab, "n5"));
    crate::faults::assert_rerun_changes_nothing(&lab, "after 5 -> 3");

    // Refused before any change: two members could not restart one at a time.
    set_inventory(
        &lab,
        &without_metadata_role(&lab, &inventory_listing(&lab, &["n1", "n2"]), "n5"),
    );
    let before = footprint(&lab);
    let refused = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, "3 -> 2 members");
    let text = printed(&refused);
    assert!(
        text.contains("2 members") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(footprint(&lab), before, "nothing changed");
    assert_members(&lab, "n1", &three, &["n4"]);
}

//! Placement: each host's `location` becomes the node's location, and location-aware
//! replication (`{zone: 2, node: 2}`) is what the cluster runs with, judged with restatectl.

use std::time::Duration;

use lab::{Kind, Spec};

use crate::faults::{config_of, footprint, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet, restatectl_until};

#[test]
fn locations_and_zone_aware_replication_reach_the_cluster() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    let mut text = lab.inventory().replace(
        "[cluster]\n",
        "[cluster]\nreplication = \"{zone: 2, node: 2}\"\n",
    );
    for (host, location) in [("n1", "lab.a"), ("n2", "lab.b"), ("n3", "lab.a")] {
        let table = format!("[hosts.{host}]\naddress = \"{}\"\n", lab.host(host).address);
        assert!(text.contains(&table), "{host} in the inventory");
        text = text.replace(&table, &format!("{table}location = \"{location}\"\n"));
    }
    set_inventory(&lab, &text);
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 0, "grow 1 -> 3 over two zones");
    let file = String::from_utf8(config_of(&lab, "n2").expect("restate.toml")).expect("utf-8");
    assert!(file.contains("location = \"lab.b\""), "{file}");
    restatectl_until(
        &lab,
        "n1",
        &["config", "get"],
        Duration::from_secs(30),
        |out| out.matches("zone: 2").count() >= 2,
    );
    restatectl_until(
        &lab,
        "n1",
        &["nodes", "list", "--extra"],
        Duration::from_secs(30),
        |out| out.contains("lab.a") && out.contains("lab.b"),
    );
    crate::faults::assert_rerun_changes_nothing(&lab, "placed and replicated by zone");

    // A node keeps the location it registered: moving n2 to another zone is refused, nothing
    // changed (read back from the cluster's nodes configuration, not from the file).
    set_inventory(
        &lab,
        &text.replace("location = \"lab.b\"", "location = \"lab.c\""),
    );
    let before = footprint(&lab);
    let refused = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, "moving n2 to another zone");
    let said = printed(&refused);
    assert!(
        said.contains("n2: its location would change from \"lab.b\" to \"lab.c\""),
        "{said}"
    );
    assert_eq!(footprint(&lab), before, "nothing changed");
}

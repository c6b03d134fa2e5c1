//! `restate-fleet` alone: copied into an empty directory, with no agent beside it, it grows a
//! cluster; the agent it pushes is the one inside it.

use lab::{Kind, Spec};

use crate::bad_input::WORKER_ROLES;
use crate::faults::{printed, set_inventory};
use crate::harness::{self, assert_exit};

#[test]
fn a_copy_of_the_coordinator_alone_checks_and_grows_a_cluster() {
    let lab = harness::lab(Spec::new(2).with(1, Kind::Existing));
    // n2 without the metadata-server role: two metadata servers cannot lose one.
    let n2 = format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address);
    set_inventory(
        &lab,
        &lab.inventory().replace(&n2, &format!("{n2}{WORKER_ROLES}")),
    );
    let alone = lab.dir().join("alone");
    std::fs::create_dir_all(&alone).expect("mkdir");
    let binary = alone.join("restate-fleet");
    std::fs::copy(
        lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built"),
        &binary,
    )
    .expect("copy restate-fleet");
    let entries: Vec<_> = std::fs::read_dir(&alone).expect("ls").flatten().collect();
    assert_eq!(entries.len(), 1, "nothing but restate-fleet: {entries:?}");

    let run = |args: &[&str]| {
        harness::fleet_command(&binary, &lab, &lab.inventory_path(), args)
            .current_dir(&alone)
            .output()
            .expect("restate-fleet runs")
    };
    let version = run(&["--version"]);
    assert!(
        printed(&version).contains("agent: embedded for x86_64"),
        "{}",
        printed(&version)
    );
    assert_exit(&run(&["check"]), 0, "check with the binary alone");
    assert_exit(&run(&["apply", "--yes"]), 0, "apply with the binary alone");
    crate::harness::restatectl_until(
        &lab,
        "n2",
        &["status"],
        std::time::Duration::from_secs(60),
        |out| out.contains(" n1 ") && out.contains(" n2 ") && !out.contains("offline"),
    );
}

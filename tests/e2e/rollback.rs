//! `apply --limit` and `rollback` on a grown lab: only the selected hosts change, each restart
//! behind apply's gates, checked with restatectl; a rollback that would cost the metadata quorum
//! is refused with nothing changed.

use lab::{Kind, Spec};

use crate::faults::{
    assert_cluster_of, config_of, footprint, inventory_with_restart, printed, set_inventory,
};
use crate::harness::{self, assert_exit, fleet};

#[test]
fn apply_limit_changes_only_the_selected_host_and_rollback_puts_its_file_back() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow to three");
    let grown = footprint(&lab);
    let n2_grown = config_of(&lab, "n2").expect("n2 has a config");

    set_inventory(
        &lab,
        &inventory_with_restart(&lab, "warn,restate=info,lab=warn"),
    );
    let limited = fleet(&lab, &["apply", "--yes", "--limit", "n2"]);
    assert_exit(&limited, 0, "apply --limit n2");
    let after = footprint(&lab);
    for ((name, file_before, pid_before), (_, file_after, pid_after)) in grown.iter().zip(&after) {
        if name == "n2" {
            let text = String::from_utf8_lossy(file_after.as_deref().unwrap_or_default());
            assert!(text.contains("lab=warn"), "n2 got the change:\n{text}");
            assert_ne!(pid_before, pid_after, "n2 restarted");
        } else {
            assert_eq!(
                file_before, file_after,
                "{name}: --limit n2 left its file alone"
            );
            assert_eq!(
                pid_before, pid_after,
                "{name}: --limit n2 did not restart it"
            );
        }
    }
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);

    let rollback = fleet(&lab, &["rollback", "--limit", "n2", "--output", "json"]);
    assert_exit(&rollback, 0, "rollback --limit n2");
    let json: serde_json::Value =
        serde_json::from_slice(&rollback.stdout).expect("one JSON document");
    let n2 = json["recap"]["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["host"] == "n2"))
        .unwrap_or_else(|| panic!("n2 in the recap: {json}"));
    assert_eq!(n2["status"], "changed", "{json}");
    // n2's audit log names the rollback's run, which the journal holds.
    let run_id = json["run_id"].as_str().expect("the rollback's run id");
    let audit = std::fs::read_to_string(
        lab.host("n2")
            .path(restate_fleet_proto::agent::AUDIT_LOG)
            .expect("path"),
    )
    .expect("n2's audit log");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("rolled back") && l.contains(run_id)),
        "{audit}"
    );
    assert!(lab.journal_dir().join(format!("{run_id}.jsonl")).is_file());
    assert_eq!(
        config_of(&lab, "n2").expect("n2 config"),
        n2_grown,
        "n2 is back on its file from before the change, byte for byte"
    );
    let rolled = footprint(&lab);
    for ((name, file, pid), (_, file_now, pid_now)) in after.iter().zip(&rolled) {
        if name != "n2" {
            assert_eq!(
                (file, pid),
                (file_now, pid_now),
                "{name}: untouched by the rollback"
            );
        }
    }
    // The log file the lab's service commands write, read through the inventory's `log`.
    let logs = fleet(
        &lab,
        &["--limit", "n2", "logs", "-n", "5", "--output", "json"],
    );
    assert_exit(&logs, 0, "logs of n2");
    let logged: serde_json::Value = serde_json::from_slice(&logs.stdout).expect("JSON");
    let lines = logged["lines"].as_array().expect("lines");
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l["host"] == "n2"),
        "{logged}"
    );
    let nodes = json["cluster"]["nodes"]
        .as_array()
        .expect("the cluster after");
    assert!(nodes.iter().all(|n| n["alive"] == true), "{json}");
    assert_cluster_of(&lab, "n3", &["n1", "n2", "n3"]);

    // With n3 down, restarting n2 would leave one of three metadata servers: refused, and n2
    // keeps its file and its process.
    lab.host("n3").stop_restate().expect("stop n3");
    let before = footprint(&lab);
    let refused = fleet(&lab, &["rollback", "--limit", "n2"]);
    assert_exit(&refused, 1, "rollback that would cost the quorum");
    let text = printed(&refused);
    assert!(
        text.contains("refused") && text.contains("quorum"),
        "{text}"
    );
    let now = footprint(&lab);
    assert_eq!(before[1], now[1], "n2 unchanged by a refused rollback");
}

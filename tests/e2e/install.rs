//! Guide step 1 on the lab: a member on restate-server 1.6.2 is upgraded to 1.7.12 before anything
//! else, a bare host gets the binary and joins, a binary that reports another version than the
//! inventory's is refused before any upload, and a second run uploads and restarts nothing.

use std::path::{Path, PathBuf};

use lab::{Kind, Lab, Spec, paths};
use serde_json::Value;

use crate::harness::{self, assert_exit, fleet_with, stdout};

const BINARY: &str = "/usr/local/bin/restate-server";
const STAGED: &str = "/var/lib/restate-fleet/binaries";

/// The lab's inventory with `[cluster] restate-server` naming `binary` as `version`.
pub fn inventory_with_server(lab: &Lab, file: &str, binary: &Path, version: &str) -> PathBuf {
    let text = lab.inventory().replacen(
        "[cluster]\n",
        &format!(
            "[cluster]\nrestate-server = {{ path = \"{}\", version = \"{version}\" }}\n",
            binary.display()
        ),
        1,
    );
    assert!(
        text.contains("restate-server = {"),
        "no [cluster] table:\n{text}"
    );
    let path = lab.dir().join(file);
    std::fs::write(&path, text).expect("write inventory");
    path
}

fn version_on(lab: &Lab, host: &str) -> String {
    stdout(&harness::ssh(lab, host, &format!("{BINARY} --version")))
        .trim()
        .to_string()
}

fn staged_files(lab: &Lab) -> Vec<String> {
    lab.hosts()
        .iter()
        .flat_map(|h| {
            let dir = h.path(STAGED).expect("private dir");
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| format!("{}: {}", h.name, e.file_name().to_string_lossy()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn upgrades_installs_and_grows_then_changes_nothing() {
    let lab = harness::lab(
        Spec::new(3)
            .with(1, Kind::Existing)
            .old_server(1)
            .with(3, Kind::Bare)
            // As fleets run: systemd on every host, reached as a deploy user through sudo.
            .all_systemd(),
    );
    let current = paths::restate_server().expect("restate-server 1.7.12");
    let old = paths::old_restate_server().expect("restate-server 1.6.2");
    assert_eq!(version_on(&lab, "n1"), "restate-server 1.6.2");
    let n1_pid = lab.host("n1").restate_pid();

    // A binary that reports another version than the inventory says: refused before any upload.
    let wrong = inventory_with_server(&lab, "wrong-version.toml", &old, "1.7.12");
    let refused = fleet_with(&lab, &wrong, &["apply", "--yes"]);
    assert_exit(&refused, 2, "apply with a 1.6.2 binary declared as 1.7.12");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("reports version 1.6.2") && stderr.contains("nothing was uploaded"),
        "{stderr}"
    );
    assert!(staged_files(&lab).is_empty(), "{:?}", staged_files(&lab));
    assert_eq!(lab.host("n1").restate_pid(), n1_pid, "n1 was restarted");

    // Fabric TLS on a 1.6.2 node, which would ignore [tls]: refused before anything is made.
    let tls = lab.dir().join("tls-on-1.6.toml");
    std::fs::write(
        &tls,
        lab.inventory().replace(
            "[cluster.snapshots]",
            "[cluster.tls]\nca = \"managed\"\nca-dir = \"tls-ca\"\n\n[cluster.snapshots]",
        ),
    )
    .expect("write the TLS inventory");
    let refused = fleet_with(&lab, &tls, &["check"]);
    assert_exit(&refused, 1, "check of fabric TLS on 1.6.2");
    let printed = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        printed.contains("n1: restate-server 1.6.2 has no fabric TLS (it came in 1.7.3)"),
        "{printed}"
    );
    assert!(!lab.dir().join("tls-ca").exists(), "check made a CA");
    assert_eq!(lab.host("n1").restate_pid(), n1_pid, "n1 was restarted");

    // Keys Restate 1.7 renamed or removed, in n1's file: a removed one refuses the upgrade with
    // the key and the release named; a renamed one is rewritten in the upgrade's restart.
    let inventory = inventory_with_server(&lab, "upgrade.toml", &current, "1.7.12");
    let n1_config = lab
        .host("n1")
        .path("/etc/restate/restate.toml")
        .expect("path");
    let original = std::fs::read_to_string(&n1_config).expect("n1's restate.toml");
    std::fs::write(
        &n1_config,
        format!("{original}\n[log-server]\nrocksdb-max-wal-size = \"1 GiB\"\n"),
    )
    .expect("write n1's restate.toml");
    let removed = fleet_with(&lab, &inventory, &["check"]);
    assert_exit(&removed, 1, "check with a key 1.7 removed");
    assert!(
        stdout(&removed).contains(
            "problem: n1: `log-server.rocksdb-max-wal-size` was removed in Restate 1.7.0"
        ),
        "{}",
        stdout(&removed)
    );
    std::fs::write(&n1_config, format!("rocksdb-bg-threads = 2\n{original}"))
        .expect("write n1's restate.toml");

    // check and plan show the upgrade and the install, with versions, and change nothing.
    let plan = fleet_with(&lab, &inventory, &["plan"]);
    assert_exit(&plan, 0, "plan");
    let text = stdout(&plan);
    assert!(
        text.contains("n1: restate.toml sets `rocksdb-bg-threads`, which Restate 1.7.0 renamed to `rocksdb-low-priority-threads`: the upgrade rewrites it in the same restart"),
        "{text}"
    );
    assert!(
        text.contains("n1: upgrade restate-server 1.6.2 -> 1.7.12")
            && text.contains("n3: install restate-server 1.7.12")
            && text.contains("n1, n3: upload restate-server 1.7.12"),
        "{text}"
    );
    assert!(staged_files(&lab).is_empty(), "plan uploaded something");
    assert_eq!(version_on(&lab, "n1"), "restate-server 1.6.2");

    let apply = fleet_with(&lab, &inventory, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply");
    let log = String::from_utf8_lossy(&apply.stderr);
    let upgraded = log
        .find("upgrade restate-server")
        .expect("upgrade step ran");
    let snapshots = log
        .find("snapshot every partition")
        .expect("snapshot step ran");
    assert!(upgraded < snapshots, "the upgrade comes first:\n{log}");

    // n1 runs 1.7.12 on its old data, its 1.6.2 binary kept for a rollback; n3 got the binary.
    assert_eq!(version_on(&lab, "n1"), "restate-server 1.7.12");
    let rewritten = std::fs::read_to_string(&n1_config).expect("n1's restate.toml");
    assert!(
        rewritten.contains("rocksdb-low-priority-threads = 2")
            && !rewritten.contains("rocksdb-bg-threads"),
        "{rewritten}"
    );
    assert!(
        stdout(&apply)
            .contains("restate.toml: rocksdb-bg-threads renamed to rocksdb-low-priority-threads"),
        "{}",
        stdout(&apply)
    );
    let previous = lab
        .host("n1")
        .path(&format!("{BINARY}.previous"))
        .expect("path");
    assert_eq!(
        sha256(&previous),
        sha256(&old),
        "n1 keeps its previous binary, 1.6.2"
    );
    let n3_binary = lab.host("n3").path(BINARY).expect("path");
    assert!(
        !n3_binary.is_symlink(),
        "n3's restate-server is a file of its own"
    );
    assert_eq!(sha256(&n3_binary), sha256(&current));
    assert!(
        staged_files(&lab).is_empty(),
        "uploads left behind: {:?}",
        staged_files(&lab)
    );
    let marker = lab
        .host("n1")
        .path("/var/lib/restate/restate-data/n1/.cluster-marker")
        .expect("path");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(&marker).expect("n1's cluster marker"))
            .expect("json");
    assert_eq!(marker["current_version"], "1.7.12", "{marker}");

    let status = harness::restatectl_until(
        &lab,
        "n3",
        &["status"],
        std::time::Duration::from_secs(60),
        |out| [" n1 ", " n2 ", " n3 "].iter().all(|n| out.contains(n)) && !out.contains("offline"),
    );
    assert_eq!(status.matches("Member").count(), 3, "{status}");

    // Converged: nothing uploaded, installed or restarted.
    let pids: Vec<Option<u32>> = lab.hosts().iter().map(|h| h.restate_pid()).collect();
    let again = fleet_with(&lab, &inventory, &["--output", "json", "apply", "--yes"]);
    assert_exit(&again, 0, "second apply");
    let report: Value = serde_json::from_slice(&again.stdout).expect("json report");
    for host in report["hosts"].as_array().expect("hosts") {
        assert_eq!(host["server"]["change"], "keep", "{host}");
        assert_eq!(host["server"]["upload"], false, "{host}");
        assert_eq!(host["restate_version"], "1.7.12", "{host}");
    }
    assert!(
        report["plan"]["steps"]
            .as_array()
            .is_some_and(|s| s.is_empty()),
        "{}",
        report["plan"]
    );
    let after: Vec<Option<u32>> = lab.hosts().iter().map(|h| h.restate_pid()).collect();
    assert_eq!(after, pids, "a converged run restarted a node");
    assert!(staged_files(&lab).is_empty());
}

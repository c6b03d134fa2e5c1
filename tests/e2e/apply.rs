//! `restate-fleet apply` on the lab, each outcome checked with restatectl: the guide's 1 -> 3,
//! an old-style single node grown with replication 2, a cluster made from zero; `check` and `plan`
//! change nothing, and a converged re-run restarts nothing.

use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{CONFIG, footprint};
use crate::harness::{self, assert_exit, fleet, fleet_with, restatectl_until, stdout};

const WAIT: Duration = Duration::from_secs(60);

/// restatectl (through `host`) lists every lab host alive, and as many metadata members.
fn assert_cluster_of_all(lab: &Lab, host: &str) {
    let names: Vec<String> = lab
        .hosts()
        .iter()
        .map(|h| format!(" {} ", h.name))
        .collect();
    let status = restatectl_until(lab, host, &["status"], WAIT, |out| {
        names.iter().all(|n| out.contains(n.as_str())) && !out.contains("offline")
    });
    let members = status.matches("Member").count();
    assert_eq!(
        members,
        lab.hosts().len(),
        "every node a metadata member:\n{status}"
    );
}

#[test]
fn grows_one_node_to_three_and_a_rerun_changes_nothing() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    let before = footprint(&lab);

    let check = fleet(&lab, &["check"]);
    assert_exit(&check, 0, "check");
    assert!(stdout(&check).contains("ready"), "{}", stdout(&check));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan");
    let plan_text = stdout(&plan);
    assert!(plan_text.contains("+auto-provision = false"), "{plan_text}");
    assert!(
        plan_text.contains("snapshot every partition"),
        "{plan_text}"
    );
    assert_eq!(
        footprint(&lab),
        before,
        "check and plan change no file and restart nothing"
    );

    let apply = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply");
    assert_cluster_of_all(&lab, "n2");
    let config = stdout(
        &lab.restatectl("n3", &["config", "get"])
            .expect("config get"),
    );
    assert!(config.to_lowercase().contains("replicated"), "{config}");
    // The operator's file kept its comments and got the full metadata server list.
    let n1 = std::fs::read_to_string(lab.host("n1").path(CONFIG).expect("path")).expect("read");
    assert!(
        n1.contains("# Keep these comments: restate-fleet must not lose them."),
        "{n1}"
    );
    for host in lab.hosts() {
        assert!(n1.contains(&host.advertised_address()), "{n1}");
    }
    // Snapshots landed in the lab's S3 store.
    let objects = lab::s3::list(lab.s3_address(), lab.cluster_name()).expect("list S3");
    assert!(!objects.is_empty(), "snapshots in S3");

    let converged = footprint(&lab);
    let rerun = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&rerun, 0, "re-run");
    assert!(
        stdout(&rerun).contains("nothing changed"),
        "{}",
        stdout(&rerun)
    );
    assert_eq!(
        footprint(&lab),
        converged,
        "a converged re-run restarts nothing"
    );

    let status = fleet(&lab, &["status", "--output", "json"]);
    assert_exit(&status, 0, "status");
    let json: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("one JSON document");
    let nodes = json["cluster"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["alive"] == true), "{json}");
    // Command-managed hosts: the support bundle has their status and log files.
    crate::bundle::collect_and_check(&lab, false);
}

#[test]
fn an_old_style_node_grows_to_three_with_replication_two() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::OldStyle));
    // The node starts on the local loglet (its logs appear once its partitions run).
    restatectl_until(&lab, "n1", &["logs", "list"], WAIT, |out| {
        out.contains("Logs Provider: local") && out.matches("local").count() > 2
    });

    let apply = fleet(&lab, &["apply", "--yes", "--replication", "2"]);
    assert_exit(&apply, 0, "apply");
    assert_cluster_of_all(&lab, "n1");
    // Replication 2, and the nodeset size the local loglet left (1) back to auto (0).
    restatectl_until(&lab, "n2", &["config", "get"], WAIT, |out| {
        out.contains("{node: 2}") && !out.contains("{node: 1}") && out.contains("Nodeset size: 0")
    });
    let logs = restatectl_until(&lab, "n2", &["logs", "list"], WAIT, |out| {
        !out.to_lowercase().contains("local")
    });
    assert!(logs.to_lowercase().contains("replicated"), "{logs}");
    let n1 = std::fs::read_to_string(lab.host("n1").path(CONFIG).expect("path")).expect("read");
    assert!(n1.contains("log-server"), "{n1}");
    assert!(
        n1.contains("# Written before the replicated loglet existed."),
        "{n1}"
    );
}

#[test]
fn makes_a_cluster_from_zero() {
    let lab = harness::lab(Spec::new(3));
    let apply = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply");
    assert_cluster_of_all(&lab, "n3");
    for host in lab.hosts() {
        let file = std::fs::read_to_string(host.path(CONFIG).expect("path")).expect("read");
        assert!(
            file.contains("auto-provision = false"),
            "{}: {file}",
            host.name
        );
    }
}

#[test]
fn grows_three_nodes_to_five_with_two_worker_hosts() {
    let lab = harness::lab(Spec::new(5));
    let full = lab.inventory();
    // First a 3-node cluster from an inventory without n4 and n5.
    let cut = full.find("\n[hosts.n4]").expect("n4 in the inventory");
    let three = lab.dir().join("three.toml");
    std::fs::write(&three, &full[..cut]).expect("write");
    assert_exit(
        &fleet_with(&lab, &three, &["apply", "--yes"]),
        0,
        "apply 3 from zero",
    );

    // Then all five, n4 and n5 in a group of worker hosts without the metadata server.
    let five = lab.dir().join("five.toml");
    let groups = "\n[groups.workers]\nhosts = [\"n4\", \"n5\"]\nroles = [\"worker\", \"log-server\", \"http-ingress\"]\n";
    std::fs::write(&five, format!("{full}{groups}")).expect("write");
    let apply = fleet_with(&lab, &five, &["apply", "--yes", "--replication", "2"]);
    assert_exit(&apply, 0, "apply 3 -> 5");

    let status = restatectl_until(&lab, "n1", &["status"], WAIT, |out| {
        [" n4 ", " n5 "].iter().all(|n| out.contains(n)) && !out.contains("offline")
    });
    assert_eq!(
        status.matches("Member").count(),
        3,
        "three metadata servers:\n{status}"
    );
    for worker in ["n4", "n5"] {
        let line = status
            .lines()
            .find(|l| l.contains(&format!(" {worker} ")))
            .unwrap_or_default();
        assert!(
            !line.contains("metadata-server") && line.contains("worker"),
            "{line}"
        );
        let file =
            std::fs::read_to_string(lab.host(worker).path(CONFIG).expect("path")).expect("read");
        // The worker hosts know the three metadata servers, not themselves.
        for server in ["n1", "n2", "n3"] {
            assert!(
                file.contains(&lab.host(server).advertised_address()),
                "{file}"
            );
        }
        assert!(
            !file.contains(
                &lab.host(worker)
                    .advertised_address()
                    .replace("5122/", "5122/\",")
            ),
            "{file}"
        );
    }
    restatectl_until(&lab, "n2", &["config", "get"], WAIT, |out| {
        out.contains("{node: 2}")
    });
}

//! The lab's parts are real: hosts with their own sshd and host key, private files, a live
//! restate-server seen by restatectl, an S3 store that takes writes, and a teardown that leaves
//! nothing behind.

use std::path::Path;

use lab::{Kind, Spec};

use crate::harness::{self, ssh, stdout};

#[test]
fn three_hosts_are_real_and_leave_nothing_behind() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));

    // Each host answers SSH as itself, its host key checked strictly against the lab's known_hosts.
    let mut host_keys = Vec::new();
    for host in lab.hosts() {
        let answer = ssh(&lab, &host.name, "hostname");
        assert!(answer.status.success(), "ssh {}: {answer:?}", host.name);
        assert_eq!(stdout(&answer).trim(), host.name);
        host_keys.push(
            host.known_hosts_line
                .split_once(' ')
                .map(|(_, k)| k.to_string()),
        );
    }
    host_keys.sort();
    host_keys.dedup();
    assert_eq!(host_keys.len(), 3, "every host has its own host key");

    // A known_hosts that names another host's key for n1 makes the client refuse n1.
    let forged = lab.dir().join("known_hosts.forged");
    let n2_key = lab
        .host("n2")
        .known_hosts_line
        .split_once(' ')
        .map(|(_, k)| k)
        .unwrap_or_default();
    std::fs::write(&forged, format!("{} {n2_key}\n", lab.host("n1").address)).expect("write");
    let refused = std::process::Command::new("ssh")
        .arg("-F")
        .arg(lab.dir().join("ssh_config"))
        .args(["-o", "BatchMode=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", forged.display()))
        .args(["n1", "true"])
        .output()
        .expect("ssh runs");
    assert!(
        !refused.status.success(),
        "a wrong host key must be refused"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{refused:?}"
    );

    // Files are private to each host.
    assert!(
        ssh(&lab, "n2", "echo secret-of-n2 > /etc/restate/probe")
            .status
            .success()
    );
    assert_eq!(
        stdout(&ssh(&lab, "n2", "cat /etc/restate/probe")).trim(),
        "secret-of-n2"
    );
    assert!(
        !ssh(&lab, "n3", "test -e /etc/restate/probe")
            .status
            .success()
    );
    assert!(!Path::new("/etc/restate/probe").exists());

    // n1 is a live single node; a fresh host has restate-server installed and nothing running.
    let health = lab.host("n1").health().expect("n1 answers /health");
    assert!(health.contains("\"status\":\"Alive\""), "{health}");
    assert!(health.contains(lab.cluster_name()), "{health}");
    let status = lab
        .restatectl("n1", &["status"])
        .expect("restatectl status");
    let status = stdout(&status);
    assert!(
        status.contains("N1:") && status.contains(" n1 "),
        "{status}"
    );
    assert!(ssh(&lab, "n2", "restate-server --version").status.success());
    assert!(!ssh(&lab, "n2", "restate-service status").status.success());
    assert!(lab.host("n2").health().is_err());

    // The S3 store takes a write and lists it.
    lab::s3::put(lab.s3_address(), "smoke/object", b"hello").expect("S3 put");
    let keys = lab::s3::list(lab.s3_address(), "smoke/").expect("S3 list");
    assert_eq!(keys, vec!["smoke/object".to_string()]);

    // The inventory names every host, with the lab's key.
    let inventory = std::fs::read_to_string(lab.inventory_path()).expect("inventory");
    for host in lab.hosts() {
        assert!(inventory.contains(&format!("address = \"{}\"", host.address)));
    }

    // Teardown ends every process and removes namespaces, links and files.
    let namespaces: Vec<String> = lab.hosts().iter().map(|h| h.ns.clone()).collect();
    let server_pid = lab
        .host("n1")
        .restate_pid()
        .expect("n1 runs restate-server");
    let dir = lab.dir().to_path_buf();
    let bridge = lab.state.bridge.clone();
    lab.down();
    assert!(!lab::running(server_pid), "restate-server ended");
    for ns in namespaces {
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "namespace {ns} removed"
        );
    }
    assert!(
        !Path::new("/sys/class/net").join(bridge).exists(),
        "bridge removed"
    );
    assert!(!dir.exists(), "lab files removed");
}

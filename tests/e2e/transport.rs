//! Reaching hosts the way a laptop does: only SSH needs to be reachable (gRPC goes through the
//! session), the agent is uploaded once, and host keys are checked.

use lab::{Kind, Spec};

use crate::harness::{self, assert_exit, fleet, stdout};

#[test]
fn grpc_goes_through_ssh_when_the_fabric_port_is_firewalled() {
    let lab = harness::lab(Spec::new(1).with(1, Kind::Existing));
    // Drop every packet to 5122 that does not come from the host itself.
    lab.host("n1")
        .exec(&[
            "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5122", "!", "-i", "lo", "-j",
            "DROP",
        ])
        .expect("firewall n1's fabric port");
    assert!(
        lab.host("n1").health().is_err(),
        "5122 is not reachable directly any more"
    );

    let tunnelled = fleet(&lab, &["status"]);
    assert_exit(&tunnelled, 0, "status through the SSH tunnel");
    assert!(
        stdout(&tunnelled).contains("alive"),
        "{}",
        stdout(&tunnelled)
    );
    assert!(
        stdout(&tunnelled).contains("via ssh n1"),
        "{}",
        stdout(&tunnelled)
    );

    let direct = fleet(&lab, &["status", "--grpc", "direct"]);
    assert_exit(&direct, 1, "status with direct gRPC to a firewalled port");
}

#[test]
fn the_agent_is_uploaded_once_and_unknown_host_keys_are_refused() {
    let lab = harness::lab(Spec::new(2));
    let uploaded = |args: &[&str]| -> Vec<u64> {
        let out = fleet(&lab, args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        json["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .map(|h| h["agent_bytes_uploaded"].as_u64().unwrap_or(u64::MAX))
            .collect()
    };
    let first = uploaded(&["check", "--output", "json"]);
    assert!(
        first.iter().all(|b| *b > 0),
        "first run uploads the agent: {first:?}"
    );
    let second = uploaded(&["check", "--output", "json"]);
    assert_eq!(second, vec![0, 0], "second run uploads nothing");

    // An empty known_hosts: refused, naming the host; then accepted with the flag and recorded.
    let empty = lab.dir().join("known_hosts.empty");
    std::fs::write(&empty, "").expect("write");
    let binary = lab::paths::workspace_binary("restate-fleet").expect("built");
    let run = |extra: &[&str]| {
        std::process::Command::new(&binary)
            .arg("-i")
            .arg(lab.inventory_path())
            .arg("--known-hosts")
            .arg(&empty)
            .args(["check"])
            .args(extra)
            .output()
            .expect("runs")
    };
    let refused = run(&[]);
    assert_exit(&refused, 1, "unknown host keys");
    let text = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        text.contains("n1") && text.contains("--accept-new-host-keys"),
        "{text}"
    );
    assert_exit(&run(&["--accept-new-host-keys"]), 0, "accepting new keys");
    let recorded = std::fs::read_to_string(&empty).expect("read");
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    assert_exit(&run(&[]), 0, "recorded keys are known");
}

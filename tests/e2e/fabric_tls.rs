//! Fabric TLS with a CA restate-fleet manages (docs/fabric-tls.md): a grown 3-node cluster moves
//! from off to require under live traffic, one mode at a time on every node; afterwards plain
//! text and a TLS client without a certificate are refused on every node's 5122 (judged with
//! curl), restatectl works with the tool's certificate, no key is readable by another user on a
//! host nor printed anywhere, `status` answers, a fourth node joins with TLS together with a
//! rolling change, and a re-run changes nothing. On systemd hosts reached through sudo.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{assert_rerun_changes_nothing, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet};
use crate::traffic::under_traffic;

const CA_DIR: &str = "fleet-ca";

/// The lab's inventory with replication 2, the hosts `hosts` only, and with `tls`, a managed
/// CA in the lab's folder.
fn inventory_of(lab: &Lab, hosts: &[&str], tls: bool) -> String {
    let mut text = lab
        .inventory()
        .replace("[cluster]\n", "[cluster]\nreplication = 2\n");
    if tls {
        text = text.replace(
            "[cluster.snapshots]",
            &format!(
                "[cluster.tls]\nca = \"managed\"\nca-dir = \"{CA_DIR}\"\n\n[cluster.snapshots]"
            ),
        );
    }
    let gone: Vec<&str> = lab
        .hosts()
        .iter()
        .map(|h| h.name.as_str())
        .filter(|h| !hosts.contains(h))
        .collect();
    crate::scale_down::without_hosts(text, &gone)
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// restatectl from this machine against `host` over TLS with the tool's own certificate.
fn restatectl_tls(lab: &Lab, ca: &Path, host: &str, args: &[&str]) -> String {
    let restatectl = lab::paths::restatectl().expect("restatectl installed");
    let address = format!("https://{}:5122", lab.host(host).address);
    let out = Command::new(restatectl)
        .args(["--address", &address])
        .args(args)
        .env("RESTATECTL_TLS_CA", ca.join("ca.pem"))
        .env("RESTATECTL_TLS_CERT", ca.join("restate-fleet.pem"))
        .env("RESTATECTL_TLS_KEY", ca.join("restate-fleet.key"))
        .env("NO_COLOR", "1")
        .output()
        .expect("restatectl runs");
    printed(&out)
}

/// Every private key's body lines, for the check that none was printed or recorded.
fn key_lines(ca: &Path) -> Vec<String> {
    let mut keys = vec![ca.join("ca.key"), ca.join("restate-fleet.key")];
    for entry in std::fs::read_dir(ca.join("nodes")).expect("issued certificates kept") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "key") {
            keys.push(path);
        }
    }
    keys.iter()
        .flat_map(|k| {
            std::fs::read_to_string(k)
                .expect("key readable here")
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn every_file(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            every_file(&path, out);
        } else if let Ok(text) = std::fs::read(&path) {
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
    }
}

#[test]
fn off_to_require_under_traffic_then_a_node_joins_with_tls() {
    let mut lab = harness::lab(Spec::new(4).with(1, Kind::Existing).all_systemd());
    let three = ["n1", "n2", "n3"];
    set_inventory(&lab, &inventory_of(&lab, &three, false));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 3");
    lab.start_workload("n1")
        .expect("workload service registered");
    let ca = lab.dir().join(CA_DIR);
    let mut said = Vec::new();

    set_inventory(&lab, &inventory_of(&lab, &three, true));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan of fabric TLS");
    let text = printed(&plan);
    for line in [
        "n1: fabric TLS allow",
        "n3: fabric TLS prefer",
        "n3: fabric TLS require",
        "make the CA in",
    ] {
        assert!(text.contains(line), "plan lacks {line:?}:\n{text}");
    }
    assert!(
        text.find("n3: fabric TLS allow") < text.find("n1: fabric TLS prefer"),
        "every node allows before any prefers:\n{text}"
    );
    assert!(!ca.exists(), "plan made the CA");
    said.push(text);

    under_traffic(&lab, "fabric TLS off -> require", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "off -> require");
        let text = printed(&out);
        assert!(
            text.contains("fabric port refuses plain text and TLS without a certificate"),
            "{text}"
        );
        said.push(text);
    });

    // An independent client on every node's fabric port: plain HTTP and TLS without a
    // certificate refused, the tool's certificate let in.
    let ca_pem = ca.join("ca.pem").display().to_string();
    let (cert, key) = (
        ca.join("restate-fleet.pem").display().to_string(),
        ca.join("restate-fleet.key").display().to_string(),
    );
    for host in three {
        let ip = lab.host(host).address;
        let plain = curl(&[&format!("http://{ip}:5122/health")]);
        assert!(
            !plain.status.success(),
            "{host}: plain HTTP answered: {}",
            printed(&plain)
        );
        let h2 = curl(&[
            "--http2-prior-knowledge",
            &format!("http://{ip}:5122/health"),
        ]);
        assert!(
            !h2.status.success(),
            "{host}: h2c answered: {}",
            printed(&h2)
        );
        let bare = curl(&["--cacert", &ca_pem, &format!("https://{ip}:5122/health")]);
        assert!(
            !bare.status.success(),
            "{host}: TLS without a certificate answered: {}",
            printed(&bare)
        );
        let ours = curl(&[
            "--cacert",
            &ca_pem,
            "--cert",
            &cert,
            "--key",
            &key,
            &format!("https://{ip}:5122/health"),
        ]);
        assert!(
            ours.status.success() && printed(&ours).contains("\"Alive\""),
            "{host}: the tool's certificate was refused: {}",
            printed(&ours)
        );
        // The key is the service user's alone.
        let stat = harness::ssh(&lab, host, "sudo stat -c '%a %U' /etc/restate/tls/node.key");
        assert_eq!(
            harness::stdout(&stat).trim(),
            "600 restate",
            "{host}: {}",
            printed(&stat)
        );
    }
    let nodes = restatectl_tls(&lab, &ca, "n2", &["nodes", "list"]);
    assert_eq!(
        nodes.matches("https://").count(),
        3,
        "every node advertises https:\n{nodes}"
    );
    let plain_ctl = lab.restatectl("n2", &["nodes", "list"]);
    assert!(
        plain_ctl.is_err(),
        "restatectl without TLS got in: {plain_ctl:?}"
    );

    let status = fleet(&lab, &["status"]);
    assert_exit(&status, 0, "status at require");
    assert_eq!(
        printed(&status).matches(" alive ").count(),
        3,
        "{}",
        printed(&status)
    );
    said.push(printed(&status));

    // A node added later joins at require, alongside a rolling change of every member.
    let four = ["n1", "n2", "n3", "n4"];
    let rolled = inventory_of(&lab, &four, true).replace(
        "rocksdb-total-memory-size = \"512 MiB\"",
        "rocksdb-total-memory-size = \"512 MiB\"\nlog-filter = \"warn,restate=info\"",
    );
    set_inventory(&lab, &rolled);
    under_traffic(&lab, "n4 joins with TLS, members roll", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "n4 joins at require");
        said.push(printed(&out));
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = restatectl_tls(&lab, &ca, "n4", &["status"]);
        if status.contains(" n4 ")
            && status.matches("Member").count() == 4
            && !status.contains("offline")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "n4 is no member at require:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_rerun_changes_nothing(&lab, "re-run at require");

    // No private key in anything printed or recorded.
    every_file(&lab.state_home(), &mut said);
    for line in key_lines(&ca) {
        assert!(
            !said.iter().any(|text| text.contains(&line)),
            "a private key was printed or recorded"
        );
    }
}

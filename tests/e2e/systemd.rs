//! restate-fleet on hosts that run systemd, the inventory's default service manager: the lab's
//! systemd hosts boot the machine's own systemd as PID 1, are reached as a deploy user through
//! sudo, and an existing node runs under an operator's `restate.service` with a drop-in. Results
//! are read with systemctl on the host and restatectl for the cluster.

use std::os::unix::fs::MetadataExt;

use lab::systemd::{DROP_IN_ENVIRONMENT, SERVICE_USER, UNIT};
use lab::{Kind, Lab, Spec};

use crate::faults::{
    assert_cluster_of, assert_rerun_changes_nothing, config_of, footprint, inventory_with_memory,
    printed, set_inventory,
};
use crate::harness::{self, assert_exit, fleet, stdout};

/// `systemctl ARGS` on the host: its stdout, trimmed.
fn systemctl(lab: &Lab, host: &str, args: &[&str]) -> String {
    let mut argv = vec!["systemctl"];
    argv.extend_from_slice(args);
    let out = lab
        .host(host)
        .command(&argv)
        .output()
        .expect("systemctl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The unit is enabled and active, runs as the service user, and its process is that user's.
fn assert_runs_as_a_service(lab: &Lab, host: &str) {
    assert_eq!(
        systemctl(lab, host, &["is-enabled", UNIT]),
        "enabled",
        "{host}"
    );
    assert_eq!(
        systemctl(lab, host, &["is-active", UNIT]),
        "active",
        "{host}"
    );
    assert_eq!(
        systemctl(lab, host, &["show", "--property", "User", "--value", UNIT]),
        SERVICE_USER,
        "{host}"
    );
    let pid = lab.host(host).restate_pid().expect("restate-server runs");
    let uid = std::fs::metadata(format!("/proc/{pid}"))
        .expect("process")
        .uid();
    let id = lab
        .host(host)
        .command(&["id", "-u", SERVICE_USER])
        .output()
        .expect("id runs");
    assert_eq!(
        uid.to_string(),
        String::from_utf8_lossy(&id.stdout).trim(),
        "{host}: restate-server runs as {SERVICE_USER}"
    );
}

/// `logs -f` prints a host's new journal lines as they come (restate-server's own, here its
/// configuration dumped on SIGUSR1), and stops on Ctrl-C with exit 0, its follower on the host
/// gone with it.
fn follows_a_journal_until_interrupted(lab: &Lab, host: &str) {
    use std::io::Read;
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    let mut child = harness::fleet_command(
        &binary,
        lab,
        &lab.inventory_path(),
        &["--limit", host, "logs", "-n", "1", "-f"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("restate-fleet runs");
    let mut out = child.stdout.take().expect("stdout");
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let said = said.clone();
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                said.lock()
                    .expect("buffer")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let wait_for = |what: &str, test: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if test(&said.lock().expect("buffer")) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{what}: {}", said.lock().expect("buffer"));
    };
    let following = || {
        lab.host(host)
            .command(&["pgrep", "-f", "journalctl.*--follow"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    wait_for("the last line first", &|t| t.lines().count() >= 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !following() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(following(), "{host}: journalctl --follow runs");
    systemctl(lab, host, &["kill", "--signal", "USR1", UNIT]);
    let prefix = format!("{host} | ");
    wait_for("restate-server's configuration dump, followed", &|t| {
        t.lines()
            .any(|l| l.starts_with(&prefix) && l.contains("cluster-name = "))
    });
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs -f still runs 10 s after Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = reader.join();
    assert_eq!(status.code(), Some(0), "logs -f after Ctrl-C");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while following() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!following(), "{host}: the follower ended with the channel");
}

/// `restart --reboot` of one member: its host's PID 1 (and so everything on it) starts anew,
/// restate-server comes back by itself under its unit, the cluster has the node alive (by
/// restatectl), and its audit log says so.
fn reboots_a_member_and_gates_it(lab: &Lab, host: &str) {
    let pid1 = lab.host(host).ns_pid();
    let server = lab.host(host).restate_pid().expect("restate-server runs");
    let reboot = fleet(lab, &["--limit", host, "restart", "--reboot", "--yes"]);
    assert_exit(&reboot, 0, "restart --reboot");
    let text = printed(&reboot);
    assert!(
        text.contains(&format!("{host}: back after "))
            && text.contains("rebooted (rolling reboot)"),
        "{text}"
    );
    assert_ne!(lab.host(host).ns_pid(), pid1, "{host}'s PID 1 started anew");
    assert_ne!(
        lab.host(host).restate_pid(),
        Some(server),
        "{host}'s restate-server is a new process"
    );
    assert_runs_as_a_service(lab, host);
    assert_cluster_of(lab, "n1", &["n1", "n2", "n3"]);
    let status = fleet(lab, &["status"]);
    assert!(
        stdout(&status).contains("host reboot: asked"),
        "{}",
        stdout(&status)
    );
}

/// `sh -c SCRIPT` as root on the host.
fn on_host(lab: &Lab, host: &str, script: &str) {
    lab.host(host)
        .exec(&["sh", "-c", script])
        .unwrap_or_else(|e| panic!("{host}: {script}: {e:#}"));
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `check` with this machine's clock `offset` off (libfaketime on the coordinator alone: a
/// lab host's clock is the machine's, and no namespace moves CLOCK_REALTIME).
fn check_with_clock(lab: &Lab, inventory: &std::path::Path, offset: &str) -> std::process::Output {
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    harness::fleet_command(&binary, lab, inventory, &["check"])
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("restate-fleet runs")
}

/// The figure printed right after `prefix` ("45.0 s") is `wanted` give or take the round trip
/// a loaded machine adds to the measurement.
fn assert_seconds_near(text: &str, prefix: &str, wanted: f64) {
    let figure = text
        .split_once(prefix)
        .and_then(|(_, rest)| rest.split_once(" s "))
        .and_then(|(seconds, _)| seconds.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no `{prefix}<seconds> s` in\n{text}"));
    assert!(
        (figure - wanted).abs() <= 0.5,
        "{prefix}{figure} s, wanted {wanted} s\n{text}"
    );
}

/// Hosts as cloned VMs and busy machines leave them: a full disk and a port taken where a node
/// is to start, a machine id copied from another host, a clock off. `check` names each with its
/// figure, and refuses the run where it would harm; once they are fixed it is ready again.
fn refuses_hosts_that_would_harm_the_cluster(lab: &Lab) {
    on_host(
        lab,
        "n3",
        "mount -t tmpfs -o size=1m tmpfs /var/lib/restate && { dd if=/dev/zero of=/var/lib/restate/fill bs=64k 2>/dev/null || true; } \
         && systemd-run --quiet --unit=squatter python3 -m http.server 9070",
    );
    let n2_id = lab.host("n2").path("/etc/machine-id").expect("path");
    let own_id = std::fs::read(&n2_id).expect("n2's machine id");
    std::fs::copy(
        lab.host("n1").path("/etc/machine-id").expect("path"),
        &n2_id,
    )
    .expect("n2 gets n1's machine id");
    // Until python3 listens.
    let listening = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect((lab.host("n3").address, 9070)).is_ok()
    });
    assert!(listening, "the squatter on n3 listens on 9070");

    let check = check_with_clock(lab, &lab.inventory_path(), "+45s");
    assert_exit(&check, 1, "check on harmful hosts");
    let text = printed(&check);
    for (what, wanted) in [
        (
            "the full disk",
            "problem: n3: 0 B free of 1.0 MiB on the filesystem of /var/lib/restate",
        ),
        (
            "the bound port",
            "problem: n3: port 9070 is already bound by python3 (pid ",
        ),
        (
            "the cloned machine",
            "problem: n1, n2 have the same /etc/machine-id (",
        ),
    ] {
        assert!(text.contains(wanted), "{what}: {wanted}\n{text}");
    }
    // Three hosts agree with each other: the laptop is the one off.
    assert_seconds_near(&text, "warning: this machine's clock is ", 45.0);
    // With one host there is no majority: against this machine, refused.
    let original = std::fs::read_to_string(lab.inventory_path()).expect("inventory");
    let mut only_n2 = original.clone();
    for other in ["n1", "n3"] {
        let table = format!(
            "\n[hosts.{other}]\naddress = \"{}\"\n",
            lab.host(other).address
        );
        assert!(only_n2.contains(&table), "{original}");
        only_n2 = only_n2.replace(&table, "\n");
    }
    let one = lab.dir().join("inventory-n2.toml");
    std::fs::write(&one, only_n2).expect("write the inventory");
    let skewed = check_with_clock(lab, &one, "-45s");
    assert_exit(&skewed, 1, "check of one host whose clock is off");
    let text = printed(&skewed);
    assert_seconds_near(&text, "problem: n2: its clock is ", 45.0);
    assert!(text.contains(" s ahead of this machine's (±"), "{text}");

    on_host(
        lab,
        "n3",
        "systemctl stop squatter && umount /var/lib/restate",
    );
    std::fs::write(&n2_id, own_id).expect("n2's own machine id back");
}

#[test]
fn grows_an_existing_systemd_node_to_three_and_a_rerun_restarts_nothing() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing).all_systemd());
    refuses_hosts_that_would_harm_the_cluster(&lab);
    let check = fleet(&lab, &["check"]);
    assert_exit(&check, 0, "check");
    let apply = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply on systemd hosts");
    assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
    for host in ["n1", "n2", "n3"] {
        assert_runs_as_a_service(&lab, host);
    }
    // Each unit's journal, merged: restate-server's lines from every host.
    let logs = fleet(&lab, &["logs", "-n", "20"]);
    assert_exit(&logs, 0, "logs");
    let text = String::from_utf8_lossy(&logs.stdout).into_owned();
    for host in ["n1", "n2", "n3"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{host} | "))),
            "{host}'s journal:\n{text}"
        );
    }
    follows_a_journal_until_interrupted(&lab, "n2");
    crate::bundle::collect_and_check(&lab, true);
    // The operator's unit and drop-in are still the ones in force on n1.
    let unit = std::fs::read_to_string(
        lab.host("n1")
            .path(&format!("/etc/systemd/system/{UNIT}"))
            .expect("path"),
    )
    .expect("n1's unit");
    assert!(
        unit.starts_with("# Written by hand by the operator."),
        "{unit}"
    );
    let pid = lab.host("n1").restate_pid().expect("n1 runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        String::from_utf8_lossy(&environ).contains(DROP_IN_ENVIRONMENT),
        "n1's drop-in environment is in force"
    );
    // The new hosts got a unit written by restate-fleet.
    let written = systemctl(
        &lab,
        "n2",
        &["show", "--property", "FragmentPath", "--value", UNIT],
    );
    assert_eq!(written, format!("/etc/systemd/system/{UNIT}"));

    assert_rerun_changes_nothing(&lab, "re-run");
    reboots_a_member_and_gates_it(&lab, "n3");
    let before = footprint(&lab);

    // A masked unit stops the run before any change; a disabled one is reported and left alone.
    systemctl(&lab, "n3", &["disable", UNIT]);
    // A disabled unit would not start after a reboot: `restart --reboot` refuses, reboots nothing.
    let pid1 = lab.host("n1").ns_pid();
    let refused = fleet(&lab, &["restart", "--reboot", "--yes"]);
    assert_exit(&refused, 1, "restart --reboot with a disabled unit");
    assert!(
        printed(&refused).contains(&format!(
            "n3: {UNIT} is disabled, so it would not start at boot"
        )),
        "{}",
        printed(&refused)
    );
    assert_eq!(lab.host("n1").ns_pid(), pid1, "n1 was not rebooted");
    assert_eq!(
        footprint(&lab),
        before,
        "a refused reboot changed something"
    );
    let disabled = fleet(&lab, &["check"]);
    assert_exit(&disabled, 0, "check with a disabled unit");
    assert!(
        printed(&disabled).contains(&format!("n3: {UNIT} is disabled")),
        "{}",
        printed(&disabled)
    );
    // The lab's nodes listen on every interface, without fabric TLS: check says so of each.
    for host in ["n1", "n2", "n3"] {
        assert!(
            printed(&disabled).contains(&format!(
                "warning: {host}: the fabric (port 5122) listens on all interfaces"
            )),
            "{}",
            printed(&disabled)
        );
    }
    assert_eq!(
        systemctl(&lab, "n3", &["is-enabled", UNIT]),
        "disabled",
        "left alone"
    );
    // Masked as a packaged unit is: the unit file in /lib, a /dev/null link in /etc.
    let mask = format!(
        "mv /etc/systemd/system/{UNIT} /lib/systemd/system/{UNIT} && systemctl daemon-reload && systemctl mask {UNIT}"
    );
    lab.host("n3")
        .exec(&["sh", "-c", &mask])
        .expect("mask n3's unit");
    assert_eq!(systemctl(&lab, "n3", &["is-enabled", UNIT]), "masked");
    let masked = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&masked, 1, "apply with a masked unit");
    assert!(
        printed(&masked).contains(&format!("n3: {UNIT} is masked")),
        "{}",
        printed(&masked)
    );
    assert_eq!(footprint(&lab), before, "a refused run changed something");
}

#[test]
fn a_node_that_fails_under_systemd_is_rolled_back_with_its_journal_and_rollback_restores() {
    let lab = harness::lab(Spec::new(1).with(1, Kind::Existing).systemd(1));
    let original = config_of(&lab, "n1").expect("n1 has a config");

    // Restate's loader takes this file, its start does not (an ingress address not on the
    // host): systemd sees the process fail, and the agent at once.
    set_inventory(
        &lab,
        &inventory_with_memory(
            &lab,
            "512 MiB\"\ningress.bind-address = \"198.51.100.1:8080",
        ),
    );
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with a config Restate rejects at start");
    let text = printed(&out);
    assert!(
        text.contains("restored the previous restate.toml")
            && text.contains("restate-server exited after the start")
            && text.contains("its journal ended with"),
        "{text}"
    );
    assert!(
        text.contains("failed binding to address"),
        "the journal shows Restate's own complaint:\n{text}"
    );
    assert_eq!(
        config_of(&lab, "n1"),
        Some(original.clone()),
        "n1 back on its old file"
    );
    assert_runs_as_a_service(&lab, "n1");

    // A good change, then `rollback` puts the file before it back, behind the health gate.
    set_inventory(&lab, &lab.inventory());
    let apply = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply");
    let changed = config_of(&lab, "n1").expect("config");
    assert_ne!(changed, original);
    let rollback = fleet(&lab, &["--limit", "n1", "rollback", "--yes"]);
    assert_exit(&rollback, 0, "rollback");
    assert_ne!(
        config_of(&lab, "n1"),
        Some(changed),
        "{}",
        printed(&rollback)
    );
    assert_runs_as_a_service(&lab, "n1");
    harness::restatectl_until(
        &lab,
        "n1",
        &["status"],
        std::time::Duration::from_secs(60),
        |o| o.contains(" n1 ") && !o.contains("offline"),
    );
}

#[test]
fn an_inventory_that_says_systemd_where_there_is_none_is_refused_before_any_change() {
    let lab = harness::lab(Spec::new(2).with(1, Kind::Existing));
    let n2 = format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address);
    let inventory = lab.inventory().replace(
        &n2,
        &format!("{n2}service = {{ manager = \"systemd\", unit = \"{UNIT}\" }}\n"),
    );
    set_inventory(&lab, &inventory);
    let before = footprint(&lab);
    for command in [&["check"][..], &["apply", "--yes"][..]] {
        let out = fleet(&lab, command);
        assert_exit(&out, 1, command[0]);
        let text = printed(&out);
        assert!(
            text.lines().any(|l| l.contains("n2")
                && l.contains("systemd does not run on this host")
                && l.contains("manager = \"command\"")),
            "{text}"
        );
        assert!(!stdout(&out).contains("n1: write"), "{text}");
    }
    assert_eq!(footprint(&lab), before, "a refused run changed something");
}

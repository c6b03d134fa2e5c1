//! Security on the lab: an inventory secret never shows in output, logs, diffs, JSON or any
//! process's arguments; config files keep their owner and mode (0600 when new); inventory values
//! full of shell syntax (spaces, quotes, `;`, `$(...)`, backticks) in a config path and service
//! commands never reach a shell; a tampered agent on a host is never run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::bad_input::WORKER_ROLES;
use crate::faults::{CONFIG, printed, set_inventory};
use crate::harness::{self, assert_exit, restatectl_until};

/// Every shell metacharacter that matters, in a directory and a file name. If any reached a
/// shell, `touch` would leave a `pwned-*` file behind.
const ODD_DIR: &str = "/etc/restate/odd dir;$(touch pwned-dir)";
const ODD_FILE: &str = "n2 'q' \"dq\" ;`touch pwned-tick` $(touch pwned-file).toml";

fn odd_path() -> String {
    format!("{ODD_DIR}/{ODD_FILE}")
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One argument in the inventory's command syntax (POSIX single quotes).
fn argv_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A secret no other test or lab uses, so that finding it anywhere means this run put it there.
fn secret_for(lab: &Lab) -> String {
    format!(
        "rf-secret-{}-{:x}",
        std::process::id(),
        lab.state.gateway.to_bits()
    )
}

/// The lab's inventory with n1 the only metadata server and the S3 secret read from
/// `RF_E2E_SECRET` (see [`fleet_with_secret`]).
fn inventory_with_secret_from_env(lab: &Lab) -> String {
    lab.inventory()
        .replace("[cluster]\n", "[cluster]\nmetadata-servers = [\"n1\"]\n")
        .replace(
            &format!("aws-secret-access-key = \"{}\"", lab::s3::SECRET_ACCESS_KEY),
            "aws-secret-access-key = { env = \"RF_E2E_SECRET\" }",
        )
}

/// restate-fleet with the secret in its environment (the inventory reads it from there).
fn fleet_with_secret(lab: &Lab, secret: &str, args: &[&str]) -> Output {
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    Command::new(binary)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--known-hosts")
        .arg(lab.known_hosts_path())
        .args(args)
        .env("RF_E2E_SECRET", secret)
        .env("XDG_STATE_HOME", lab.state_home())
        .stdin(Stdio::null())
        .output()
        .expect("restate-fleet runs")
}

/// Samples every process's command line on the machine (the lab's hosts share its pid
/// namespace), and the environment of every process on a lab host (another network namespace
/// than this test's: the coordinator, which reads the secret from its own environment by design,
/// is on "the laptop"), until stopped; returns the ones that held `needle`.
struct ArgvWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl ArgvWatch {
    fn start(needle: String) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut samples = 0;
            let laptop = std::fs::read_link("/proc/self/ns/net").ok();
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(argv) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
                    if argv.contains(&needle) {
                        f.lock().expect("lock").push(argv.clone());
                    }
                    let on_a_host = std::fs::read_link(entry.path().join("ns/net")).ok() != laptop;
                    let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                    if on_a_host && String::from_utf8_lossy(&environ).contains(&needle) {
                        // Named by comm too: a process caught starting or ending shows no argv.
                        let comm =
                            std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                        f.lock()
                            .expect("lock")
                            .push(format!("environment of {argv} [{}]", comm.trim()));
                    }
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        });
        ArgvWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.take().map_or(0, |t| t.join().expect("watcher"));
        let seen = self.seen.lock().expect("lock").clone();
        (samples, seen)
    }
}

impl Drop for ArgvWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn mode_and_owner(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// No `pwned-*` file wherever an injected `touch` could have run.
fn assert_nothing_injected(lab: &Lab) {
    let mut places = vec![
        Path::new("/root").to_path_buf(),
        Path::new("/").to_path_buf(),
    ];
    for host in lab.hosts() {
        for dir in ["/tmp", "/var/lib/restate", "/etc/restate", ODD_DIR] {
            places.push(host.path(dir).expect("private path"));
        }
    }
    for place in places {
        for entry in std::fs::read_dir(&place).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with("pwned"),
                "{}: an inventory value reached a shell",
                entry.path().display()
            );
        }
    }
}

#[test]
fn secrets_stay_secret_modes_are_kept_and_inventory_values_never_reach_a_shell() {
    let lab = harness::lab(Spec::new(2).with(1, Kind::Existing));
    let secret = secret_for(&lab);
    let n2 = format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address);
    let script = lab::host::SERVICE_SCRIPT;
    let config_env = argv_word(&format!("RESTATE_CONFIG={}", odd_path()));
    let command = |action: &str| {
        toml_string(&format!(
            "env {config_env} {script} {action} '$(touch /tmp/pwned)' \"; touch /tmp/pwned\""
        ))
    };
    let inventory = inventory_with_secret_from_env(&lab)
        .replace(
            &n2,
            &format!(
                "{n2}{WORKER_ROLES}config-path = {}\nservice = {{ manager = \"command\", start = {}, stop = {}, restart = {}, status = {} }}\n",
                toml_string(&odd_path()),
                command("start"),
                command("stop"),
                command("restart"),
                command("status"),
            ),
        );
    set_inventory(&lab, &inventory);
    std::fs::create_dir_all(lab.host("n2").path(ODD_DIR).expect("path")).expect("odd dir");

    // n1's file has an owner and mode of its own, which must survive the change.
    let n1_config = lab.host("n1").path(CONFIG).expect("path");
    std::os::unix::fs::chown(&n1_config, Some(4321), Some(4321)).expect("chown");
    std::fs::set_permissions(&n1_config, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    let watch = ArgvWatch::start(secret.clone());
    let plan = fleet_with_secret(&lab, &secret, &["plan"]);
    assert_exit(&plan, 0, "plan");
    assert!(printed(&plan).contains("<redacted>"), "{}", printed(&plan));
    let plan_json = fleet_with_secret(&lab, &secret, &["plan", "--output", "json"]);
    assert_exit(&plan_json, 0, "plan --output json");
    let apply = fleet_with_secret(
        &lab,
        &secret,
        &["-vv", "apply", "--yes", "--output", "json"],
    );
    assert_exit(&apply, 0, "apply");
    let status = fleet_with_secret(&lab, &secret, &["-vv", "status", "--output", "json"]);
    assert_exit(&status, 0, "status");
    let (samples, seen) = watch.finish();
    assert!(
        samples > 10,
        "the watcher sampled the process table ({samples} times)"
    );
    assert!(
        seen.is_empty(),
        "the secret in a process's arguments: {seen:?}"
    );
    for (what, out) in [
        ("plan", &plan),
        ("plan json", &plan_json),
        ("apply", &apply),
        ("status", &status),
    ] {
        assert!(!printed(out).contains(&secret), "{what} printed the secret");
    }
    let report = serde_json::from_slice::<serde_json::Value>(&apply.stdout)
        .expect("apply printed one JSON document");

    // The run is on record on the laptop, and no journal line holds the secret.
    let run_id = report["run_id"].as_str().expect("the report names its run");
    let journals: Vec<_> = std::fs::read_dir(lab.journal_dir())
        .expect("the journal directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!journals.is_empty());
    for journal in &journals {
        let text = std::fs::read_to_string(journal).expect("read the journal");
        assert!(!text.contains(&secret), "{}: the secret", journal.display());
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
        }
    }
    // Each host's audit log has the run's changes there, under its run id, and no secret.
    for host in ["n1", "n2"] {
        let path = lab
            .host(host)
            .path(restate_fleet_proto::agent::AUDIT_LOG)
            .expect("path");
        let text = std::fs::read_to_string(&path).expect("the host's audit log");
        assert!(
            !text.contains(&secret),
            "{host}: the secret in its audit log"
        );
        assert_eq!(mode_and_owner(&path).0, 0o600, "{host}: audit log mode");
        let ours: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .filter(|l: &serde_json::Value| l["run"] == run_id)
            .collect();
        assert!(
            ours.iter().any(|l| l["change"]
                .as_str()
                .is_some_and(|c| c.ends_with(" changed"))
                && l["keys"].as_array().is_some_and(|k| k
                    .iter()
                    .any(|k| k == "worker.snapshots.aws-secret-access-key"))),
            "{host}: the run's restate.toml change:\n{text}"
        );
        assert!(
            ours.iter().all(|l| l["by"]
                .as_str()
                .is_some_and(|b| b.starts_with("restate-fleet by"))),
            "{host}: who ran it:\n{text}"
        );
    }
    let shown = harness::fleet(&lab, &["history", "show", run_id]);
    assert_exit(&shown, 0, "history show");
    let text = printed(&shown);
    assert!(
        text.contains("result: done") && text.contains("n1: restate.toml: set"),
        "{text}"
    );

    // The secret is where it must be, in files only root (or the file's owner) can read.
    let n1_text = std::fs::read_to_string(&n1_config).expect("read n1");
    assert!(n1_text.contains(&secret), "n1 got the secret");
    assert_eq!(
        mode_and_owner(&n1_config),
        (0o640, 4321, 4321),
        "n1 kept owner and mode"
    );
    let n2_config = lab.host("n2").path(&odd_path()).expect("path");
    assert!(
        std::fs::read_to_string(&n2_config)
            .expect("n2 file")
            .contains(&secret)
    );
    assert_eq!(mode_and_owner(&n2_config).0, 0o600, "a new file is 0600");
    for host in ["n1", "n2"] {
        let dir = if host == "n1" {
            "/etc/restate".to_string()
        } else {
            ODD_DIR.to_string()
        };
        let backups = lab
            .host(host)
            .path(&format!("{dir}/.restate-fleet-backups"))
            .expect("path");
        for entry in std::fs::read_dir(&backups).into_iter().flatten().flatten() {
            let mode = mode_and_owner(&entry.path()).0;
            assert_eq!(
                mode & 0o007,
                0,
                "{}: backup readable by others",
                entry.path().display()
            );
        }
    }
    restatectl_until(&lab, "n1", &["status"], Duration::from_secs(60), |out| {
        out.contains(" n1 ") && out.contains(" n2 ") && !out.contains("offline")
    });
    assert_nothing_injected(&lab);

    // A tampered agent is never run: the next run finds the hash wrong and uploads it again.
    let agents = lab
        .host("n1")
        .path("/var/lib/restate-fleet/agent")
        .expect("path");
    let agent = std::fs::read_dir(&agents)
        .expect("agent dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("restate-fleet-agent-"))
        })
        .expect("the uploaded agent");
    std::fs::write(&agent, "#!/bin/sh\ntouch /tmp/tampered\necho '{}'\n").expect("tamper");
    let check = fleet_with_secret(&lab, &secret, &["check", "--output", "json"]);
    assert_exit(&check, 0, "check after tampering");
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).expect("JSON");
    let n1 = json["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["host"] == "n1")
        .expect("n1");
    assert!(
        n1["agent_bytes_uploaded"].as_u64().unwrap_or(0) > 0,
        "re-uploaded: {n1}"
    );
    assert!(
        !lab.host("n1").path("/tmp/tampered").expect("path").exists(),
        "the tampered agent ran"
    );
    let sum = Command::new("sha256sum")
        .arg(&agent)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    let name = agent
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.ends_with(sum.split_whitespace().next().unwrap_or("-")),
        "{name} vs {sum}"
    );
}

/// Every file under `dirs` of `host` (paths as the host sees them) whose content holds `needle`.
fn files_holding(lab: &Lab, host: &str, dirs: &[&str], needle: &str) -> Vec<String> {
    fn walk(dir: &Path, on_host: &str, needle: &str, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let inside = format!("{on_host}/{name}");
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &inside, needle, found);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
            {
                found.push(inside);
            }
        }
    }
    let mut found = Vec::new();
    for dir in dirs {
        let local = lab.host(host).path(dir).expect("private path");
        walk(&local, dir, needle, &mut found);
    }
    found
}

#[test]
fn a_world_readable_config_is_narrowed_before_it_holds_secrets() {
    secrets_on_the_hosts(
        Spec::new(2).with(1, Kind::Existing),
        Credentials::InRestateToml,
    );
}

#[test]
fn credentials_in_an_environment_file_stay_out_of_restate_toml() {
    secrets_on_the_hosts(
        Spec::new(2).with(1, Kind::Existing).all_systemd(),
        Credentials::InEnvironmentFile,
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Credentials {
    InRestateToml,
    InEnvironmentFile,
}

const ENVIRONMENT_FILE: &str = "/etc/restate/restate-fleet.env";
const DROP_IN: &str = "/etc/systemd/system/restate.service.d/restate-fleet-environment.conf";

/// An existing node whose operator wrote restate.toml 0644, grown by one node with the S3 secret
/// in the inventory: no process shows it in its command line, and no file on a host that holds
/// it can be read by an unprivileged user there, while both nodes run.
fn secrets_on_the_hosts(spec: Spec, credentials: Credentials) {
    let lab = harness::lab(spec);
    let secret = secret_for(&lab);
    let mut inventory = inventory_with_secret_from_env(&lab);
    if credentials == Credentials::InEnvironmentFile {
        inventory = inventory.replace(
            "[cluster.snapshots]\n",
            "[cluster.snapshots]\ncredentials = \"environment-file\"\n",
        );
    }
    // n2 without the metadata-server role: one that the list does not name would join the
    // metadata cluster by itself and stop n1's restart (issue 17).
    let n2 = format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address);
    let inventory = inventory.replace(&n2, &format!("{n2}{WORKER_ROLES}"));
    set_inventory(&lab, &inventory);
    // As an operator writes it by hand: 0644, no secrets in it yet.
    let n1_config = lab.host("n1").path(CONFIG).expect("path");
    std::fs::set_permissions(&n1_config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let n1_owner = mode_and_owner(&n1_config);

    let watch = ArgvWatch::start(secret.clone());
    let plan = fleet_with_secret(&lab, &secret, &["plan"]);
    assert_exit(&plan, 0, "plan");
    let narrowed = "mode 0644 -> 0640: the file now holds secrets";
    let shown = match credentials {
        Credentials::InRestateToml => narrowed,
        Credentials::InEnvironmentFile => {
            "+RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY=\"<redacted>\""
        }
    };
    assert!(
        printed(&plan).contains(shown),
        "plan shows {shown}:\n{}",
        printed(&plan)
    );
    let apply = fleet_with_secret(&lab, &secret, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply");
    assert_eq!(
        printed(&apply).contains(narrowed),
        credentials == Credentials::InRestateToml,
        "the recap names a narrowing, and only when the file gets secrets:\n{}",
        printed(&apply)
    );
    restatectl_until(&lab, "n2", &["status"], Duration::from_secs(60), |out| {
        out.contains(" n1 ") && out.contains(" n2 ") && !out.contains("offline")
    });
    let (samples, seen) = watch.finish();
    assert!(samples > 10, "the watcher sampled ({samples} times)");
    // With the environment file, restate-server's own environment holds the secret by design
    // (readable by root and its user only, checked below); nothing else may.
    let seen: Vec<&String> = seen
        .iter()
        .filter(|s| {
            credentials == Credentials::InRestateToml
                || !(s.starts_with("environment of ") && s.contains("restate-server"))
        })
        .collect();
    assert!(
        seen.is_empty(),
        "the secret in a command line or a host's environment: {seen:?}"
    );
    let n1_access = match credentials {
        Credentials::InRestateToml => (0o640, n1_owner.1, n1_owner.2),
        Credentials::InEnvironmentFile => n1_owner,
    };
    assert_eq!(mode_and_owner(&n1_config), n1_access, "n1's restate.toml");

    // No file on either host that holds the secret can be read by an unprivileged user there,
    // nor can the server's environment.
    for host in ["n1", "n2"] {
        let holding = files_holding(
            &lab,
            host,
            &["/etc/restate", "/var/lib/restate-fleet"],
            &secret,
        );
        let (holds, not) = match credentials {
            Credentials::InRestateToml => (CONFIG, ENVIRONMENT_FILE),
            Credentials::InEnvironmentFile => (ENVIRONMENT_FILE, CONFIG),
        };
        assert!(
            holding.iter().any(|f| f == holds) && !holding.iter().any(|f| f == not),
            "{host}: {holds} holds the secret, {not} does not: {holding:?}"
        );
        let unreadable = holding.clone();
        if credentials == Credentials::InEnvironmentFile {
            let drop_in = std::fs::read_to_string(lab.host(host).path(DROP_IN).expect("path"))
                .unwrap_or_default();
            assert!(
                drop_in.contains(&format!("EnvironmentFile={ENVIRONMENT_FILE}")),
                "{host}: the unit's drop-in names the file: {drop_in:?}"
            );
            // The machine's pid: read from outside the host, as `nobody` (no ptrace access).
            let pid = lab.host(host).restate_pid().expect("restate-server runs");
            let environ = format!("/proc/{pid}/environ");
            let as_root = std::fs::read(&environ).unwrap_or_default();
            assert!(
                String::from_utf8_lossy(&as_root).contains(&secret),
                "{host}: restate-server got the secret from the environment file"
            );
            let read = Command::new("runuser")
                .args(["-u", "nobody", "--", "cat", &environ])
                .output()
                .expect("runuser runs");
            assert!(
                !read.status.success() && !String::from_utf8_lossy(&read.stdout).contains(&secret),
                "{host}: nobody can read restate-server's environment"
            );
        }
        for file in &unreadable {
            let read = lab
                .host(host)
                .command(&["runuser", "-u", "nobody", "--", "cat", file])
                .output()
                .expect("runuser runs");
            assert!(
                !read.status.success() && !String::from_utf8_lossy(&read.stdout).contains(&secret),
                "{host}: nobody can read {file}"
            );
        }
    }
}

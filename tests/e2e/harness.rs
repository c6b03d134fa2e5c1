//! What every end-to-end test shares: bringing a lab up (after clearing labs that killed test runs
//! left behind) and running the workspace's binaries.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab::{Lab, Spec};

/// Brings a lab up or fails the test with the reason. The lab is torn down when dropped.
pub fn lab(spec: Spec) -> Lab {
    assert!(
        is_root(),
        "the end-to-end tests build network namespaces: run them as root"
    );
    for id in lab::gc() {
        eprintln!("removed lab {id} left behind by an earlier run");
    }
    match Lab::up(spec) {
        Ok(lab) => lab,
        Err(err) => panic!("lab did not come up: {err:#}"),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `ssh` (OpenSSH's client) to a lab host with the lab's key and known_hosts, host key checking
/// strict.
pub fn ssh(lab: &Lab, host: &str, remote: &str) -> Output {
    ssh_with_input(lab, host, remote, &[])
}

/// Like [`ssh`], logged in as `user` instead of root.
pub fn ssh_as(lab: &Lab, host: &str, user: &str, remote: &str) -> Output {
    ssh_run(lab, host, &["-l", user], remote, &[])
}

/// Like [`ssh`], feeding `input` to the remote command's stdin.
pub fn ssh_with_input(lab: &Lab, host: &str, remote: &str, input: &[u8]) -> Output {
    ssh_run(lab, host, &[], remote, input)
}

fn ssh_run(lab: &Lab, host: &str, options: &[&str], remote: &str, input: &[u8]) -> Output {
    let mut child = Command::new("ssh")
        .arg("-F")
        .arg(lab.dir().join("ssh_config"))
        .args(options)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            host,
            remote,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh client runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write to ssh");
    }
    child.wait_with_output().expect("ssh client ends")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs restatectl until its output (stdout and stderr) satisfies `done`, for answers that lag a
/// restart by a moment (an admin node reports no nodes for ~1.5 s after it starts). Fails the test
/// with the last output after `timeout`.
pub fn restatectl_until(
    lab: &Lab,
    host: &str,
    args: &[&str],
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = match lab.restatectl(host, args) {
            Ok(out) => format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr)),
            Err(err) => format!("{err:#}"),
        };
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "restatectl {} on {host} after {timeout:?}:\n{text}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `restate-fleet` on the lab's inventory and known_hosts, with `args` after them.
pub fn fleet(lab: &Lab, args: &[&str]) -> Output {
    fleet_with(lab, &lab.inventory_path(), args)
}

/// Like [`fleet`] with another inventory file.
pub fn fleet_with(lab: &Lab, inventory: &std::path::Path, args: &[&str]) -> Output {
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    fleet_command(&binary, lab, inventory, args)
        .output()
        .expect("restate-fleet runs")
}

/// `binary` (a restate-fleet) on `inventory` and the lab's known_hosts, stdin closed. On a lab
/// that keeps restatectl on the laptop alone, the coordinator finds it on its PATH.
pub fn fleet_command(
    binary: &std::path::Path,
    lab: &Lab,
    inventory: &std::path::Path,
    args: &[&str],
) -> Command {
    let laptop_bin = lab.laptop_bin().expect("the laptop's restatectl folder");
    let mut command = bare_fleet_command(binary, lab, inventory, args);
    if let Some(bin) = laptop_bin {
        let path = std::env::join_paths(std::iter::once(bin).chain(path_without_restatectl()))
            .expect("PATH entries join");
        command.env("PATH", path);
    }
    command
}

fn bare_fleet_command(
    binary: &std::path::Path,
    lab: &Lab,
    inventory: &std::path::Path,
    args: &[&str],
) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("-i")
        .arg(inventory)
        .arg("--known-hosts")
        .arg(lab.known_hosts_path())
        .args(args)
        .env("XDG_STATE_HOME", lab.state_home())
        .stdin(Stdio::null());
    command
}

/// This process's PATH without any folder that holds a restatectl.
fn path_without_restatectl() -> Vec<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.join("restatectl").exists())
        .collect()
}

/// [`fleet`] with no restatectl on the coordinator's PATH (and, on a lab that keeps restatectl
/// on the laptop alone, none anywhere).
pub fn fleet_without_restatectl(lab: &Lab, args: &[&str]) -> Output {
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    let path = std::env::join_paths(path_without_restatectl()).expect("PATH entries join");
    bare_fleet_command(&binary, lab, &lab.inventory_path(), args)
        .env("PATH", path)
        .output()
        .expect("restate-fleet runs")
}

/// Fails the test with everything the command printed unless it exited with `code`.
pub fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

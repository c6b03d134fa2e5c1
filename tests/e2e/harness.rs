//! What every end-to-end test shares: bringing a lab up (after clearing labs that killed test runs
//! left behind) and running the workspace's binaries.

use std::process::{Command, Output};

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
    Command::new("ssh")
        .arg("-F")
        .arg(lab.dir().join("ssh_config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            host,
            remote,
        ])
        .output()
        .expect("ssh client runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

//! Bad input, end to end through the binary: a broken inventory (exit 2, file:line:col), hosts
//! that must not be touched (a restate.toml that does not parse, data of another cluster, a
//! node-name a live node holds, a restate-server older than 1.4.0), replication the fleet cannot
//! hold, and SSH that does not let us in (changed host key, wrong user, refused key, sudo asking
//! for a password). Each is a clear error naming the file or host, and nothing changes anywhere.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{config_of, footprint, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet};

/// `inventory.toml:LINE:COL` somewhere in `text`.
fn points_into_the_inventory(text: &str) -> bool {
    text.match_indices("inventory.toml:").any(|(at, m)| {
        let rest = &text[at + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let column: String = parts
            .next()
            .unwrap_or("")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && !column.is_empty()
    })
}

/// Nothing was uploaded either: the inventory is read before any host is reached.
fn no_agent_anywhere(lab: &Lab) -> bool {
    lab.hosts().iter().all(|h| {
        let dir = h
            .path("/var/lib/restate-fleet/agent")
            .expect("private path");
        std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
    })
}

#[test]
fn broken_inventories_and_hosts_that_must_not_be_touched() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    let original = lab.inventory();
    let before = footprint(&lab);

    let secret_from_env = original.replace(
        &format!("aws-secret-access-key = \"{}\"", lab::s3::SECRET_ACCESS_KEY),
        "aws-secret-access-key = { env = \"RF_E2E_SURELY_UNSET\" }",
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a typo in a host key",
            original.replace("[hosts.n2]\naddress", "[hosts.n2]\nadress"),
            "did you mean `address`",
        ),
        (
            "a file:// snapshot destination",
            original.replace("destination = \"s3://", "destination = \"file:///var/x/"),
            "file://",
        ),
        (
            "replication above the hosts that can hold it",
            original.replace("[cluster]\n", "[cluster]\nreplication = 5\n"),
            "replication 5 needs",
        ),
        (
            "a key restate-fleet manages in [defaults.config]",
            original.replace(
                "[defaults.config]\n",
                "[defaults.config]\nauto-provision = true\n",
            ),
            "managed by restate-fleet",
        ),
        (
            "two hosts with one node-name",
            original.replace(
                &format!("[hosts.n3]\naddress = \"{}\"\n", lab.host("n3").address),
                &format!(
                    "[hosts.n3]\naddress = \"{}\"\nnode-name = \"n2\"\n",
                    lab.host("n3").address
                ),
            ),
            "same node-name",
        ),
        (
            "a secret from an unset environment variable",
            secret_from_env,
            "RF_E2E_SURELY_UNSET",
        ),
        (
            "metadata-servers naming an unknown host",
            original.replace(
                "[cluster]\n",
                "[cluster]\nmetadata-servers = [\"n1\", \"n9\"]\n",
            ),
            "n9",
        ),
        (
            "TOML that does not parse",
            format!("{original}\n[hosts.n4\n"),
            "inventory.toml",
        ),
    ];
    for (what, text, expected) in &cases {
        assert_ne!(text, &original, "{what}: the case changes the inventory");
        set_inventory(&lab, text);
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 2, what);
        let said = printed(&out);
        assert!(said.contains(expected), "{what}: {said}");
        assert!(
            points_into_the_inventory(&said),
            "{what}: no file:line:col in {said}"
        );
    }
    set_inventory(&lab, &original);
    assert_eq!(footprint(&lab), before, "no bad inventory changed anything");
    assert!(no_agent_anywhere(&lab), "no bad inventory reached a host");

    // n2: a restate.toml that does not parse; n3: a restate-server older than 1.4.0.
    let garbage = "cluster-name = \"x\"\n[worker\nnode-name = n2\n";
    std::fs::write(lab.host("n2").path(faults_config()).expect("path"), garbage).expect("write");
    let n3_server = lab
        .host("n3")
        .path("/usr/local/bin/restate-server")
        .expect("path");
    std::fs::remove_file(&n3_server).expect("remove the symlink");
    std::fs::write(&n3_server, "#!/bin/sh\necho 'restate-server 1.3.2'\n").expect("fake");
    chmod_x(&n3_server);
    let before = footprint(&lab);
    for args in [&["check"][..], &["apply", "--yes"][..]] {
        let out = fleet(&lab, args);
        assert_exit(&out, 1, &format!("{args:?} with a broken n2 and an old n3"));
        let said = printed(&out);
        assert!(
            said.lines()
                .any(|l| l.contains("n2") && l.contains("does not parse at line 2")),
            "{said}"
        );
        assert!(
            said.lines()
                .any(|l| l.contains("n3") && l.contains("1.3.2") && l.contains("older than 1.4.0")),
            "{said}"
        );
        assert_eq!(footprint(&lab), before, "{args:?} changed something");
    }
    std::fs::remove_file(lab.host("n2").path(faults_config()).expect("path")).expect("rm");
    std::fs::remove_file(&n3_server).expect("rm fake");
    std::os::unix::fs::symlink(lab::paths::restate_server().expect("server"), &n3_server)
        .expect("restore the symlink");

    // --replication above the number of nodes: refused before anything changes.
    let before = footprint(&lab);
    let out = fleet(&lab, &["apply", "--yes", "--replication", "5"]);
    assert_exit(&out, 1, "apply --replication 5 on three nodes");
    let said = printed(&out);
    assert!(
        said.contains("replication 5") && said.contains("nothing was changed"),
        "{said}"
    );
    assert_eq!(footprint(&lab), before, "--replication 5 changed something");

    // n2 holds data of another cluster (a node started once with another cluster-name).
    let n2 = lab.host("n2");
    let data = "/var/lib/restate/other-data";
    std::fs::write(
        n2.path(faults_config()).expect("path"),
        format!(
            "cluster-name = \"someone-elses\"\nnode-name = \"n2\"\nbase-dir = \"{data}\"\n\
             advertised-address = \"{}\"\nrocksdb-total-memory-size = \"512 MiB\"\n",
            n2.advertised_address()
        ),
    )
    .expect("write");
    n2.start_restate(Duration::from_secs(60))
        .expect("n2 starts alone");
    n2.stop_restate().expect("n2 stops");
    let before = footprint(&lab);
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with n2 holding another cluster's data");
    let said = printed(&out);
    assert!(
        said.lines()
            .any(|l| l.contains("n2") && l.contains("\"someone-elses\"")),
        "{said}"
    );
    assert_eq!(
        footprint(&lab),
        before,
        "another cluster's data: something changed"
    );
    std::fs::remove_file(n2.path(faults_config()).expect("path")).expect("rm");
    std::fs::remove_dir_all(n2.path(data).expect("path")).expect("rm data");

    // A new host whose node-name a live node holds: n1 + n2 form the cluster, then the
    // inventory lists n1 and n3 with node-name "n2" (a replacement machine given a live name).
    // One metadata server: two would be refused (an even count cannot lose one).
    let without_n3 = original
        .replace(
            &format!("\n[hosts.n3]\naddress = \"{}\"\n", lab.host("n3").address),
            "\n",
        )
        .replace("[cluster]\n", "[cluster]\nmetadata-servers = [\"n1\"]\n")
        .replace(
            &n2_table(&lab),
            &format!("{}{WORKER_ROLES}", n2_table(&lab)),
        );
    set_inventory(&lab, &without_n3);
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "n1 + n2");
    let n2_address = format!("\n{}{WORKER_ROLES}", n2_table(&lab));
    let taken = without_n3.replace(
        &n2_address,
        &format!(
            "\n[hosts.n3]\naddress = \"{}\"\nnode-name = \"n2\"\n{WORKER_ROLES}",
            lab.host("n3").address
        ),
    );
    set_inventory(&lab, &taken);
    let before = footprint(&lab);
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with n3 named like the live n2");
    let said = printed(&out);
    assert!(
        said.lines()
            .any(|l| l.contains("n3") && l.contains("taken by live node")),
        "{said}"
    );
    assert_eq!(
        footprint(&lab),
        before,
        "a taken node-name: something changed"
    );
    assert!(config_of(&lab, "n3").is_none());
}

/// Roles without metadata-server: a metadata-server node joins the metadata cluster by itself,
/// and two members could not lose one for n1's restart.
pub const WORKER_ROLES: &str =
    "roles = [\"worker\", \"admin\", \"log-server\", \"http-ingress\"]\n";

pub fn n2_table(lab: &Lab) -> String {
    format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address)
}

fn faults_config() -> &'static str {
    crate::faults::CONFIG
}

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A throwaway local user for the sudo case; removed when dropped (also on failure). The lab
/// shares /etc/passwd with the machine, so the name is unique to this process.
struct TestUser(String);

impl TestUser {
    fn create() -> TestUser {
        let name = format!("rfe2e{}", std::process::id());
        let ok = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", &name])
            .status()
            .expect("useradd runs");
        assert!(ok.success(), "useradd {name}");
        let user = TestUser(name);
        // Not locked (sshd without PAM refuses locked accounts), yet no password sudo could take.
        let ok = Command::new("usermod")
            .args(["-p", "*", &user.0])
            .status()
            .expect("usermod runs");
        assert!(ok.success(), "usermod {}", user.0);
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its sessions may still be ending: retry for a moment.
        for _ in 0..20 {
            let removed = Command::new("userdel").args(["-f", &self.0]).status();
            if removed.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("could not remove test user {}: remove it by hand", self.0);
    }
}

fn other_key(lab: &Lab) -> std::path::PathBuf {
    let key = lab.dir().join("other_ed25519");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(ok.success());
    key
}

#[test]
fn ssh_that_does_not_let_us_in_is_named_and_changes_nothing() {
    let lab = harness::lab(Spec::new(2));
    let original = lab.inventory();
    let n2_table = format!("[hosts.n2]\naddress = \"{}\"\n", lab.host("n2").address);
    let for_n2 = |extra: &str| original.replace(&n2_table, &format!("{n2_table}{extra}"));
    let before = footprint(&lab);
    let key = other_key(&lab);

    // A host key that changed: n2's line in known_hosts holds another key.
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub key");
    let other: Vec<&str> = public.split_whitespace().take(2).collect();
    let known = std::fs::read_to_string(lab.known_hosts_path()).expect("known_hosts");
    let n2_line = lab.host("n2").known_hosts_line.clone();
    let changed = known.replace(
        &n2_line,
        &format!("{} {}", lab.host("n2").address, other.join(" ")),
    );
    let changed_file = lab.dir().join("known_hosts.changed");
    std::fs::write(&changed_file, changed).expect("write");
    let binary = lab::paths::workspace_binary("restate-fleet").expect("built");
    let out = Command::new(&binary)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--known-hosts")
        .arg(&changed_file)
        .args(["apply", "--yes"])
        .output()
        .expect("runs");
    assert_exit(&out, 1, "a changed host key");
    let said = printed(&out);
    assert!(
        said.contains("n2") && said.contains("HOST KEY CHANGED"),
        "{said}"
    );

    let cases = [
        (
            "a wrong user",
            for_n2("user = \"rf-no-such-user\"\n"),
            "rf-no-such-user",
        ),
        (
            "a key the host does not accept",
            for_n2(&format!("identity-file = \"{}\"\n", key.display())),
            "authentication",
        ),
    ];
    for (what, text, expected) in &cases {
        set_inventory(&lab, text);
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 1, what);
        let said = printed(&out);
        assert!(
            said.lines()
                .any(|l| l.contains("n2") && l.contains(expected)),
            "{what}: {said}"
        );
        assert!(said.contains("nothing was changed"), "{what}: {said}");
    }

    // sudo that wants a password: a non-root user with become = true.
    let user = TestUser::create();
    set_inventory(
        &lab,
        &for_n2(&format!("user = \"{}\"\nbecome = true\n", user.0)),
    );
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "sudo wanting a password");
    let said = printed(&out);
    assert!(
        said.lines().any(|l| l.contains("n2") && l.contains("sudo")),
        "{said}"
    );
    set_inventory(&lab, &original);
    assert_eq!(footprint(&lab), before, "an SSH problem changed something");
}

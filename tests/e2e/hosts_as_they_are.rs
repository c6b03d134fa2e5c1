//! Hosts as operators have them: a deploy user with sudo instead of root, whose login shell is
//! bash, dash, zsh or fish, whose rc files print banners on stdout and stderr and set a umask of
//! 077 or 027, and whose sudo insists on a terminal (`requiretty`), lectures, warns that it cannot
//! resolve the host name, and has a `secure_path` without `/usr/local/bin`. A cluster grows
//! across all of them, restatectl sees it, and a re-run restarts nothing.

use std::os::unix::fs::MetadataExt;

use lab::user::UserSpec;
use lab::{Kind, Lab, Spec};

use crate::faults::{assert_cluster_of, assert_rerun_changes_nothing, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet};

const BANNER: &str = "Welcome: authorized use only";
const WARNING: &str = "warning: quota nearly full";

/// An rc file that prints on both streams and sets `umask`, as corporate images have them.
fn noisy(umask: &str) -> String {
    format!("echo '{BANNER}'\necho '{WARNING}' >&2\numask {umask}\n")
}

fn user(tag: &str, shell: &str, files: &[(&str, String)], sudo: &[&str]) -> UserSpec {
    UserSpec {
        tag: tag.into(),
        shell: shell.into(),
        files: files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), text.clone()))
            .collect(),
        sudo_defaults: sudo.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The lab's inventory with each host reached as `users[i]` through sudo.
fn inventory_with_users(lab: &Lab, users: &[(&str, String)]) -> String {
    let mut text = lab.inventory();
    for (host, user) in users {
        let section = format!("[hosts.{host}]\n");
        assert!(text.contains(&section), "{text}");
        text = text.replace(
            &section,
            &format!("{section}user = \"{user}\"\nbecome = true\n"),
        );
    }
    text
}

#[test]
fn a_cluster_grows_across_noisy_shells_strict_sudo_and_tight_umasks() {
    let mut lab = harness::lab(Spec::new(4).with(1, Kind::Existing));
    // Debian's .bashrc returns early for non-interactive shells; banners come before that line.
    let bashrc = format!("{}case $- in *i*) ;; *) return;; esac\n", noisy("077"));
    let strict = [
        "requiretty",
        "lecture=always",
        "secure_path=\"/usr/sbin:/usr/bin:/sbin:/bin\"",
    ];
    let specs = [
        ("n1", user("bash", "/bin/bash", &[(".bashrc", bashrc)], &[])),
        ("n2", user("dash", "/bin/dash", &[], &["requiretty"])),
        (
            "n3",
            user(
                "zsh",
                "/usr/bin/zsh",
                &[(".zshenv", noisy("027"))],
                &[strict[2]],
            ),
        ),
        (
            "n4",
            user(
                "fish",
                "/usr/bin/fish",
                &[(".config/fish/config.fish", noisy("077"))],
                &strict,
            ),
        ),
    ];
    let mut users = Vec::new();
    for (host, spec) in &specs {
        let made = lab.add_user(spec).expect("lab user");
        users.push((*host, made.name));
    }
    set_inventory(&lab, &inventory_with_users(&lab, &users));

    // The variations are real: a plain ssh login as n4's user shows the banner and the warning,
    // and sudo without a terminal is refused there.
    let probe = harness::ssh_as(&lab, "n4", &users[3].1, "sudo -n true");
    let said = printed(&probe);
    assert!(said.contains(BANNER) && said.contains(WARNING), "{said}");
    assert!(
        !probe.status.success(),
        "requiretty is in force on n4: {said}"
    );

    let check = fleet(&lab, &["check"]);
    assert_exit(&check, 0, "check across hostile hosts");
    let apply = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&apply, 0, "apply across hostile hosts");
    assert!(
        !printed(&apply).contains(BANNER),
        "a banner leaked into the output:\n{}",
        printed(&apply)
    );
    assert_cluster_of(&lab, "n3", &["n1", "n2", "n3", "n4"]);

    // The logins' umask (077, 027) does not reach what the agent creates: the node lock file
    // it makes beside restate.toml gets the agent's own 0644 (0600 or 0640 if the umask leaked).
    for host in ["n1", "n3", "n4"] {
        let lock = lab
            .host(host)
            .path("/etc/restate/.restate-fleet.lock")
            .expect("path");
        let mode = std::fs::metadata(&lock).expect("lock file made").mode() & 0o777;
        assert_eq!(
            mode, 0o644,
            "{host}: the lock file's mode shows the login's umask"
        );
    }

    assert_rerun_changes_nothing(&lab, "re-run across hostile hosts");
}

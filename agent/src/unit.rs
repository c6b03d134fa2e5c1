//! The systemd unit restate-fleet writes for restate-server when a node has none, and where units
//! are looked for.

use std::path::{Path, PathBuf};

use restate_fleet_proto::agent::{AgentError, ErrorKind};

/// Where systemd loads system units from, most specific first; the first is where a new one goes.
pub const UNIT_DIRS: [&str; 3] = [
    "etc/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
];

/// Marks units restate-fleet wrote, for whoever reads the file later.
pub const WRITTEN_BY: &str = "# Written by restate-fleet; it never overwrites an existing unit.";

/// What the unit runs.
pub struct UnitSpec<'a> {
    pub binary: &'a Path,
    pub config_path: &'a Path,
    pub data_dir: &'a Path,
    pub user: Option<&'a str>,
    pub nofile: u64,
}

/// The unit file named `unit` under `root`, if any unit directory has one.
pub fn find(root: &Path, unit: &str) -> Option<PathBuf> {
    UNIT_DIRS
        .iter()
        .map(|dir| root.join(dir).join(unit))
        .find(|path| path.exists())
}

/// Where a new unit named `unit` is written.
pub fn new_unit_path(root: &Path, unit: &str) -> PathBuf {
    root.join(UNIT_DIRS[0]).join(unit)
}

pub fn check_unit_name(unit: &str) -> Result<(), AgentError> {
    let stem = unit.strip_suffix(".service").unwrap_or_default();
    let valid = !stem.is_empty()
        && !stem.ends_with('@')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.@-".contains(&b));
    if valid {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::BadRequest,
        format!("`{unit}` is not a systemd service unit name"),
    )
    .with_hint("use a name like restate.service (letters, digits, `:_.@-`, ending in .service)"))
}

/// Paths go into the unit as they are, so anything systemd would read differently is refused.
pub fn check_path(what: &str, path: &Path) -> Result<(), AgentError> {
    let text = path.to_str().unwrap_or_default();
    let valid = path.is_absolute()
        && !text.is_empty()
        && !text.chars().any(char::is_control)
        && !text.ends_with(char::is_whitespace);
    if valid {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::BadRequest,
        format!("{what} {path:?} cannot go into a systemd unit"),
    )
    .with_hint("use an absolute UTF-8 path without control characters or trailing spaces"))
}

pub fn render(spec: &UnitSpec<'_>) -> String {
    let exec = [
        spec.binary.to_string_lossy().as_ref(),
        "--config-file",
        spec.config_path.to_string_lossy().as_ref(),
    ]
    .map(quote)
    .join(" ");
    let account = spec
        .user
        .map(|user| format!("User={user}\nGroup={user}\n"))
        .unwrap_or_default();
    format!(
        "{WRITTEN_BY}\n\
         [Unit]\n\
         Description=Restate server\n\
         Documentation=https://docs.restate.dev/\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         {account}\
         WorkingDirectory={dir}\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         LimitNOFILE={nofile}\n\
         # Long enough for a clean shutdown of a loaded node (flushes, leaving the metadata cluster).\n\
         TimeoutStopSec=120\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        dir = specifiers(&spec.data_dir.to_string_lossy()),
        nofile = spec.nofile,
    )
}

/// `%` starts a specifier in every unit setting.
fn specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// One ExecStart word: double-quoted, with systemd's escapes, specifiers and `$` variables kept
/// literal.
fn quote(word: &str) -> String {
    let escaped = specifiers(word)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(user: Option<&'a str>) -> UnitSpec<'a> {
        UnitSpec {
            binary: Path::new("/usr/local/bin/restate-server"),
            config_path: Path::new("/etc/restate/restate.toml"),
            data_dir: Path::new("/var/lib/restate"),
            user,
            nofile: 65536,
        }
    }

    #[test]
    fn renders_every_setting() {
        let text = render(&spec(Some("restate")));
        for line in [
            "After=network-online.target",
            "Wants=network-online.target",
            "User=restate",
            "Group=restate",
            "WorkingDirectory=/var/lib/restate",
            "ExecStart=\"/usr/local/bin/restate-server\" \"--config-file\" \"/etc/restate/restate.toml\"",
            "Restart=on-failure",
            "LimitNOFILE=65536",
            "TimeoutStopSec=120",
            "WantedBy=multi-user.target",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!render(&spec(None)).contains("User="));
    }

    #[test]
    fn odd_characters_stay_literal() {
        let text = render(&UnitSpec {
            config_path: Path::new("/etc/my \"restate\" $HOME/100%.toml"),
            data_dir: Path::new("/srv/50%"),
            ..spec(None)
        });
        assert!(
            text.contains(r#""--config-file" "/etc/my \"restate\" $$HOME/100%%.toml""#),
            "{text}"
        );
        assert!(text.contains("WorkingDirectory=/srv/50%%\n"), "{text}");
    }

    #[test]
    fn names_and_paths_are_checked() {
        for good in [
            "restate.service",
            "restate@a.service",
            "my_restate-2.service",
        ] {
            assert!(check_unit_name(good).is_ok(), "{good}");
        }
        for bad in [
            "restate",
            ".service",
            "a/b.service",
            "x@.service",
            "a b.service",
            "-",
        ] {
            assert_eq!(
                check_unit_name(bad).unwrap_err().kind,
                ErrorKind::BadRequest,
                "{bad}"
            );
        }
        assert!(check_path("binary", Path::new("/usr/local/bin/restate-server")).is_ok());
        for bad in ["relative/bin", "/a\nExecStartPre=/bin/evil", "/trailing "] {
            assert!(check_path("binary", Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    /// systemd's own parser on the rendered unit: any complaint (unknown key, bad value, bad
    /// quoting, a binary it cannot execute) fails the test.
    #[test]
    fn systemd_analyze_verify_accepts_the_unit() {
        let analyze = Path::new("/usr/bin/systemd-analyze");
        if !analyze.exists() {
            eprintln!("skipped: {} is not installed", analyze.display());
            return;
        }
        let dir = std::env::temp_dir().join(format!("rfa-unit-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Odd but legal characters, to check the quoting as systemd reads it.
        let bin_dir = dir.join("bin 100%");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let binary = bin_dir.join("restate-server");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for user in [Some("restate"), None] {
            let unit = dir.join("restate.service");
            std::fs::write(
                &unit,
                render(&UnitSpec {
                    binary: &binary,
                    config_path: Path::new("/etc/restate/my $config.toml"),
                    ..spec(user)
                }),
            )
            .unwrap();
            let out = std::process::Command::new(analyze)
                .arg("verify")
                .arg(&unit)
                .output()
                .unwrap();
            let complaints = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && complaints.trim().is_empty(),
                "systemd-analyze verify: {:?}\n{complaints}\n{}",
                out.status,
                std::fs::read_to_string(&unit).unwrap()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_units_in_every_directory_and_writes_to_etc() {
        let root = std::env::temp_dir().join(format!("rfa-unit-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(find(&root, "restate.service"), None);
        let vendor = root.join("usr/lib/systemd/system/restate.service");
        std::fs::create_dir_all(vendor.parent().unwrap()).unwrap();
        std::fs::write(&vendor, "[Service]\n").unwrap();
        assert_eq!(find(&root, "restate.service"), Some(vendor));
        assert_eq!(
            new_unit_path(&root, "restate.service"),
            root.join("etc/systemd/system/restate.service")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}

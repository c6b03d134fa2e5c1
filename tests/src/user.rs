//! Login users on lab hosts, as operators have them: a deploy user with passwordless sudo, its
//! own login shell and rc files, and sudoers defaults of its own. Lab hosts share the machine's
//! `/etc/passwd` and `/etc/sudoers.d`, so a user's name carries the lab's id, and the lab records
//! every user and sudoers file it made and removes them on teardown (also after a killed test,
//! through `restate-lab gc`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// What a user looks like.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    /// Part of the name (`rfl<lab id><tag>`): a few lowercase letters.
    pub tag: String,
    /// Login shell, e.g. `/usr/bin/fish`.
    pub shell: String,
    /// Files in the home directory (relative path, content), such as `.bashrc`.
    pub files: Vec<(String, String)>,
    /// Options for a `Defaults:<user>` line in the user's sudoers file (`requiretty`,
    /// `secure_path="/usr/bin:/bin"`); the file always grants `NOPASSWD: ALL`.
    pub sudo_defaults: Vec<String>,
}

/// A user made for a lab, as recorded in its state so that teardown removes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LabUser {
    pub name: String,
    pub home: PathBuf,
    pub sudoers: PathBuf,
}

impl LabUser {
    /// The names a lab's user gets: `rfl<lab id><tag>`, its home under `homes`, its sudoers file.
    pub fn named(lab_id: &str, homes: &Path, spec: &UserSpec) -> Result<LabUser> {
        if spec.tag.is_empty() || !spec.tag.bytes().all(|b| b.is_ascii_lowercase()) {
            bail!(
                "a lab user's tag is a few lowercase letters, not {:?}",
                spec.tag
            );
        }
        let name = format!("rfl{lab_id}{}", spec.tag);
        Ok(LabUser {
            sudoers: PathBuf::from(format!("/etc/sudoers.d/restate-lab-{name}")),
            home: homes.join(&name),
            name,
        })
    }
}

/// Creates `user`: account (unlocked, no password), home, rc files, sudoers file.
pub fn create(user: &LabUser, spec: &UserSpec) -> Result<()> {
    if !Path::new(&spec.shell).is_file() {
        bail!(
            "login shell {} is not installed (scripts/install-deps installs dash, zsh and fish)",
            spec.shell
        );
    }
    cmd::run(
        "useradd",
        [
            "-M",
            "-d",
            &user.home.to_string_lossy(),
            "-s",
            &spec.shell,
            &user.name,
        ],
    )?;
    // Not locked (sshd refuses locked accounts), yet no password anybody could type.
    cmd::run("usermod", ["-p", "*", &user.name])?;
    fs::create_dir_all(&user.home)?;
    for (relative, content) in &spec.files {
        let path = user.home.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    cmd::run(
        "chown",
        [
            "-R",
            &format!("{0}:{0}", user.name),
            &user.home.to_string_lossy(),
        ],
    )?;
    fs::set_permissions(&user.home, fs::Permissions::from_mode(0o750))?;

    let mut sudoers = format!("{} ALL=(ALL:ALL) NOPASSWD: ALL\n", user.name);
    if !spec.sudo_defaults.is_empty() {
        sudoers.push_str(&format!(
            "Defaults:{} {}\n",
            user.name,
            spec.sudo_defaults.join(", ")
        ));
    }
    let staged = user.home.with_extension("sudoers");
    fs::write(&staged, &sudoers)?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o440))?;
    cmd::run("visudo", ["-c", "-q", "-f", &staged.to_string_lossy()])
        .with_context(|| format!("sudoers lines for {} do not parse:\n{sudoers}", user.name))?;
    fs::rename(&staged, &user.sudoers)
        .or_else(|_| fs::copy(&staged, &user.sudoers).map(drop))
        .with_context(|| format!("cannot install {}", user.sudoers.display()))?;
    Ok(())
}

/// Removes the sudoers file and the account; never fails: what it cannot remove it says.
pub fn remove(user: &LabUser) {
    if let Err(err) = fs::remove_file(&user.sudoers)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!(
            "lab teardown: cannot remove {}: {err}",
            user.sudoers.display()
        );
    }
    // Its last sessions may still be ending: retry for a moment.
    for _ in 0..20 {
        let removed = std::process::Command::new("userdel")
            .args(["-f", &user.name])
            .stderr(std::process::Stdio::null())
            .status();
        if removed.is_ok_and(|s| s.success()) || !exists(&user.name) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "lab teardown: cannot remove user {}: userdel -f it by hand",
        user.name
    );
}

fn exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .map(|passwd| passwd.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

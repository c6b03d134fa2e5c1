//! `ensure_service`: what a fresh machine needs before restate-server can run as a service. Each
//! step looks first and changes only what is missing; nothing existing is overwritten.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use restate_fleet_proto::agent::{
    AgentError, ErrorKind, ServiceManager, ServiceSetup, ServiceSetupReport, is_portable_user_name,
};

use crate::host::{self, Account};
use crate::unit::{self, UnitSpec};
use crate::{files, service};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The parts of the machine `ensure_service` touches that tests replace.
pub struct System {
    /// Prefix of the systemd unit directories: `/` on a node.
    pub root: PathBuf,
    /// The `systemctl` argv prefix.
    pub systemctl: Vec<String>,
}

impl System {
    pub fn host() -> Self {
        System {
            root: PathBuf::from("/"),
            systemctl: vec!["systemctl".into()],
        }
    }

    /// The `WorkingDirectory=` of `unit`, when it sets an absolute one.
    pub fn unit_working_dir(&self, unit: &str) -> Option<PathBuf> {
        let mut argv = self.systemctl.clone();
        argv.extend(["show", "--property", "WorkingDirectory", "--value", unit].map(String::from));
        let done = service::run(&argv, COMMAND_TIMEOUT).ok()?;
        let dir = PathBuf::from(done.stdout.trim());
        (done.success && dir.is_absolute()).then_some(dir)
    }

    /// Runs `systemctl ARGS`; a failure names the command.
    /// Whether `systemctl is-enabled` says `disabled` (the unit exists and will not start at
    /// boot).
    pub fn unit_disabled(&self, unit: &str) -> bool {
        let mut argv = self.systemctl.clone();
        argv.extend(["is-enabled", unit].map(String::from));
        service::run(&argv, COMMAND_TIMEOUT).is_ok_and(|done| done.stdout.trim() == "disabled")
    }

    pub fn systemctl(&self, args: &[&str]) -> Result<(), AgentError> {
        let argv: Vec<String> = self
            .systemctl
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        run(&argv)
    }
}

/// Collects what was done, or in a dry run what would be.
struct Log {
    report: ServiceSetupReport,
}

impl Log {
    fn change(&mut self, what: String) {
        self.report.changed = true;
        let prefix = if self.report.dry_run { "would " } else { "" };
        self.report.actions.push(format!("{prefix}{what}"));
    }

    fn found(&mut self, what: String) {
        self.report.actions.push(what);
    }
}

pub fn ensure(setup: &ServiceSetup, system: &System) -> Result<ServiceSetupReport, AgentError> {
    check(setup)?;
    let mut log = Log {
        report: ServiceSetupReport {
            changed: false,
            dry_run: setup.dry_run,
            unit_path: None,
            unit_written: false,
            actions: Vec::new(),
        },
    };
    let account = match setup.user.as_deref() {
        Some(user) => ensure_user(user, &setup.data_dir, &mut log)?,
        None => None,
    };
    ensure_data_dir(setup, account, &mut log)?;
    if let (Some(user), Some(account)) = (setup.user.as_deref(), account) {
        ensure_config_readable(&setup.config_path, user, account, &mut log)?;
    }
    if let ServiceManager::Systemd { unit } = &setup.service {
        ensure_unit(setup, unit, system, &mut log)?;
    }
    Ok(log.report)
}

/// Everything that goes into a command line or a unit is checked before anything changes.
fn check(setup: &ServiceSetup) -> Result<(), AgentError> {
    unit::check_path("binary", &setup.binary)?;
    unit::check_path("config path", &setup.config_path)?;
    unit::check_path("data directory", &setup.data_dir)?;
    if let ServiceManager::Systemd { unit } = &setup.service {
        unit::check_unit_name(unit)?;
    }
    if let Some(user) = &setup.user {
        check_user_name(user)?;
    }
    Ok(())
}

fn check_user_name(user: &str) -> Result<(), AgentError> {
    if is_portable_user_name(user) {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::BadRequest,
        format!("`{user}` is not a valid system user name"),
    )
    .with_hint("use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. restate"))
}

/// `None` only in a dry run for a user that does not exist yet.
fn ensure_user(user: &str, data_dir: &Path, log: &mut Log) -> Result<Option<Account>, AgentError> {
    if let Some(account) = host::account(user) {
        log.found(format!(
            "system user {user} exists (uid {}, gid {})",
            account.uid, account.gid
        ));
        return Ok(Some(account));
    }
    log.change(format!("create system user {user}"));
    if log.report.dry_run {
        return Ok(None);
    }
    // Its home is the data directory, made below with the right owner, not useradd's skeleton.
    let argv = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        &data_dir.to_string_lossy(),
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Restate server",
        "--",
        user,
    ]
    .map(String::from);
    run(&argv)?;
    host::account(user).map(Some).ok_or_else(|| {
        AgentError::new(
            ErrorKind::Service,
            format!("useradd succeeded but user {user} cannot be found afterwards"),
        )
        .with_hint("check the system's user database (nsswitch.conf)")
    })
}

fn ensure_data_dir(
    setup: &ServiceSetup,
    account: Option<Account>,
    log: &mut Log,
) -> Result<(), AgentError> {
    let dir = &setup.data_dir;
    let owner = setup.user.as_deref().unwrap_or("root");
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log.change(format!(
                "create data directory {} owned by {owner}, mode 0750",
                dir.display()
            ));
            if !log.report.dry_run {
                if let Some(parent) = dir.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| files::io_error("create the directory", parent, &e))?;
                }
                DirBuilder::new()
                    .mode(0o750)
                    .create(dir)
                    .map_err(|e| files::io_error("create the data directory", dir, &e))?;
                if let Some(account) = account {
                    chown(dir, Some(account.uid), Some(account.gid))?;
                }
            }
            return Ok(());
        }
        Err(e) => return Err(files::io_error("stat the data directory", dir, &e)),
    };
    if !meta.is_dir() {
        return Err(AgentError::new(
            ErrorKind::Unsupported,
            format!("data directory {} is not a directory", dir.display()),
        )
        .with_path(dir)
        .with_hint("remove it or choose another data directory"));
    }
    let Some(account) = account.filter(|a| a.uid != meta.uid()) else {
        log.found(format!("data directory {} exists", dir.display()));
        return Ok(());
    };
    let empty = fs::read_dir(dir)
        .map_err(|e| files::io_error("list the data directory", dir, &e))?
        .next()
        .is_none();
    if !empty {
        return Err(AgentError::new(
            ErrorKind::Unsupported,
            format!(
                "data directory {} has data owned by uid {}, but the service runs as {owner}",
                dir.display(),
                meta.uid()
            ),
        )
        .with_path(dir)
        .with_hint(format!(
            "stop the node and `chown -R {owner}: {}` by hand, or drop `user` from the inventory's service",
            dir.display()
        )));
    }
    log.change(format!(
        "give the empty data directory {} to {owner}",
        dir.display()
    ));
    if !log.report.dry_run {
        chown(dir, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

/// The config stays root's; the user reads it through its group.
fn ensure_config_readable(
    config: &Path,
    user: &str,
    account: Account,
    log: &mut Log,
) -> Result<(), AgentError> {
    let meta = match fs::metadata(config) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log.found(format!(
                "config {} does not exist yet: call again once it is written",
                config.display()
            ));
            return Ok(());
        }
        Err(e) => return Err(files::io_error("stat the config file", config, &e)),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let readable = (meta.uid() == account.uid && mode & 0o400 != 0)
        || (meta.gid() == account.gid && mode & 0o040 != 0)
        || mode & 0o004 != 0;
    if readable {
        log.found(format!("config {} is readable by {user}", config.display()));
        return Ok(());
    }
    let new_mode = mode | 0o040;
    log.change(format!(
        "let {user} read config {}: group {user}, mode {new_mode:04o}",
        config.display()
    ));
    if !log.report.dry_run {
        chown(config, None, Some(account.gid))?;
        fs::set_permissions(config, fs::Permissions::from_mode(new_mode))
            .map_err(|e| files::io_error("set the mode of", config, &e))?;
    }
    Ok(())
}

fn ensure_unit(
    setup: &ServiceSetup,
    unit: &str,
    system: &System,
    log: &mut Log,
) -> Result<(), AgentError> {
    if let Some(existing) = unit::find(&system.root, unit) {
        log.found(format!(
            "unit {unit} exists at {}: left as it is",
            existing.display()
        ));
        log.report.unit_path = Some(existing);
        // A joining node starts at boot: a unit left disabled (by the removal of the node this
        // host ran before, or by hand) is enabled, its text left as it is.
        if system.unit_disabled(unit) {
            log.change(format!("{} enable {unit}", system.systemctl.join(" ")));
            if !setup.dry_run {
                system.systemctl(&["enable", unit])?;
            }
        }
        return Ok(());
    }
    let path = unit::new_unit_path(&system.root, unit);
    let text = unit::render(&UnitSpec {
        binary: &setup.binary,
        config_path: &setup.config_path,
        data_dir: &setup.data_dir,
        user: setup.user.as_deref(),
        nofile: setup.nofile,
    });
    log.change(format!("write unit {}", path.display()));
    log.change(format!("{} daemon-reload", system.systemctl.join(" ")));
    log.change(format!("{} enable {unit}", system.systemctl.join(" ")));
    log.report.unit_path = Some(path.clone());
    log.report.unit_written = true;
    if setup.dry_run {
        return Ok(());
    }
    let (tmp, ()) = files::temp_file(&path, 0o644, None, |file| {
        io::Write::write_all(file, text.as_bytes()).map_err(|e| files::io_error("write", &path, &e))
    })?;
    files::rename_into_place(&tmp, &path)?;
    system.systemctl(&["daemon-reload"])?;
    system.systemctl(&["enable", unit])
}

fn run(argv: &[String]) -> Result<(), AgentError> {
    let done = service::run(argv, COMMAND_TIMEOUT)?;
    if done.success {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::Service,
        format!("`{}` failed: {}", argv.join(" "), done.summary()),
    )
    .with_hint("run it by hand on the host to see why"))
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), AgentError> {
    std::os::unix::fs::chown(path, uid, gid)
        .map_err(|e| files::io_error("change the owner of", path, &e))
}

/// A directory standing in for `/`, with a `systemctl` that only logs its arguments.
#[cfg(test)]
pub(crate) mod fake {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::System;

    pub struct Root(pub PathBuf);

    impl Root {
        pub fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("rfa-setup-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Root(dir)
        }

        /// systemctl replaced by a script that logs its arguments; `is-enabled` (a question,
        /// not logged) answers what [`Root::set_enabled`] wrote, else `enabled`.
        pub fn system(&self) -> System {
            let fake = self.0.join("systemctl");
            fs::write(
                &fake,
                format!(
                    "#!/bin/sh\nif [ \"$1\" = is-enabled ]; then cat {state} 2>/dev/null || echo enabled; exit 0; fi\necho \"$*\" >> {log}\n",
                    state = self.0.join("enabled-state").display(),
                    log = self.0.join("systemctl.log").display()
                ),
            )
            .unwrap();
            fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
            System {
                root: self.0.clone(),
                systemctl: vec![fake.display().to_string()],
            }
        }

        pub fn set_enabled(&self, state: &str) {
            fs::write(self.0.join("enabled-state"), state).unwrap();
        }

        pub fn calls(&self) -> String {
            fs::read_to_string(self.0.join("systemctl.log")).unwrap_or_default()
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Root;
    use super::*;

    fn setup(root: &Root, user: Option<&str>) -> ServiceSetup {
        ServiceSetup {
            service: ServiceManager::Systemd {
                unit: "restate.service".into(),
            },
            binary: "/usr/local/bin/restate-server".into(),
            config_path: root.0.join("etc/restate/restate.toml"),
            data_dir: root.0.join("var/lib/restate"),
            user: user.map(String::from),
            nofile: 65536,
            dry_run: false,
        }
    }

    #[test]
    fn a_fresh_systemd_host_gets_unit_data_dir_reload_and_enable_once() {
        let root = Root::new("fresh");
        let system = root.system();
        let setup = setup(&root, None);

        let dry = ensure(
            &ServiceSetup {
                dry_run: true,
                ..setup.clone()
            },
            &system,
        )
        .unwrap();
        assert!(dry.changed && dry.unit_written, "{dry:?}");
        assert!(!setup.data_dir.exists() && root.calls().is_empty());
        assert!(!root.0.join("etc/systemd/system/restate.service").exists());
        assert!(
            dry.actions.iter().all(|a| a.starts_with("would ")),
            "{dry:?}"
        );

        let done = ensure(&setup, &system).unwrap();
        let unit = root.0.join("etc/systemd/system/restate.service");
        assert_eq!(done.unit_path.as_deref(), Some(unit.as_path()));
        assert!(done.changed && done.unit_written);
        let text = fs::read_to_string(&unit).unwrap();
        assert!(text.contains(&format!("WorkingDirectory={}\n", setup.data_dir.display())));
        assert_eq!(
            fs::metadata(&unit).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let data = fs::metadata(&setup.data_dir).unwrap();
        assert!(data.is_dir());
        assert_eq!(data.permissions().mode() & 0o777, 0o750);
        assert_eq!(root.calls(), "daemon-reload\nenable restate.service\n");

        let again = ensure(&setup, &system).unwrap();
        assert!(!again.changed && !again.unit_written, "{again:?}");
        assert_eq!(again.unit_path.as_deref(), Some(unit.as_path()));
        assert_eq!(root.calls(), "daemon-reload\nenable restate.service\n");
    }

    #[test]
    fn an_existing_unit_is_never_overwritten() {
        let root = Root::new("existing");
        let system = root.system();
        let vendor = root.0.join("lib/systemd/system/restate.service");
        fs::create_dir_all(vendor.parent().unwrap()).unwrap();
        fs::write(&vendor, "[Service]\nExecStart=/opt/restate\n").unwrap();
        let report = ensure(&setup(&root, None), &system).unwrap();
        assert_eq!(report.unit_path.as_deref(), Some(vendor.as_path()));
        assert!(!report.unit_written);
        assert_eq!(
            fs::read_to_string(&vendor).unwrap(),
            "[Service]\nExecStart=/opt/restate\n"
        );
        assert!(!root.0.join("etc/systemd/system/restate.service").exists());
        assert!(root.calls().is_empty());

        // Left disabled (by the removal of the node the host ran before): enabled, its text kept.
        root.set_enabled("disabled\n");
        let report = ensure(&setup(&root, None), &system).unwrap();
        assert!(!report.unit_written);
        assert_eq!(root.calls(), "enable restate.service\n");
        assert_eq!(
            fs::read_to_string(&vendor).unwrap(),
            "[Service]\nExecStart=/opt/restate\n"
        );
    }

    #[test]
    fn the_command_manager_gets_no_unit() {
        let root = Root::new("command");
        let system = root.system();
        let setup = ServiceSetup {
            service: ServiceManager::Command {
                start: vec!["true".into()],
                stop: vec!["true".into()],
                restart: vec!["true".into()],
                status: vec!["true".into()],
            },
            ..setup(&root, None)
        };
        let report = ensure(&setup, &system).unwrap();
        assert!(report.unit_path.is_none() && !report.unit_written);
        assert!(report.changed && setup.data_dir.is_dir());
        assert!(root.calls().is_empty());
    }

    #[test]
    fn an_existing_user_owns_the_data_dir_and_reads_the_config() {
        // `nobody` exists on every Debian system; chown needs root.
        let Some(nobody) = host::account("nobody") else {
            return;
        };
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let root = Root::new("user");
        let system = root.system();
        let setup = setup(&root, Some("nobody"));
        fs::create_dir_all(setup.config_path.parent().unwrap()).unwrap();
        fs::write(&setup.config_path, "cluster-name = \"c\"\n").unwrap();
        fs::set_permissions(&setup.config_path, fs::Permissions::from_mode(0o600)).unwrap();

        let report = ensure(&setup, &system).unwrap();
        let data = fs::metadata(&setup.data_dir).unwrap();
        assert_eq!((data.uid(), data.gid()), (nobody.uid, nobody.gid));
        let config = fs::metadata(&setup.config_path).unwrap();
        assert_eq!((config.uid(), config.gid()), (0, nobody.gid));
        assert_eq!(config.permissions().mode() & 0o777, 0o640);
        let text = fs::read_to_string(report.unit_path.unwrap()).unwrap();
        assert!(text.contains("User=nobody\nGroup=nobody\n"), "{text}");

        // Data that belongs to someone else is not silently taken over.
        fs::write(setup.data_dir.join("x"), "").unwrap();
        std::os::unix::fs::chown(&setup.data_dir, Some(0), Some(0)).unwrap();
        let err = ensure(&setup, &system).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert!(err.hint.unwrap().contains("chown -R nobody:"));
    }

    #[test]
    fn a_missing_user_is_only_planned_in_a_dry_run() {
        let root = Root::new("dryuser");
        let setup = ServiceSetup {
            dry_run: true,
            ..setup(&root, Some("rfa-no-such-user"))
        };
        let report = ensure(&setup, &root.system()).unwrap();
        assert_eq!(
            report.actions[0],
            "would create system user rfa-no-such-user"
        );
        assert!(host::account("rfa-no-such-user").is_none());
    }

    #[test]
    fn bad_inputs_are_refused_before_anything_changes() {
        let root = Root::new("bad");
        let system = root.system();
        let cases = [
            ServiceSetup {
                user: Some("-o".into()),
                ..setup(&root, None)
            },
            ServiceSetup {
                user: Some("Restate".into()),
                ..setup(&root, None)
            },
            ServiceSetup {
                binary: "restate-server".into(),
                ..setup(&root, None)
            },
            ServiceSetup {
                config_path: "/etc/r.toml\nUser=root".into(),
                ..setup(&root, None)
            },
            ServiceSetup {
                service: ServiceManager::Systemd {
                    unit: "../evil.service".into(),
                },
                ..setup(&root, None)
            },
        ];
        for setup in cases {
            let err = ensure(&setup, &system).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest, "{setup:?}");
            assert!(!setup.data_dir.exists());
        }
        assert!(root.calls().is_empty());
    }
}

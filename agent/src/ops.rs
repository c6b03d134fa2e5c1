//! The operations that change a node: plan/apply a patch, start/stop/restart, roll back.

use std::fs::{self, Metadata};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{
    AgentError, ApplyReport, Environment, ErrorKind, HealthWait, NodeTarget, PatchOp, PatchPreview,
    RollbackReport, RunState, SECRET_KEYS, ServiceAction, ServiceManager, ServiceReport,
};

use crate::files::{self, BackupKind};
use crate::redact::Redactor;
use crate::secrecy::{self, Access};
use crate::setup::System;
use crate::{config_check, diff, environment, health, host, patch, service};

/// Lines of a unit's journal that a failed restart reports.
const JOURNAL_LINES: usize = 15;

struct Prepared {
    old: Option<(String, Metadata)>,
    new: String,
    /// The config itself changes (the preview also counts the environment file).
    config_changed: bool,
    environment: Option<environment::Prepared>,
    /// Owner, group and mode of the file once written.
    access: Access,
    preview: PatchPreview,
}

fn prepare(
    config: &Path,
    ops: &[PatchOp],
    service_user: Option<&str>,
    environment: Option<&Environment>,
) -> Result<Prepared, AgentError> {
    let environment = environment
        .map(|env| environment::prepare(env, &System::host()))
        .transpose()?;
    let old = files::read_config(config)?;
    let old_text = old.as_ref().map_or("", |(text, _)| text.as_str());
    let patch::Patched {
        text: new,
        changed_keys,
    } = patch::patch_text(old_text, ops, config)?;
    let current = files::access_for(old.as_ref().map(|(_, meta)| meta));
    let access = if ops.iter().any(PatchOp::writes_secret) {
        // A service user that does not exist yet (a joining host, before its service is set
        // up) gets read access when `ensure_service` creates it.
        let service = service_user.and_then(host::account);
        secrecy::for_secrets(current, service)
    } else {
        current
    };
    let redactor = Redactor::new(
        SECRET_KEYS.iter().map(|k| k.to_string()).chain(
            ops.iter()
                .filter(|op| op.is_secret())
                .filter_map(|op| op.path().last().cloned()),
        ),
    );
    let config_changed = new != old_text;
    let mut shown = diff::unified(old_text, &new, &config.display().to_string(), &redactor);
    if let Some(env) = &environment {
        shown.push_str(&env.diff());
    }
    let environment_changed = environment
        .as_ref()
        .is_some_and(environment::Prepared::changed);
    let preview = PatchPreview {
        path: config.to_path_buf(),
        changed: config_changed || environment_changed,
        diff: shown,
        changed_keys,
        environment_changed,
        // A file written for the first time gets its access, it does not change it.
        access: old.as_ref().and_then(|_| secrecy::change(current, access)),
        rejected: None,
    };
    Ok(Prepared {
        old,
        new,
        config_changed,
        environment,
        access,
        preview,
    })
}

/// `server`: the restate-server that will read the file, to check a changed one with (`None`:
/// not checked).
pub fn plan(
    config: &Path,
    ops: &[PatchOp],
    service_user: Option<&str>,
    environment: Option<&Environment>,
    server: Option<&Path>,
) -> Result<PatchPreview, AgentError> {
    let Prepared { new, preview, .. } = prepare(config, ops, service_user, environment)?;
    let rejected = match server {
        Some(server) if preview.changed => {
            config_check::refusal(Some(server), config, &new, restate_variables(environment))?
        }
        _ => None,
    };
    Ok(PatchPreview {
        rejected,
        ..preview
    })
}

fn restate_variables(environment: Option<&Environment>) -> &[(String, String)] {
    environment.map_or(&[], |env| env.variables.as_slice())
}

/// Writes the config (and the environment file, when given) where they differ, and with
/// `restart` restarts the node behind its health gate, putting the old config back when it does
/// not come back. A restored config leaves the environment file as it is: its values are only
/// secrets the old file either held itself or did without.
pub fn apply(
    node: &NodeTarget,
    ops: &[PatchOp],
    restart: bool,
    environment_request: Option<&Environment>,
) -> Result<ApplyReport, AgentError> {
    let manager = if restart { Some(manager(node)?) } else { None };
    let Prepared {
        old,
        new,
        config_changed,
        environment,
        access,
        preview,
    } = prepare(
        &node.config_path,
        ops,
        node.service_user.as_deref(),
        environment_request,
    )?;
    let mut report = ApplyReport {
        preview,
        backup: None,
        restart: None,
        rollback: None,
    };
    if !report.preview.changed {
        return Ok(report);
    }
    // Known before writing, so a bad address or a value the server refuses never leaves a
    // changed file behind.
    let address = manager.map(|_| health_address(&new, node)).transpose()?;
    let server = node.server_binary.as_deref();
    let variables = restate_variables(environment_request);
    if let Some(why) = config_check::refusal(server, &node.config_path, &new, variables)? {
        return Err(AgentError::new(ErrorKind::ConfigRejected, why)
            .with_path(&node.config_path)
            .with_hint(
                "fix the value in the inventory ([config] or the host's config) and re-run; nothing was written or restarted",
            ));
    }
    let path = &node.config_path;
    if config_changed {
        if let Some((text, meta)) = &old {
            report.backup = Some(files::save_backup(
                path,
                text.as_bytes(),
                meta,
                BackupKind::BeforeChange,
            )?);
        }
        files::write_atomic_as(path, new.as_bytes(), access)?;
    }
    if let Some(env) = &environment {
        env.write(&System::host())?;
    }
    let (Some(manager), Some(address)) = (manager, address) else {
        return Ok(report);
    };

    let after_change = restart_and_wait(manager, node, ServiceAction::Restart, &address);
    if after_change.healthy() {
        report.restart = Some(after_change);
        return Ok(report);
    }
    let mut reason = format!(
        "the node did not report Alive at {} within {} ms after the change ({})",
        address.address,
        node.health_timeout_ms,
        after_change.health.as_ref().map_or("", |h| h.last.as_str())
    );
    // Read before the rollback restarts it: the operator sees why without logging in.
    if let Some(journal) = service::journal_tail(manager, JOURNAL_LINES) {
        reason.push_str(&format!("; its journal ended with:\n{journal}"));
    }
    report.restart = Some(after_change);
    report.rollback = Some(match &old {
        Some((text, meta)) => {
            // Exact previous bytes, owner and mode.
            files::write_atomic(path, text.as_bytes(), Some(meta))?;
            // That backup now equals the file: drop it, so an explicit rollback goes one step
            // further back instead of restoring the same bytes.
            if let Some(backup) = report.backup.take() {
                fs::remove_file(&backup)
                    .map_err(|e| files::io_error("remove the redundant backup", &backup, &e))?;
            }
            let old_address = health_address(text, node).unwrap_or(address);
            RollbackReport {
                path: path.clone(),
                restored_from: None,
                restart: restart_and_wait(manager, node, ServiceAction::Restart, &old_address),
                reason: Some(reason),
            }
        }
        None => {
            // There was no file: the node never ran from this config. Put that state back.
            remove_if_present(path)?;
            RollbackReport {
                path: path.clone(),
                restored_from: None,
                restart: restart_and_wait(manager, node, ServiceAction::Stop, &address),
                reason: Some(reason),
            }
        }
    });
    Ok(report)
}

/// Restores the newest backup (and removes it, so a second rollback goes one step further back),
/// keeping the replaced file as a `.replaced` backup; then restarts and waits for health.
pub fn rollback(node: &NodeTarget) -> Result<RollbackReport, AgentError> {
    let manager = manager(node)?;
    let path = &node.config_path;
    let newest = files::list_backups(path, BackupKind::BeforeChange)?
        .pop()
        .ok_or_else(|| {
            AgentError::new(
                ErrorKind::NoBackup,
                "no backup of the config file to restore",
            )
            .with_path(path)
            .with_hint(format!(
                "backups are kept in {} by `apply`; restore the file by hand",
                files::backup_dir(path).display()
            ))
        })?;
    let bytes = fs::read(&newest).map_err(|e| files::io_error("read the backup", &newest, &e))?;
    let backup_meta =
        fs::metadata(&newest).map_err(|e| files::io_error("stat the backup", &newest, &e))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let address = health_address(&text, node)?;
    match fs::read(path) {
        Ok(current) => {
            let meta = fs::metadata(path).map_err(|e| files::io_error("stat", path, &e))?;
            files::save_backup(path, &current, &meta, BackupKind::Replaced)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(files::io_error("read the config file", path, &e)),
    }
    files::write_atomic(path, &bytes, Some(&backup_meta))?;
    fs::remove_file(&newest)
        .map_err(|e| files::io_error("remove the restored backup", &newest, &e))?;
    Ok(RollbackReport {
        path: path.clone(),
        restart: restart_and_wait(manager, node, ServiceAction::Restart, &address),
        restored_from: Some(newest),
        reason: None,
    })
}

/// Explicit start/stop/restart. A failing command is an error; an unhealthy node is a report
/// with `healthy: false`.
pub fn service(node: &NodeTarget, action: ServiceAction) -> Result<ServiceReport, AgentError> {
    let manager = manager(node)?;
    let address = match files::read_config(&node.config_path)? {
        Some((text, _)) => health_address(&text, node),
        None => fallback_address(node),
    };
    // A stop needs no address; start and restart must know where to look.
    let address = match (action, address) {
        (ServiceAction::Stop | ServiceAction::Reboot, a) => a.unwrap_or_default(),
        (_, a) => a?,
    };
    service::perform(manager, action, service_timeout(node))?;
    let mut health = wait_unless_stop(manager, action, node, &address);
    // A node that did not come back is named with why, as after a failed change.
    if let Some(wait) = health.as_mut().filter(|w| !w.healthy)
        && let Some(journal) = service::journal_tail(manager, JOURNAL_LINES)
    {
        wait.last
            .push_str(&format!("; its journal ended with:\n{journal}"));
    }
    Ok(ServiceReport { action, health })
}

/// Like [`service`], but a failing command becomes an unhealthy report, so apply can roll back.
fn restart_and_wait(
    manager: &ServiceManager,
    node: &NodeTarget,
    action: ServiceAction,
    address: &health::Target,
) -> ServiceReport {
    match service::perform(manager, action, service_timeout(node)) {
        Ok(()) => ServiceReport {
            action,
            health: wait_unless_stop(manager, action, node, address),
        },
        Err(e) => ServiceReport {
            action,
            health: Some(HealthWait {
                address: address.address.clone(),
                healthy: false,
                waited_ms: 0,
                attempts: 0,
                last: e.message,
            }),
        },
    }
}

fn wait_unless_stop(
    manager: &ServiceManager,
    action: ServiceAction,
    node: &NodeTarget,
    address: &health::Target,
) -> Option<HealthWait> {
    if matches!(action, ServiceAction::Stop | ServiceAction::Reboot) {
        return None;
    }
    // systemd says at once whether the process runs; an operator's status command may look at
    // more (a pid file written late, a port): it is first asked later.
    let first = match manager {
        ServiceManager::Systemd { .. } => EXIT_CHECK_EVERY,
        ServiceManager::Command { .. } => COMMAND_FIRST_CHECK,
    };
    let mut watch = ExitWatch::new(Instant::now(), first);
    Some(health::wait_alive_unless(
        address,
        Duration::from_millis(node.health_timeout_ms),
        || {
            let now = Instant::now();
            if !watch.due(now) {
                return None;
            }
            let state = service::state(manager, service_timeout(node));
            watch.saw(now, state.state == RunState::Stopped, &state.detail)
        },
    ))
}

/// Whether the server that was just (re)started exited again (a value it refuses, a crash): the
/// service manager says stopped twice in a row, a second apart, from `first` after the start.
/// The health wait then ends at once instead of waiting out its timeout.
struct ExitWatch {
    next: Instant,
    stopped: u32,
}

const EXIT_CHECK_EVERY: Duration = Duration::from_secs(1);
const COMMAND_FIRST_CHECK: Duration = Duration::from_secs(5);

impl ExitWatch {
    fn new(started: Instant, first: Duration) -> Self {
        ExitWatch {
            next: started + first,
            stopped: 0,
        }
    }

    fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    fn saw(&mut self, now: Instant, stopped: bool, detail: &str) -> Option<String> {
        self.next = now + EXIT_CHECK_EVERY;
        self.stopped = if stopped { self.stopped + 1 } else { 0 };
        (self.stopped >= 2).then(|| {
            format!("restate-server exited after the start (the service manager says: {detail})")
        })
    }
}

fn service_timeout(node: &NodeTarget) -> Duration {
    Duration::from_millis(node.service_timeout_ms)
}

fn manager(node: &NodeTarget) -> Result<&ServiceManager, AgentError> {
    node.service.as_ref().ok_or_else(|| {
        AgentError::new(
            ErrorKind::BadRequest,
            "this operation restarts the node, but the request names no service manager",
        )
        .with_hint(
            "set `service` (systemd unit or start/stop/restart/status commands) in the request",
        )
    })
}

/// Where the node answers health checks with the config text (as it will run): its fabric address
/// from the file, else from the request, and its fabric socket.
fn health_address(config_text: &str, node: &NodeTarget) -> Result<health::Target, AgentError> {
    let values = config_text
        .parse::<toml_edit::DocumentMut>()
        .ok()
        .map(|doc| crate::facts::config_values(&doc))
        .unwrap_or_default();
    let address = match values.advertised_address.clone() {
        Some(address) => address,
        None => fallback_address(node)?.address,
    };
    Ok(health::Target {
        address,
        sockets: crate::facts::fabric_sockets(&values, node),
    })
}

fn fallback_address(node: &NodeTarget) -> Result<health::Target, AgentError> {
    node.advertised_address
        .as_deref()
        .map(health::Target::tcp)
        .ok_or_else(|| {
            AgentError::new(
                ErrorKind::BadRequest,
                "cannot tell where the node answers health checks: no advertised-address in the \
             config and none in the request",
            )
            .with_path(&node.config_path)
            .with_key("advertised-address")
            .with_hint("set advertised-address in the config, or advertised_address in the request")
        })
}

fn remove_if_present(path: &Path) -> Result<(), AgentError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(files::io_error("remove", path, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_server_that_exits_after_its_start_is_noticed_at_the_second_stopped_reading() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut watch = ExitWatch::new(start, EXIT_CHECK_EVERY);
        // (when, due, reading when due, gone)
        let readings = [
            (500, false, false, false),
            (1000, true, true, false),
            (1500, false, false, false),
            // Running again (a unit's automatic restart): the count starts over.
            (2000, true, false, false),
            (3000, true, true, false),
            (4000, true, true, true),
        ];
        for (ms, due, stopped, gone) in readings {
            assert_eq!(watch.due(at(ms)), due, "{ms} ms");
            if due {
                let said = watch.saw(at(ms), stopped, "failed");
                assert_eq!(said.is_some(), gone, "{ms} ms: {said:?}");
            }
        }
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rfa-ops-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn plan_redacts_secrets_marked_and_known() {
        let dir = tempdir("plan");
        let config = dir.join("restate.toml");
        fs::write(
            &config,
            "[worker.snapshots]\naws-session-token = \"OLDTOKEN\"\n",
        )
        .unwrap();
        let preview = plan(
            &config,
            &[
                PatchOp::set(&["worker", "snapshots", "aws-session-token"], "NEWTOKEN"),
                PatchOp::set(&["worker", "snapshots", "aws-access-key-id"], "KEYID").secret(),
            ],
            None,
            None,
            None,
        )
        .unwrap();
        assert!(preview.changed);
        assert!(
            !preview.diff.contains("TOKEN") && !preview.diff.contains("KEYID"),
            "{}",
            preview.diff
        );
        assert_eq!(
            preview.diff.matches("<redacted>").count(),
            3,
            "{}",
            preview.diff
        );
        // Planning changes nothing.
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            "[worker.snapshots]\naws-session-token = \"OLDTOKEN\"\n"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn apply_without_restart_writes_and_backs_up_and_is_idempotent() {
        let dir = tempdir("apply");
        let config = dir.join("restate.toml");
        fs::write(&config, "# mine\ncluster-name = \"c\"\n").unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
        let node = NodeTarget::new(&config);
        let ops = [PatchOp::set(&["auto-provision"], false)];
        let first = apply(&node, &ops, false, None).unwrap();
        assert!(first.preview.changed && first.succeeded());
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            "# mine\ncluster-name = \"c\"\nauto-provision = false\n"
        );
        assert_eq!(
            fs::metadata(&config).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let backup = first.backup.unwrap();
        assert_eq!(
            fs::read_to_string(backup).unwrap(),
            "# mine\ncluster-name = \"c\"\n"
        );
        let second = apply(&node, &ops, false, None).unwrap();
        assert!(
            !second.preview.changed && second.backup.is_none() && second.preview.diff.is_empty()
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_getting_secrets_is_narrowed_before_they_are_written() {
        let dir = tempdir("secrets");
        let config = dir.join("restate.toml");
        fs::write(&config, "cluster-name = \"c\"\n").unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        let mode = || fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        let secret =
            [PatchOp::set(&["worker", "snapshots", "aws-secret-access-key"], "S").secret()];
        let preview = plan(&config, &secret, None, None, None).unwrap();
        let access = preview.access.expect("plan names the narrowing");
        assert_eq!(
            access.to_string(),
            "mode 0644 -> 0640: the file now holds secrets"
        );
        assert_eq!(mode(), 0o644, "planning changes nothing");
        let report = apply(&NodeTarget::new(&config), &secret, false, None).unwrap();
        assert_eq!(report.preview.access, Some(access));
        assert_eq!(mode(), 0o640);
        // A change without secrets leaves the (narrowed) access as it is, and says nothing.
        let plain = [PatchOp::set(&["auto-provision"], false)];
        let report = apply(&NodeTarget::new(&config), &plain, false, None).unwrap();
        assert!(report.preview.changed && report.preview.access.is_none());
        assert_eq!(mode(), 0o640);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_file_that_does_not_parse_and_leaves_it_alone() {
        let dir = tempdir("broken");
        let config = dir.join("restate.toml");
        fs::write(&config, "cluster-name = \"c\"\nroles = [\n").unwrap();
        let err = apply(
            &NodeTarget::new(&config),
            &[PatchOp::set(&["a"], 1i64)],
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ConfigParse);
        assert_eq!((err.line, err.column), (Some(2), Some(10)));
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            "cluster-name = \"c\"\nroles = [\n"
        );
        assert!(!files::backup_dir(&config).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn restart_needs_a_service_manager_before_anything_is_written() {
        let dir = tempdir("nomanager");
        let config = dir.join("restate.toml");
        let err = apply(
            &NodeTarget::new(&config),
            &[PatchOp::set(&["a"], 1i64)],
            true,
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(!config.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rollback_without_backups_is_no_backup() {
        let dir = tempdir("nobackup");
        let mut node = NodeTarget::new(dir.join("restate.toml"));
        node.service = Some(ServiceManager::Systemd { unit: "x".into() });
        assert_eq!(rollback(&node).unwrap_err().kind, ErrorKind::NoBackup);
        fs::remove_dir_all(dir).unwrap();
    }
}

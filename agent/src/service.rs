//! Drives restate-server through the node's service manager. Commands run as argv, never through a
//! shell, with no stdin (the agent's stdin is the coordinator's channel) and a time limit.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{
    AgentError, ErrorKind, RunState, ServiceAction, ServiceManager, ServiceState, SystemdState,
};

/// Output kept of a command, per stream: enough for an error message.
const OUTPUT_LIMIT: usize = 4096;

/// After the command exits, how long to wait for its output pipes to close. A daemon that keeps
/// them open (e.g. a start script that backgrounds the server without redirecting) must not hang
/// the agent.
const PIPE_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn summary(&self) -> String {
        let text = [self.stderr.trim(), self.stdout.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        match self.code {
            Some(code) => format!("exit code {code}: {text}"),
            None => format!("killed by a signal: {text}"),
        }
    }
}

/// Runs `argv` to completion or kills it at `timeout`.
pub fn run(argv: &[String], timeout: Duration) -> Result<Finished, AgentError> {
    run_with(argv, None, timeout)
}

/// [`run`], the program seeing `restate` as its `RESTATE_` variables instead of the agent's own.
pub fn run_with(
    argv: &[String],
    restate: Option<&[(String, String)]>,
    timeout: Duration,
) -> Result<Finished, AgentError> {
    let shown = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err(
            AgentError::new(ErrorKind::BadRequest, "empty service command")
                .with_hint("give every service command as a non-empty argv array"),
        );
    };
    let mut command = Command::new(program);
    if let Some(variables) = restate {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RESTATE_") {
                command.env_remove(name);
            }
        }
        command.envs(variables.iter().map(|(name, value)| (name, value)));
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            AgentError::new(ErrorKind::Service, format!("cannot run `{shown}`: {e}"))
                .with_hint("check the service manager settings in the inventory")
        })?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + timeout;
    // Most commands (`--version`, a status script) end within milliseconds: look every
    // millisecond at first, so a quick command is not charged a whole polling interval, then
    // every 20 ms.
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                let quick = started.elapsed() < Duration::from_millis(200);
                thread::sleep(Duration::from_millis(if quick { 1 } else { 20 }));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(AgentError::new(
                    ErrorKind::Service,
                    format!("`{shown}` did not finish within {} s", timeout.as_secs()),
                )
                .with_hint("look at the service's logs on the host; raise service_timeout_ms if it is just slow"));
            }
            Err(e) => {
                return Err(AgentError::new(
                    ErrorKind::Service,
                    format!("cannot wait for `{shown}`: {e}"),
                ));
            }
        }
    };
    Ok(Finished {
        success: status.success(),
        code: status.code(),
        stdout: stdout.recv_timeout(PIPE_GRACE).unwrap_or_default(),
        stderr: stderr.recv_timeout(PIPE_GRACE).unwrap_or_default(),
    })
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf.truncate(OUTPUT_LIMIT);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    rx
}

fn action_argv(manager: &ServiceManager, action: ServiceAction) -> Vec<String> {
    if action == ServiceAction::Reboot {
        // The host, whatever runs restate-server on it.
        return vec!["systemctl".into(), "reboot".into()];
    }
    match manager {
        ServiceManager::Systemd { unit } => {
            vec!["systemctl".into(), action.to_string(), unit.clone()]
        }
        ServiceManager::Command {
            start,
            stop,
            restart,
            ..
        } => match action {
            ServiceAction::Start => start.clone(),
            ServiceAction::Stop => stop.clone(),
            ServiceAction::Restart => restart.clone(),
            ServiceAction::Reboot => unreachable!("a reboot is systemctl's whatever the manager"),
        },
    }
}

/// Runs start, stop or restart; a non-zero exit is a `service` error carrying the output.
pub fn perform(
    manager: &ServiceManager,
    action: ServiceAction,
    timeout: Duration,
) -> Result<(), AgentError> {
    if let (ServiceManager::Systemd { unit }, ServiceAction::Start | ServiceAction::Restart) =
        (manager, action)
    {
        // A start that failed a moment ago (a file the server refused, rolled back since) can
        // leave the unit at its start limit, which would refuse this deliberate start. Best
        // effort: a unit that was never failed has nothing to reset.
        let _ = run(
            &["systemctl".into(), "reset-failed".into(), unit.clone()],
            timeout,
        );
    }
    let argv = action_argv(manager, action);
    let done = run(&argv, timeout)?;
    if done.success {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::Service,
        format!("{action} failed: `{}` {}", argv.join(" "), done.summary()),
    )
    .with_hint("look at the service's logs on the host (journalctl -u UNIT, or the log file)"))
}

/// Where systemd keeps its runtime state; it exists exactly when systemd is the init system.
const SYSTEMD_BOOTED: &str = "/run/systemd/system";

/// Running or stopped, as the service manager sees it; with systemd, also whether it runs at all
/// and whether the unit is enabled.
pub fn state(manager: &ServiceManager, timeout: Duration) -> ServiceState {
    let (argv, systemd) = match manager {
        ServiceManager::Systemd { unit } => {
            let booted = std::path::Path::new(SYSTEMD_BOOTED).is_dir();
            let enabled = if booted {
                // Exits non-zero for anything but enabled; its stdout says which.
                run(
                    &["systemctl".into(), "is-enabled".into(), unit.clone()],
                    timeout,
                )
                .map(|done| done.stdout.trim().to_string())
                .unwrap_or_else(|e| e.message)
            } else {
                String::new()
            };
            (
                vec!["systemctl".into(), "is-active".into(), unit.clone()],
                Some(SystemdState { booted, enabled }),
            )
        }
        ServiceManager::Command { status, .. } => (status.clone(), None),
    };
    if systemd.as_ref().is_some_and(|s| !s.booted) {
        return ServiceState {
            state: RunState::Unknown,
            detail: format!("systemd does not run on this host (no {SYSTEMD_BOOTED})"),
            systemd,
        };
    }
    match run(&argv, timeout) {
        Ok(done) => ServiceState {
            state: if done.success {
                RunState::Running
            } else {
                RunState::Stopped
            },
            detail: done.summary(),
            systemd,
        },
        Err(e) => ServiceState {
            state: RunState::Unknown,
            detail: e.message,
            systemd,
        },
    }
}

/// The last `lines` lines of the unit's journal, for a node that did not come back; `None`
/// without systemd or when journalctl has nothing to say.
pub fn journal_tail(manager: &ServiceManager, lines: usize) -> Option<String> {
    let ServiceManager::Systemd { unit } = manager else {
        return None;
    };
    let argv = [
        "journalctl",
        "--no-pager",
        "--output",
        "cat",
        "--lines",
        &lines.to_string(),
        "--unit",
        unit,
    ]
    .map(String::from);
    let done = run(&argv, Duration::from_secs(5)).ok()?;
    let text = done.stdout.trim();
    (done.success && !text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    fn command_manager(status: &[&str]) -> ServiceManager {
        ServiceManager::Command {
            start: argv(&["true"]),
            stop: argv(&["false"]),
            restart: argv(&["sh", "-c", "echo boom >&2; exit 3"]),
            status: argv(status),
        }
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let done = run(&argv(&["echo", "$HOME; rm -rf /"]), Duration::from_secs(5)).unwrap();
        assert_eq!(done.stdout, "$HOME; rm -rf /\n");
    }

    #[test]
    fn failures_carry_exit_code_and_output() {
        let m = command_manager(&["true"]);
        perform(&m, ServiceAction::Start, Duration::from_secs(5)).unwrap();
        let err = perform(&m, ServiceAction::Restart, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Service);
        assert!(
            err.message.contains("exit code 3") && err.message.contains("boom"),
            "{}",
            err.message
        );
    }

    #[test]
    fn status_exit_code_decides_running() {
        let running = state(&command_manager(&["true"]), Duration::from_secs(5));
        assert_eq!(running.state, RunState::Running);
        let stopped = state(&command_manager(&["false"]), Duration::from_secs(5));
        assert_eq!(stopped.state, RunState::Stopped);
        let unknown = state(
            &command_manager(&["/nonexistent/status"]),
            Duration::from_secs(5),
        );
        assert_eq!(unknown.state, RunState::Unknown);
    }

    #[test]
    fn hung_commands_are_killed_at_the_timeout() {
        let start = Instant::now();
        let err = run(&argv(&["sleep", "10"]), Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Service);
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_daemon_holding_the_pipes_does_not_hang_the_agent() {
        let start = Instant::now();
        // The shell exits at once, its background child keeps stdout open for 5 s.
        let done = run(
            &argv(&["sh", "-c", "sleep 5 & echo started"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(done.success);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }
}

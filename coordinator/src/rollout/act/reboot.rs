//! `restart --reboot`: a member's whole host reboots (kernel patching) in place of its service's
//! restart, inside the same handover and gates ([`Executor::restart_member`]). The host must come
//! back over SSH within the boot timeout, and its restate-server must start by itself: nothing
//! here starts it, since a member that needs a hand after every boot is what the operator must
//! know about.

use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{Facts, Operation, RunState, ServiceAction, ServiceReport};

use super::executor::Executor;
use crate::reach::{ReachError, Reached};
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;

/// What identifies one boot of a host: the kernel's boot id and the start time of its PID 1
/// (a container's init restarts under the same kernel).
const BOOT_MARKER: [&str; 3] = ["cat", "/proc/sys/kernel/random/boot_id", "/proc/1/stat"];
const POLL: Duration = Duration::from_secs(2);

impl Executor<'_> {
    /// In the recap as rebooted once the host was asked to, whether or not it comes back.
    pub(super) async fn reboot(&mut self, host: &Surveyed) -> Result<(), StepError> {
        let name = host.name();
        let reacher = self.reacher.ok_or_else(|| {
            StepError::host(
                name,
                "this run cannot reach hosts again, so it cannot reboot one",
            )
        })?;
        let before = boot_marker(&host.reached).await?;
        self.progress.host(name, "rebooting the host");
        let asked = Instant::now();
        let op = Operation::Service {
            node: host.reached.node_target(self.timeouts.restart),
            action: ServiceAction::Reboot,
        };
        match host.reached.ask::<ServiceReport>(op).await {
            Ok(_) => {}
            // The host went down before the answer left it.
            Err(
                ReachError::Ssh(_)
                | ReachError::AgentGone { .. }
                | ReachError::ConnectionLost { .. },
            ) => {}
            Err(err) => return Err(err.into()),
        }
        self.recap.changed(name, "rebooted (rolling reboot)");
        let back = self.back_from_boot(host, reacher, &before, asked).await?;
        self.progress.host(
            name,
            &format!(
                "back after {:.0} s; waiting for restate-server to start by itself",
                asked.elapsed().as_secs_f64()
            ),
        );
        let started = started_by_itself(&back, self.timeouts.restart).await;
        self.rebooted.insert(name.to_string(), back);
        started
    }

    /// The host reached again once it booted anew (its boot marker changed), or the error that
    /// names it when it did not within the boot timeout.
    pub(super) async fn back_from_boot(
        &self,
        host: &Surveyed,
        reacher: &crate::reach::Reacher,
        before: &str,
        asked: Instant,
    ) -> Result<Reached, StepError> {
        let deadline = asked + self.timeouts.boot;
        let mut last = "it still ran its old boot".to_string();
        while Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            match reacher
                .reach(std::slice::from_ref(&host.reached.host))
                .await
                .pop()
            {
                Some(Ok(reached)) => match boot_marker(&reached).await {
                    Ok(now) if now != before => return Ok(reached),
                    Ok(_) => last = "it still ran its old boot".to_string(),
                    Err(err) => last = err.to_string(),
                },
                Some(Err(err)) => last = err.to_string(),
                None => {}
            }
        }
        Err(StepError::host(
            host.name(),
            format!(
                "did not come back from its reboot within {} s (last: {last}); the run stopped here, and the members after it were not touched. Look at its console, then re-run",
                self.timeouts.boot.as_secs()
            ),
        ))
    }
}

async fn boot_marker(host: &Reached) -> Result<String, StepError> {
    let out = host
        .session
        .exec(&BOOT_MARKER, b"")
        .await
        .map_err(|e| StepError::host(host.name(), format!("cannot read its boot id: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_boot_marker(&text).ok_or_else(|| {
        StepError::host(
            host.name(),
            format!(
                "cannot read its boot id from `{}`: {text:?}",
                BOOT_MARKER.join(" ")
            ),
        )
    })
}

/// `boot_id` and field 22 (start time) of `/proc/1/stat`, as one string.
fn parse_boot_marker(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let boot_id = lines.next()?.trim();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let stat = lines.next()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let started = after_name.split_whitespace().nth(19)?;
    (!boot_id.is_empty()).then(|| format!("{boot_id}/{started}"))
}

/// Waits until the service runs and its node says Alive, asking every second; never starts it.
async fn started_by_itself(host: &Reached, timeout: Duration) -> Result<(), StepError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        let op = Operation::Facts {
            node: host.node_target(Duration::from_secs(1)),
            restate_server: None,
        };
        match host.ask::<Box<Facts>>(op).await {
            Ok(facts) => {
                let running = facts
                    .service
                    .as_ref()
                    .is_some_and(|s| s.state == RunState::Running);
                if running && facts.health.as_ref().is_some_and(|h| h.is_alive()) {
                    return Ok(());
                }
                last = match (&facts.service, &facts.health) {
                    (Some(s), _) if s.state != RunState::Running => {
                        format!("the service is not running: {}", s.detail)
                    }
                    (_, None) => facts
                        .health_error
                        .clone()
                        .unwrap_or_else(|| "no /health answer".into()),
                    (_, Some(h)) => format!("/health says {:?}", h.status),
                };
            }
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(StepError::host(
        host.name(),
        format!(
            "is back from its reboot, but restate-server did not start by itself within {} s ({last}); `restate-fleet apply` starts a stopped member; enable its unit so that it starts at boot",
            timeout.as_secs()
        ),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_boot_is_its_boot_id_and_its_init_s_start() {
        let text = "0f3c2b8e-4c1d-4f55-9d37-2a1f8f0a9b11\n1 (systemd) S 0 1 1 0 -1 4194560 31620 1083418 110 1218 57 51 2343 2011 20 0 1 0 4242 172388352 3095 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            super::parse_boot_marker(text).as_deref(),
            Some("0f3c2b8e-4c1d-4f55-9d37-2a1f8f0a9b11/4242")
        );
        let spaced = "id\n1 (my init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0\n";
        assert_eq!(super::parse_boot_marker(spaced).as_deref(), Some("id/77"));
        assert_eq!(super::parse_boot_marker(""), None);
        assert_eq!(super::parse_boot_marker("id\n"), None);
    }
}

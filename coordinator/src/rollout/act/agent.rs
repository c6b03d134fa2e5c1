//! What the executor asks of a host's agent: a restate.toml patched (with or without a restart,
//! rolled back by the agent when the node does not come back), the service started or restarted.

use std::time::Duration;

use restate_fleet_proto::agent::{ApplyReport, Operation, ServiceAction, ServiceReport};

use super::executor::Executor;
use crate::rollout::decide::desired;
use crate::rollout::decide::plan;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;

impl Executor<'_> {
    /// The member's file as the inventory wants it, written with no restart (a running server
    /// reads it live, or at its next start); a failed write is the step's error.
    pub(super) async fn write_without_restart(
        &self,
        host: &Surveyed,
    ) -> Result<ApplyReport, StepError> {
        let report = self
            .apply(host, plan::full_patch(self.fleet, host), false)
            .await?;
        if !report.succeeded() {
            return Err(StepError::host(
                host.name(),
                "writing restate.toml failed; nothing restarted. Re-run",
            ));
        }
        Ok(report)
    }

    pub(super) async fn apply(
        &self,
        host: &Surveyed,
        patch: Vec<restate_fleet_proto::agent::PatchOp>,
        restart: bool,
    ) -> Result<ApplyReport, StepError> {
        let mut node = host.reached.node_target(self.timeouts.restart);
        // By now any new binary of the run is in place: the file is checked with it.
        node.server_binary = host.server_binary(true);
        let op = Operation::Apply {
            node,
            patch,
            restart,
            environment: desired::environment(self.fleet, &host.reached.host),
        };
        let report: ApplyReport = host.reached.ask(op).await?;
        if let Some(backup) = &report.backup {
            self.backups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{}: {}", host.name(), backup.display()));
        }
        Ok(report)
    }

    /// Starts or restarts the node; the agent waits until it reports healthy.
    pub(super) async fn service(
        &self,
        host: &Surveyed,
        action: ServiceAction,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let op = Operation::Service {
            node: host.reached.node_target(timeout),
            action,
        };
        let report: ServiceReport = host.reached.ask(op).await?;
        if report.healthy() {
            return Ok(());
        }
        Err(StepError::host(
            host.name(),
            format!(
                "not healthy after the {action}: {}",
                report.health.map(|h| h.last).unwrap_or_default()
            ),
        ))
    }
}

//! A member's upgrade: the new binary in place, one restart behind the handover (renamed keys
//! moved in the same restart), the gate; the old binary back when it does not come up.

use restate_fleet_proto::agent::{Operation, PatchOp, ServerRollbackReport, ServiceAction};

use super::executor::Executor;
use super::install::{remove_staged, server_of};
use crate::rollout::decide::release_keys;
use crate::rollout::decide::server::HostServer;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;
use crate::rollout::gate;

impl Executor<'_> {
    /// One member: the new binary, a restart, the gate (alive, metadata member, every partition
    /// led); the old binary and another restart when that fails.
    pub(super) async fn upgrade_member(
        &mut self,
        host: &Surveyed,
        from: &str,
    ) -> Result<(), StepError> {
        let server = server_of(host)?;
        let (name, node_name) = (host.name().to_string(), host.reached.host.node_name.clone());
        let to = &server.version;
        self.restart_allowed(&name, &node_name).await?;
        self.progress
            .host(&name, &format!("installing restate-server {to}"));
        if !self.install(host, server).await?.changed {
            return Ok(());
        }
        // `run` passed the gate of any member restarted before: no other node is coming back.
        let drained = self.drain_for_restart(host, None).await;
        self.progress
            .host(&name, &format!("restarting on restate-server {to}"));
        // Keys the new release renamed move to their new names in the same restart.
        let renames = release_keys::of_upgrade(from, to, &host.facts.config.keys, &[])
            .map(|(in_file, _)| release_keys::renames(&in_file))
            .unwrap_or_default();
        let outcome = match self.restart_on_new_binary(host, &renames).await {
            // A node that is not healthy goes back to its old binary first.
            Err(why) => Err((why, self.roll_back(host, server).await)),
            Ok(()) => Ok(()),
        };
        // On the new binary or back on the old one: its worker takes partitions again.
        if let Some(drained) = drained {
            self.activate(&name, drained).await?;
        }
        match outcome {
            Ok(()) => {
                self.record_upgrade(&name, from, to, &renames);
                self.progress
                    .host(&name, &format!("healthy on restate-server {to}"));
                remove_staged(host, server).await;
                Ok(())
            }
            Err((why, back)) => {
                let err = StepError::host(
                    &name,
                    format!(
                        "did not come back on restate-server {to} ({why}); {back}. Check the node's log, then re-run"
                    ),
                );
                self.recap.failed(&name, &err.to_string());
                Err(err)
            }
        }
    }

    /// The restart onto the binary just installed (with its renamed keys, when any), then the
    /// gate: alive, a metadata member, every partition led.
    pub(super) async fn restart_on_new_binary(
        &self,
        host: &Surveyed,
        renames: &[PatchOp],
    ) -> Result<(), StepError> {
        let restart = self.timeouts.restart;
        if renames.is_empty() {
            self.service(host, ServiceAction::Restart, restart).await?;
        } else {
            let report = self.apply(host, renames.to_vec(), true).await?;
            if !report.succeeded() {
                return Err(StepError::host(
                    host.name(),
                    "did not come back on the new binary with its renamed keys; the agent put its restate.toml back",
                ));
            }
        }
        let names = [host.reached.host.node_name.clone()];
        gate::healthy(&self.clients(), &names, restart)
            .await
            .map_err(StepError::gate("not healthy"))?;
        gate::partitions_led(&self.clients(), self.timeouts.settle)
            .await
            .map_err(StepError::gate("partitions without a leader"))
            .map(drop)
    }

    pub(super) fn record_upgrade(&mut self, name: &str, from: &str, to: &str, renames: &[PatchOp]) {
        self.recap
            .changed(name, &format!("restate-server {from} -> {to}, restarted"));
        for op in renames {
            if let PatchOp::Rename { path, to } = op {
                self.recap.changed(
                    name,
                    &format!(
                        "restate.toml: {} renamed to {}",
                        path.join("."),
                        to.join(".")
                    ),
                );
            }
        }
    }

    pub(super) async fn roll_back(&self, host: &Surveyed, server: &HostServer) -> String {
        let op = Operation::RollbackServer {
            target: server.target.clone(),
        };
        match host.reached.ask::<ServerRollbackReport>(op).await {
            Ok(report) => {
                let version = report.version.unwrap_or_default();
                match self
                    .service(host, ServiceAction::Restart, self.timeouts.restart)
                    .await
                {
                    Ok(()) => format!("restate-server {version} is back in place and healthy"),
                    Err(e) => format!("restate-server {version} is back in place but: {e}"),
                }
            }
            Err(e) => format!("rolling the binary back failed: {e}"),
        }
    }
}

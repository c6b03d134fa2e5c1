//! A member restarted: its patch (or none, or a reboot), only while the metadata quorum holds
//! without it, its leaders handed over first; a stopped member started.

use restate_fleet_proto::agent::{ApplyReport, PatchPreview, ServiceAction};

use super::executor::{Executor, Restart, Restarted};
use crate::rollout::decide::plan;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;
use crate::rollout::gate;

impl Executor<'_> {
    /// A stopped member started by its own service manager, then gated as after a restart.
    pub(super) async fn start_member(&mut self, host: &Surveyed) -> Result<(), StepError> {
        let (name, node_name) = (host.name().to_string(), host.reached.host.node_name.clone());
        self.progress
            .host(&name, "starting restate-server (it was stopped)");
        self.service(host, ServiceAction::Start, self.timeouts.restart)
            .await?;
        self.member_healthy(&name, &node_name, "start").await?;
        self.progress.host(&name, "healthy");
        self.recap
            .changed(&name, "restate-server started (it was stopped)");
        Ok(())
    }

    /// Patches a member (`None`: leaves its file as it is) and restarts it, only while the
    /// metadata cluster keeps a quorum without it; its cluster-wide health gate is left to the
    /// next step ([`Self::settle`]).
    pub(super) async fn restart_member(
        &mut self,
        host: &Surveyed,
        how: Restart,
        what: &str,
    ) -> Result<(), StepError> {
        let name = host.name().to_string();
        let node_name = host.reached.host.node_name.clone();
        if let Restart::Patched(patch) = &how
            && !host
                .reached
                .ask::<PatchPreview>(plan::preview_op(self.fleet, host, patch.clone()))
                .await?
                .changed
        {
            self.progress
                .host(&name, &format!("{what}: restate.toml already up to date"));
            return Ok(());
        }
        // The leaders move while the member restarted before passes its gate; then, as always,
        // this one restarts only while the metadata quorum holds without it.
        let previous = self.restarted.take();
        let coming_back = previous.as_ref().map(|r| r.node_name.clone());
        let (drained, settled) = tokio::join!(
            self.drain_for_restart(host, coming_back.as_deref()),
            self.gate_restarted(previous)
        );
        let allowed = match settled {
            Ok(()) => self.restart_allowed(&name, &node_name).await,
            Err(err) => Err(err),
        };
        let generation = match allowed {
            Ok(generation) => generation,
            Err(err) => {
                if let Some(drained) = drained {
                    self.activate(&name, drained).await?;
                }
                return Err(err);
            }
        };
        let outcome = self.restart_as(host, how).await;
        // Back on its new file or (rolled back) its old one: its worker takes partitions again.
        let activated = match drained {
            Some(drained) => self.activate(&name, drained).await,
            None => Ok(()),
        };
        outcome.and(activated)?;
        self.restarted = Some(Restarted {
            name,
            node_name,
            generation,
        });
        Ok(())
    }

    /// The restart itself, as `how` says, in the recap before anything else can fail.
    pub(super) async fn restart_as(
        &mut self,
        host: &Surveyed,
        how: Restart,
    ) -> Result<(), StepError> {
        let name = host.name();
        let applied = match how {
            Restart::Patched(patch) => {
                self.progress
                    .host(name, "writing restate.toml and restarting");
                self.apply(host, patch, true).await.map(Some)
            }
            Restart::AsItIs => {
                self.progress.host(name, "restarting");
                self.service(host, ServiceAction::Restart, self.timeouts.restart)
                    .await
                    .map(|()| {
                        self.recap.changed(name, "restarted (rolling restart)");
                        None
                    })
            }
            // Said by `reboot` as soon as the host was asked to.
            Restart::Reboot => self.reboot(host).await.map(|()| None),
        };
        match applied {
            Ok(Some(report)) => self.record_change(name, &report),
            Ok(None) => Ok(()),
            Err(err) => {
                self.recap.failed(name, &err.to_string());
                Err(err)
            }
        }
    }

    /// A member's restarted change in the recap: what was set, or why it was rolled back.
    pub(super) fn record_change(
        &mut self,
        name: &str,
        report: &ApplyReport,
    ) -> Result<(), StepError> {
        let keys = plan::keys_text(&report.preview.changed_keys);
        self.recap.changed(
            name,
            &if report.succeeded() {
                format!("restate.toml: set {keys}, restarted")
            } else {
                format!(
                    "restate.toml: set {keys}, restarted; it did not come back, so the previous file was put back and it restarted again"
                )
            },
        );
        if let Some(access) = report.preview.access {
            self.recap.changed(name, &format!("restate.toml {access}"));
        }
        if !report.succeeded() {
            let why = report
                .rollback
                .as_ref()
                .and_then(|r| r.reason.clone())
                .unwrap_or_else(|| "the node did not become healthy".into());
            self.recap.failed(name, &why);
            return Err(StepError::host(
                name,
                format!(
                    "did not come back after the change ({why}); the agent restored the previous restate.toml. Fix the cause and re-run"
                ),
            ));
        }
        Ok(())
    }

    /// Whether `node_name` may restart now (alive, and the metadata quorum holds without it);
    /// its generation before the restart.
    pub(super) async fn restart_allowed(
        &self,
        name: &str,
        node_name: &str,
    ) -> Result<u32, StepError> {
        // The survey just saw the cluster: one healthy read is enough to decide on the quorum.
        // A node still settling (right after an interrupted run) gets the full gate.
        let view = match crate::admin::gather(&self.clients()).await {
            Ok(view) if view.is_healthy(node_name) => view,
            _ => gate::healthy(
                &self.clients(),
                &[node_name.to_string()],
                self.timeouts.join,
            )
            .await
            .map_err(StepError::gate(format!(
                "{name}: not healthy before its restart"
            )))?,
        };
        gate::quorum_without(&view, node_name).map_err(|source| StepError::Refused {
            host: name.to_string(),
            source,
        })?;
        Ok(view.node(node_name).map(|n| n.generation).unwrap_or(0))
    }
}

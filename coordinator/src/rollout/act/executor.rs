//! Carrying out the plan, step by step, each gated on the cluster's own view. The first failure
//! stops the run: what was done stays done and verified, what was not is named in the recap.

use std::time::{Duration, Instant};

use restate_fleet_inventory::Fleet;

use crate::admin::AdminClient;
use crate::progress::Progress;
use crate::rollout::decide::plan::{self, Step};
use crate::rollout::decide::survey::{Survey, Surveyed};
use crate::rollout::error::StepError;
use crate::rollout::gate;
use crate::rollout::recap::Recap;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A restarted node reporting Alive on its own `/health`.
    pub restart: Duration,
    /// New nodes alive in the cluster state and metadata members.
    pub join: Duration,
    /// Logs moving to replicated segments, replication changes settling.
    pub settle: Duration,
    /// A rebooted host answering SSH again (`restart --reboot`).
    pub boot: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            restart: Duration::from_secs(90),
            join: Duration::from_secs(180),
            settle: Duration::from_secs(120),
            boot: Duration::from_secs(300),
        }
    }
}

pub struct Executor<'a> {
    pub fleet: &'a Fleet,
    pub survey: &'a Survey,
    pub progress: &'a Progress,
    pub recap: &'a mut Recap,
    pub timeouts: Timeouts,
    /// The member the last step restarted, until the cluster sees it healthy ([`Self::settle`]).
    /// The next member's leaders start moving meanwhile (Restate takes seconds to place them),
    /// but nothing else restarts, and no other step starts, before that gate opens.
    pub restarted: Option<Restarted>,
    /// Each step recorded as it starts and ends.
    pub journal: Option<&'a crate::run_journal::RunJournal>,
    /// The backups of restate.toml the current step's changes kept, for its journal record.
    pub backups: std::sync::Mutex<Vec<String>>,
    /// Reaches a host again after its reboot.
    pub reacher: Option<&'a crate::reach::Reacher>,
    /// Hosts rebooted by this run, by name: their sessions since (the survey's ended with the
    /// old boot).
    pub rebooted: std::collections::BTreeMap<String, crate::reach::Reached>,
}

/// What a member's restart carries.
pub(super) enum Restart {
    /// restate.toml changed first (the agent rolls it back when the node does not come back).
    Patched(Vec<restate_fleet_proto::agent::PatchOp>),
    /// As it is: `restate-fleet restart`.
    AsItIs,
    /// Its whole host rebooted: `restate-fleet restart --reboot` ([`Executor::reboot`]).
    Reboot,
}

/// A member back on its own `/health` whose cluster-wide health gate is still to pass.
pub struct Restarted {
    pub(super) name: String,
    pub(super) node_name: String,
    pub(super) generation: u32,
}

impl<'a> Executor<'a> {
    pub async fn run(&mut self, steps: &[Step]) -> Result<(), StepError> {
        for (done, step) in steps.iter().enumerate() {
            // Between steps is the safe point: each step has passed its own health gate, or
            // (a member restart) passes it in `settle` before anything else happens.
            if crate::interrupt::requested() {
                self.settle().await?;
                return Err(StepError::Interrupted {
                    done,
                    total: steps.len(),
                    left: steps[done..].iter().map(ToString::to_string).collect(),
                    rerun: crate::interrupt::rerun_line(),
                });
            }
            // Only a member restart overlaps with the gate of the one before it.
            if !matches!(
                step,
                Step::FixMember { .. }
                    | Step::RollMember { .. }
                    | Step::RestartMember { .. }
                    | Step::TlsMode { .. }
            ) {
                self.settle().await?;
            }
            self.progress.step(&step.to_string());
            let started = Instant::now();
            let before = self.recap.change_lines();
            if let Some(journal) = self.journal {
                journal.step_started(done + 1, step.to_string(), self.progress);
            }
            let result = self.run_step(step).await;
            if let Some(journal) = self.journal {
                let backups = std::mem::take(
                    &mut *self
                        .backups
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                journal.step_ended(
                    done + 1,
                    started,
                    crate::run_journal::changes_since(&before, self.recap.change_lines()),
                    backups,
                    result.as_ref().err().map(ToString::to_string),
                    self.progress,
                );
            }
            result?;
            self.recap.step_done(step, started.elapsed());
        }
        self.settle().await
    }

    /// Waits until the cluster sees the member restarted last as healthy (alive, a metadata
    /// member when it runs a metadata server: several reads in a row).
    pub(super) async fn settle(&mut self) -> Result<(), StepError> {
        let restarted = self.restarted.take();
        self.gate_restarted(restarted).await
    }

    /// [`Self::settle`] for a member taken out of `restarted`, so that the gate can run while
    /// the next member drains.
    pub(super) async fn gate_restarted(
        &self,
        restarted: Option<Restarted>,
    ) -> Result<(), StepError> {
        let Some(restarted) = restarted else {
            return Ok(());
        };
        let Restarted {
            name,
            node_name,
            generation,
        } = restarted;
        let view = self.member_healthy(&name, &node_name, "restart").await?;
        let now = view.node(&node_name).map(|n| n.generation).unwrap_or(0);
        self.progress.host(
            &name,
            &format!("healthy (generation {generation} -> {now})"),
        );
        Ok(())
    }

    /// The gate after a member's `what` (restart, start): alive in the cluster and a metadata
    /// member when it runs a metadata server.
    pub(super) async fn member_healthy(
        &self,
        name: &str,
        node_name: &str,
        what: &str,
    ) -> Result<crate::admin::ClusterView, StepError> {
        gate::healthy(
            &self.clients(),
            &[node_name.to_string()],
            self.timeouts.restart,
        )
        .await
        .map_err(StepError::gate(format!(
            "{name}: not healthy after its {what}"
        )))
    }

    /// The host's SSH session now: a new one once this run rebooted it.
    pub(super) fn session_of(&self, host: &Surveyed) -> crate::ssh::Session {
        self.rebooted
            .get(host.name())
            .map_or_else(|| host.reached.session.clone(), |r| r.session.clone())
    }

    pub(super) fn host(&self, name: &str) -> Result<&'a Surveyed, StepError> {
        self.survey
            .host(name)
            .ok_or_else(|| StepError::host(name, "not among the reached hosts"))
    }

    pub(super) async fn run_step(&mut self, step: &Step) -> Result<(), StepError> {
        match step {
            Step::StartMember { host } => {
                let host = self.host(host)?;
                self.start_member(host).await
            }
            Step::FixMember {
                host,
                metadata_list,
                ..
            } => {
                let host = self.host(host)?;
                let patch = plan::fix_patch(self.fleet, host, *metadata_list);
                let what = if *metadata_list {
                    "fix and metadata list"
                } else {
                    "fix"
                };
                self.restart_member(host, Restart::Patched(patch), what)
                    .await
            }
            Step::RollMember { host, .. } => {
                let host = self.host(host)?;
                let patch = plan::full_patch(self.fleet, host);
                self.restart_member(host, Restart::Patched(patch), "metadata list")
                    .await
            }
            Step::RestartMember { host, reboot } => {
                let host = self.host(host)?;
                let how = if *reboot {
                    Restart::Reboot
                } else {
                    Restart::AsItIs
                };
                self.restart_member(host, how, "restart").await
            }
            Step::ReloadMember { host, .. } => {
                let host = self.host(host)?;
                self.reload_member(host).await
            }
            Step::SetMetadataList { host } => {
                let host = self.host(host)?;
                self.set_metadata_list(host).await
            }
            Step::ReplicatedLoglet => self.replicated_loglet().await,
            Step::Snapshot => self.snapshot().await,
            Step::JoinNew { hosts, .. } => self.join(hosts).await,
            Step::Provision {
                hosts,
                on,
                replication,
                property,
                ..
            } => {
                self.provision(hosts, on, *replication, property.clone())
                    .await
            }
            Step::RaiseReplication { to, property } => self.raise_replication(*to, property).await,
            Step::StageServer { hosts, .. } => self.stage_server(hosts).await,
            Step::UpgradeMember { host, from, .. } => {
                let host = self.host(host)?;
                self.upgrade_member(host, from).await
            }
            Step::InstallServer { hosts, .. } => self.install_server(hosts).await,
            Step::LowerReplication { property, .. } => self.lower_replication(property).await,
            Step::NodesetSize { .. } => self.nodeset_size().await,
            Step::ActivateWorker { host } => {
                let host = self.host(host)?;
                self.activate_left_draining(host).await
            }
            Step::RemoveNode { node, .. } => self.remove_node(node).await,
            Step::AddMetadataMember { host, id } => {
                self.change_metadata_member(host, *id, true).await
            }
            Step::RemoveMetadataMember { host, id } => {
                self.change_metadata_member(host, *id, false).await
            }
            Step::TlsFiles { hosts, .. } => self.tls_files(hosts).await,
            Step::TlsMode { host, mode } => self.tls_mode(host, *mode).await,
            Step::TlsRefusals => self.tls_refusals().await,
        }
    }

    /// Every host's admin client; a rebooted host's through its new session.
    pub fn clients(&self) -> Vec<AdminClient> {
        self.survey
            .hosts
            .iter()
            .map(|h| {
                self.rebooted
                    .get(h.name())
                    .map_or_else(|| h.reached.admin.clone(), |r| r.admin.clone())
            })
            .collect()
    }
}

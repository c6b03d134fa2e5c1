//! Carrying out the plan, step by step, each gated on the cluster's own view. The first failure
//! stops the run: what was done stays done and verified, what was not is named in the recap.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use restate_fleet_inventory::Fleet;
use restate_fleet_proto::agent::{ApplyReport, Operation, ServiceAction, ServiceReport};

use super::error::StepError;
use super::gate;
use super::plan::{self, Step};
use super::recap::Recap;
use super::survey::{Survey, Surveyed};
use crate::admin::{AdminClient, KIND_LOCAL, KIND_REPLICATED, Logs, Provision, Retry};
use crate::progress::Progress;

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
    name: String,
    pub(super) node_name: String,
    generation: u32,
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
                Step::FixMember { .. } | Step::RollMember { .. } | Step::RestartMember { .. }
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
    async fn gate_restarted(&self, restarted: Option<Restarted>) -> Result<(), StepError> {
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

    /// A stopped member started by its own service manager, then gated as after a restart.
    async fn start_member(&mut self, host: &Surveyed) -> Result<(), StepError> {
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

    /// The gate after a member's `what` (restart, start): alive in the cluster and a metadata
    /// member when it runs a metadata server.
    async fn member_healthy(
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

    async fn run_step(&mut self, step: &Step) -> Result<(), StepError> {
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
            Step::JoinNew { hosts } => self.join(hosts).await,
            Step::Provision {
                hosts,
                on,
                replication,
                property,
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
        }
    }

    /// Every host's admin client; a rebooted host's through its new session.
    pub(super) fn clients(&self) -> Vec<AdminClient> {
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
            && !plan::preview(self.fleet, host, patch.clone())
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
        let how_reboot = matches!(how, Restart::Reboot);
        let applied = match how {
            Restart::Patched(patch) => {
                self.progress
                    .host(&name, "writing restate.toml and restarting");
                self.apply(host, patch, true).await.map(Some)
            }
            Restart::AsItIs => {
                self.progress.host(&name, "restarting");
                self.service(host, ServiceAction::Restart, self.timeouts.restart)
                    .await
                    .map(|()| None)
            }
            Restart::Reboot => self.reboot(host).await.map(|()| None),
        };
        // In the recap before anything else can fail: it restarted.
        let outcome = match applied {
            Ok(Some(report)) => self.record_change(&name, &report),
            // Said by `reboot` as soon as the host was asked to.
            Ok(None) if how_reboot => Ok(()),
            Ok(None) => {
                self.recap.changed(&name, "restarted (rolling restart)");
                Ok(())
            }
            Err(err) => {
                self.recap.failed(&name, &err.to_string());
                Err(err)
            }
        };
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

    /// A member's restarted change in the recap: what was set, or why it was rolled back.
    fn record_change(&mut self, name: &str, report: &ApplyReport) -> Result<(), StepError> {
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

    /// Writes a member's new metadata server list and leaves the server running
    /// ([`Step::SetMetadataList`] says why that is enough).
    async fn set_metadata_list(&mut self, host: &Surveyed) -> Result<(), StepError> {
        let name = host.name();
        let report = self.write_without_restart(host).await?;
        if report.preview.changed {
            self.recap.changed(
                name,
                &format!(
                    "restate.toml: set {}, not restarted (read at its next start)",
                    plan::keys_text(&report.preview.changed_keys)
                ),
            );
        }
        Ok(())
    }

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
            environment: super::desired::environment(self.fleet, &host.reached.host),
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

    async fn replicated_loglet(&mut self) -> Result<(), StepError> {
        let clients = self.clients();
        let answered =
            crate::admin::first_answer(&clients, "cluster configuration", |c| async move {
                c.cluster_config().await
            })
            .await?;
        if answered.value.log_provider != KIND_REPLICATED {
            self.progress
                .step("switching the log provider to replicated (log replication 1)");
            crate::admin::first_answer(&clients, "set log provider", |c| async move {
                c.set_log_provider_replicated(1).await
            })
            .await?;
            self.recap
                .cluster_changed("log provider switched to replicated");
        }
        // The logs move over a few seconds after the switch: wait for every tail.
        logs_until(&clients, self.timeouts.settle, |logs| {
            (!logs.all_tails_are(KIND_REPLICATED)).then(|| {
                "logs still without a replicated tail; check that log-server nodes run".into()
            })
        })
        .await?;
        self.nodeset_size().await
    }

    /// The nodeset size the inventory asks for, else the 1 a single node keeps from the local
    /// loglet back to auto, so that logs spread over the grown cluster.
    pub(super) async fn nodeset_size(&mut self) -> Result<(), StepError> {
        let asked = self.fleet.cluster.nodeset_size;
        let change = crate::admin::first_answer(&self.clients(), "nodeset size", |c| async move {
            c.set_nodeset_size(asked).await
        })
        .await?;
        let (before, after) = (
            change.value.before.nodeset_size,
            change.value.after.nodeset_size,
        );
        if before != after {
            self.recap.cluster_changed(&format!(
                "nodeset size {} -> {}",
                plan::nodeset_size_text(before),
                plan::nodeset_size_text(after)
            ));
        }
        Ok(())
    }

    async fn snapshot(&mut self) -> Result<(), StepError> {
        let clients = self.clients();
        gate::partitions_led(&clients, self.timeouts.settle)
            .await
            .map_err(StepError::gate(
                "cluster: partitions not running, so they cannot be snapshotted",
            ))?;
        // Right after a node joined (a re-run after an interrupted join) or members restarted
        // one after the other, partitions move and the node asked answers "Partition not found"
        // or "Can not find a suitable node" for a moment: snapshots are safe to retry, so retry
        // those until the settle timeout; any other failure (the repository) stops at once.
        let deadline = Instant::now() + self.timeouts.settle;
        let report = loop {
            let report = crate::admin::first_answer(&clients, "snapshots", |c| async move {
                c.snapshot_all_partitions(true, Retry::default()).await
            })
            .await?
            .value;
            let moving = report.failures().next().is_some()
                && report.failures().all(|(_, e)| {
                    let e = e.to_string();
                    e.contains("Partition not found") || e.contains("Can not find a suitable node")
                });
            if !moving || Instant::now() >= deadline {
                break report;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let failures: Vec<String> = report
            .failures()
            .map(|(p, e)| format!("partition {p}: {e}"))
            .collect();
        if !failures.is_empty() {
            return Err(StepError::cluster(format!(
                "{} of {} partition snapshots failed, so no new node starts: {}; check the snapshot repository (address, bucket, credentials) and re-run",
                failures.len(),
                report.outcomes.len(),
                failures.join("; ")
            )));
        }
        self.recap.cluster_changed(&format!(
            "{} partitions snapshotted with trim",
            report.outcomes.len()
        ));
        logs_until(&clients, self.timeouts.settle, |logs| {
            let holding = logs.logs_holding(KIND_LOCAL);
            (!holding.is_empty()).then(|| format!(
                "logs {holding:?} still reference a local segment after snapshots with trim; new nodes could not read them. Re-run to snapshot again"
            ))
        })
        .await
    }

    async fn write_and_start(
        &self,
        names: &[String],
        health: Duration,
    ) -> Vec<Result<String, StepError>> {
        join_all(names.iter().map(|name| async move {
            let started = async {
                let host = self.host(name)?;
                self.progress
                    .host(name, "writing restate.toml and starting");
                let report = self
                    .apply(host, plan::full_patch(self.fleet, host), false)
                    .await?;
                if !report.succeeded() {
                    return Err(StepError::host(name, "writing restate.toml failed"));
                }
                // After the file exists: a dedicated user must be able to read it.
                self.ensure_service(host).await?;
                self.service(host, ServiceAction::Start, health).await?;
                Ok("restate.toml written, started".to_string())
            }
            .await;
            // Said when it happens: the step still waits for the other hosts' starts.
            if let Err(err) = &started {
                let text = err.to_string();
                let why = text.strip_prefix(&format!("{name}: ")).unwrap_or(&text);
                self.progress.host(name, &format!("failed: {why}"));
            }
            started
        }))
        .await
    }

    /// Records each host's outcome (what it did, or why it failed) in the recap; the step fails
    /// when any host did.
    pub(super) fn settle_hosts(
        &mut self,
        names: &[String],
        results: Vec<Result<String, StepError>>,
    ) -> Result<(), StepError> {
        let mut errors: Vec<StepError> = Vec::new();
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(what) => self.recap.changed(name, &what),
                Err(err) => {
                    self.recap.failed(name, &err.to_string());
                    errors.push(err);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(StepError::Hosts(errors)),
        }
    }

    async fn join(&mut self, names: &[String]) -> Result<(), StepError> {
        let results = self.write_and_start(names, self.timeouts.join).await;
        self.settle_hosts(names, results)?;
        let node_names = self.node_names(names);
        gate::healthy(&self.clients(), &node_names, self.timeouts.join)
            .await
            .map(drop)
            .map_err(StepError::gate("new nodes did not join"))
    }

    fn node_names(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter_map(|n| self.survey.host(n))
            .map(|h| h.reached.host.node_name.clone())
            .collect()
    }

    /// From zero: every node starts unprovisioned (none can become healthy alone), then the first
    /// metadata server provisions the cluster.
    async fn provision(
        &mut self,
        names: &[String],
        on: &str,
        replication: Option<u32>,
        property: Option<String>,
    ) -> Result<(), StepError> {
        let first = self.host(on)?;
        let provision = async {
            let deadline = Instant::now() + self.timeouts.join;
            loop {
                let request = Provision {
                    partition_replication: replication,
                    log_provider: Some(KIND_REPLICATED.to_string()),
                    log_replication: replication,
                    nodeset_size: self.fleet.cluster.nodeset_size,
                    replication_property: property.clone(),
                    ..Provision::default()
                };
                match first.reached.admin.provision_cluster(&request).await {
                    Ok(_) => return Ok(()),
                    Err(err) if Instant::now() >= deadline => {
                        return Err(StepError::host(on, format!("provisioning failed: {err}")));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
        };
        let (started, provisioned) =
            tokio::join!(self.write_and_start(names, self.timeouts.join), provision);
        provisioned?;
        self.recap
            .cluster_changed(&format!("cluster provisioned on {on}"));
        self.settle_hosts(names, started)?;
        let node_names = self.node_names(names);
        gate::healthy(&self.clients(), &node_names, self.timeouts.join)
            .await
            .map(drop)
            .map_err(StepError::gate("nodes did not all come up"))
    }

    async fn raise_replication(&mut self, to: u32, property: &str) -> Result<(), StepError> {
        let view = crate::admin::gather(&self.clients()).await?;
        let alive = view.nodes.iter().filter(|n| n.alive).count() as u32;
        if alive < to {
            return Err(StepError::cluster(format!(
                "replication {to} needs {to} alive nodes, {alive} are; add hosts or lower replication"
            )));
        }
        self.set_replication(property, "raised").await?;
        self.nodeset_size().await?;
        // Tails show `sealed` for a moment before the new segment with the new replication.
        logs_until(&self.clients(), self.timeouts.settle, |logs| {
            (!logs.all_tails_are(KIND_REPLICATED)).then(|| {
                "logs did not settle on replicated tails after the replication change".into()
            })
        })
        .await
    }
}

impl Executor<'_> {
    /// Partition and log replication to `property` (Restate's replication property: `{node: 2}`
    /// or `{node: 3, zone: 2}`); the recap says it was `moved` (raised, lowered).
    pub(super) async fn set_replication(
        &mut self,
        property: &str,
        moved: &str,
    ) -> Result<(), StepError> {
        let change =
            crate::admin::first_answer(&self.clients(), "set replication", |c| async move {
                c.set_replication_property(property).await
            })
            .await?;
        if change.value.changed() {
            self.recap
                .cluster_changed(&format!("replication {moved} to {property}"));
        }
        Ok(())
    }
}

/// Polls the cluster's logs every 100 ms until `pending` finds nothing left to wait for (it
/// returns why it is still waiting), for at most `timeout`.
async fn logs_until(
    clients: &[AdminClient],
    timeout: Duration,
    pending: impl Fn(&Logs) -> Option<String>,
) -> Result<(), StepError> {
    let deadline = Instant::now() + timeout;
    loop {
        let logs =
            crate::admin::first_answer(clients, "list logs", |c| async move { c.logs().await })
                .await?;
        match pending(&logs.value) {
            None => return Ok(()),
            Some(why) if Instant::now() >= deadline => {
                return Err(StepError::cluster(format!("{why} (after {timeout:?})")));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

//! New nodes: their restate.toml written and their service started (all at once), then the
//! gate; provisioning a cluster that has none; the join's gate on the cluster's view.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use restate_fleet_proto::agent::ServiceAction;

use super::executor::Executor;
use crate::admin::{KIND_REPLICATED, Provision};
use crate::rollout::decide::plan;
use crate::rollout::error::StepError;
use crate::rollout::gate;

impl Executor<'_> {
    pub(super) async fn write_and_start(
        &self,
        names: &[String],
        health: Duration,
    ) -> Vec<Result<String, StepError>> {
        let trust = match self.new_hosts_need_tls().then(|| self.tls_authority()) {
            Some(Err(err)) => {
                let text = err.to_string();
                return names
                    .iter()
                    .map(|name| Err(StepError::host(name, text.clone())))
                    .collect();
            }
            Some(Ok(trust)) => Some(trust),
            None => None,
        };
        let trust = trust.as_ref();
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
                // Owned by that user, before its first start.
                if let Some(trust) = trust {
                    self.put_tls_files(trust, host).await?;
                }
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

    pub(super) async fn join(&mut self, names: &[String]) -> Result<(), StepError> {
        let results = self.write_and_start(names, self.timeouts.join).await;
        self.settle_hosts(names, results)?;
        let node_names = self.node_names(names);
        gate::healthy(&self.clients(), &node_names, self.timeouts.join)
            .await
            .map(drop)
            .map_err(StepError::gate("new nodes did not join"))
    }

    pub(super) fn node_names(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter_map(|n| self.survey.host(n))
            .map(|h| h.reached.host.node_name.clone())
            .collect()
    }

    /// From zero: every node starts unprovisioned (none can become healthy alone), then the first
    /// metadata server provisions the cluster.
    pub(super) async fn provision(
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
}

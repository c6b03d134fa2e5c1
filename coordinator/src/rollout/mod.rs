//! The rollout: the scaling guide as a reconcile loop. Reach every host, survey (facts, classes,
//! cluster view, preflight), plan (ordered steps and file diffs), then carry the steps out behind
//! health gates and verify. `check` and `plan` stop before anything changes.

pub mod desired;
mod drain;
mod execute;
mod gate;
mod install;
pub mod leaving;
pub mod membership;
pub mod plan;
pub mod recap;
mod remove;
mod restatectl;
pub mod server;
pub mod survey;

use std::time::Duration;

use restate_fleet_inventory::{Fleet, Role};
use restate_fleet_proto::agent::{Operation, Reply};
use serde::Serialize;

use crate::admin::ClusterView;
use crate::progress::Progress;
use crate::reach::{ReachError, Reached, Reacher};
use crate::server_binary::LocalServers;
pub use execute::Timeouts;
use plan::Plan;
use recap::Recap;
use survey::Survey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Check,
    Plan,
    Apply,
}

/// Asked with the plan before anything changes; an error stops the run unchanged.
pub type Confirm = Box<dyn Fn(&Plan) -> Result<(), String> + Send + Sync>;

pub struct Options {
    pub mode: Mode,
    /// `--replication N`, over the inventory's.
    pub replication: Option<u32>,
    /// Who runs this, recorded in each node's lock.
    pub holder: String,
    /// Hosts that may be changed (`--limit`); every host is still surveyed.
    pub limit: Option<Vec<String>>,
    pub timeouts: Timeouts,
    /// Asked with the plan before anything changes; an error stops the run unchanged.
    pub confirm: Confirm,
    /// The inventory's restate-server, checked on this machine.
    pub servers: Option<std::sync::Arc<LocalServers>>,
    /// `--allow-version-skip`: upgrade members by more than one minor version.
    pub allow_version_skip: bool,
    /// Reaches the hosts of cluster nodes the inventory no longer lists, to remove them.
    pub reacher: Option<Reacher>,
}

/// Everything a run found and did, for the human report and `--output json`.
#[derive(Serialize)]
pub struct Report {
    pub hosts: Vec<HostReport>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub plan: Option<Plan>,
    pub recap: Recap,
    pub error: Option<String>,
    /// The cluster after the run (or as found, for check and plan).
    pub cluster: Option<ClusterView>,
}

#[derive(Serialize)]
pub struct HostReport {
    pub host: String,
    #[serde(flatten)]
    pub class: survey::Class,
    pub restate_version: Option<String>,
    pub running: bool,
    pub agent_bytes_uploaded: u64,
    /// What happens to its restate-server, when the inventory names one.
    pub server: Option<server::HostServer>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.problems.is_empty() && self.error.is_none()
    }
}

/// Runs check, plan or apply over hosts already reached (`unreachable` lists the others).
pub async fn run(
    fleet: &Fleet,
    reached: Vec<Reached>,
    unreachable: Vec<(String, String)>,
    options: Options,
    progress: &Progress,
) -> Report {
    let mut recap = Recap::new(fleet.hosts.iter().map(|h| h.name.as_str()));
    let mut report = Report {
        hosts: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        plan: None,
        recap: Recap::default(),
        error: None,
        cluster: None,
    };
    for (host, why) in &unreachable {
        recap.unreachable(host, why);
        report
            .problems
            .push(format!("{why}; nothing was changed on any host"));
    }
    if !report.problems.is_empty() {
        report.recap = recap;
        return report;
    }
    let started = std::time::Instant::now();
    if options.mode == Mode::Apply {
        let all: Vec<&Reached> = reached.iter().collect();
        match lock_each(&all, &options.holder).await {
            Ok(taken_over) => {
                for note in taken_over {
                    progress.warn(&note);
                    report.warnings.push(note);
                }
            }
            Err(err) => {
                report.problems.push(format!("{err}; nothing was changed"));
                report.recap = recap;
                return report;
            }
        }
    }
    tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "rollout: locks");
    progress.step("surveying hosts and the cluster");
    let mut survey = match survey::survey(
        fleet,
        reached,
        options.servers.as_deref(),
        options.allow_version_skip,
    )
    .await
    {
        Ok(survey) => survey,
        Err(err) => {
            report.problems.push(err.to_string());
            report.recap = recap;
            return report;
        }
    };
    report.hosts = survey
        .hosts
        .iter()
        .map(|h| HostReport {
            host: h.name().to_string(),
            class: h.class.clone(),
            restate_version: h
                .facts
                .restate_server
                .as_ref()
                .and_then(|b| b.version.clone()),
            running: h.facts.health.is_some(),
            agent_bytes_uploaded: h.reached.bytes_uploaded,
            server: h.server.clone(),
        })
        .collect();
    report.problems.extend(survey.problems.iter().cloned());
    report.warnings.extend(survey.warnings.iter().cloned());
    report.cluster = survey.view.clone();
    for warning in &survey.warnings {
        progress.warn(warning);
    }
    if let (Some(view), Some(reacher)) = (&survey.view, &options.reacher) {
        survey.leaving = leaving::gather(fleet, view, reacher).await;
    }
    if let Some(problem) = replication_problem(fleet, &survey, options.replication) {
        report.problems.push(problem);
    }
    if let Some(problem) = removal_problem(fleet, &survey, options.replication) {
        report.problems.push(problem);
    }
    report
        .problems
        .extend(membership::auto_join_problems(&survey));
    if let Some(view) = &survey.view
        && let Some(problem) = membership::refusal(view, &membership::changes(fleet, view))
    {
        report.problems.push(problem);
    }
    if options.mode == Mode::Apply && report.problems.is_empty() {
        let leaving_hosts: Vec<&Reached> = survey
            .leaving
            .iter()
            .filter_map(|l| l.reached.as_ref().ok())
            .collect();
        match lock_each(&leaving_hosts, &options.holder).await {
            Ok(taken_over) => {
                for note in taken_over {
                    progress.warn(&note);
                    report.warnings.push(note);
                }
            }
            Err(err) => report.problems.push(format!("{err}; nothing was changed")),
        }
    }
    if !report.problems.is_empty() {
        report.recap = recap;
        return report;
    }
    let mut plan = match plan::plan(fleet, &survey, options.replication).await {
        Ok(plan) => plan,
        Err(err) => {
            report.problems.push(err.to_string());
            report.recap = recap;
            return report;
        }
    };
    if let Some(limit) = &options.limit {
        plan.restrict_to(limit);
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "rollout: planned"
    );
    if options.mode != Mode::Apply {
        report.plan = Some(plan);
        report.recap = recap;
        return report;
    }
    if let Err(why) = (options.confirm)(&plan) {
        report.problems.push(format!("{why}; nothing was changed"));
        report.plan = Some(plan);
        report.recap = recap;
        return report;
    }
    let mut executor = execute::Executor {
        fleet,
        survey: &survey,
        progress,
        recap: &mut recap,
        timeouts: options.timeouts,
    };
    if let Err(err) = executor.run(&plan.steps).await {
        report.error = Some(err);
    }
    if report.error.is_none() {
        progress.step("verifying");
        let changed = !plan.steps.is_empty();
        match verify(fleet, &survey, options.replication, changed).await {
            Ok(view) => report.cluster = Some(view),
            Err(err) => report.error = Some(err),
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis(),
        "rollout: verified"
    );
    report.plan = Some(plan);
    report.recap = recap;
    report
}

/// Replication that the cluster cannot hold once the run is done: asked for (`--replication` or
/// the inventory's), else the cluster's own when nodes leave it. Found before any change, not
/// after new nodes joined. Counts the inventory's hosts by role (log-server for logs, worker for
/// partitions): the cluster's other nodes leave it.
fn replication_problem(fleet: &Fleet, survey: &Survey, replication: Option<u32>) -> Option<String> {
    let asked = replication.or(fleet.cluster.replication);
    let kept = survey
        .view
        .as_ref()
        .filter(|_| !survey.leaving.is_empty())
        .map(|view| {
            let (partitions, logs) = leaving::current_replication(view);
            partitions.max(logs)
        });
    let to = asked.or(kept)?;
    for (role, name, what) in [
        (Role::LogServer, "log-server", "logs"),
        (Role::Worker, "worker", "partitions"),
    ] {
        let holders: Vec<&str> = fleet
            .hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| h.node_name.as_str())
            .collect();
        if (holders.len() as u64) < u64::from(to) {
            let fix = if asked.is_some() {
                "lower --replication or `replication` in [cluster], or add hosts to the inventory"
            } else {
                "the cluster keeps its replication unless [cluster] `replication` lowers it; lower it, or keep enough hosts in the inventory"
            };
            return Some(format!(
                "replication {to} needs {to} nodes with the `{name}` role ({what}), the cluster would have {}: {}; {fix}; nothing was changed",
                holders.len(),
                holders.join(", ")
            ));
        }
    }
    None
}

/// What stops the leaving nodes from leaving (see `leaving::refusal`).
fn removal_problem(fleet: &Fleet, survey: &Survey, replication: Option<u32>) -> Option<String> {
    let view = survey.view.as_ref()?;
    if survey.leaving.is_empty() {
        return None;
    }
    let (_, logs) = leaving::current_replication(view);
    let log_replication = replication.or(fleet.cluster.replication).unwrap_or(logs);
    let holdings: Vec<(&str, leaving::Holdings)> = survey
        .leaving
        .iter()
        .map(|l| (l.node.name.as_str(), l.holdings()))
        .collect();
    leaving::refusal(view, &holdings, log_replication)
}

/// One lock per node, held by the agent session for the whole run: a second run refuses, and a
/// killed coordinator's locks go with its SSH sessions. A lock whose holder's run fell silent
/// (a lost link, a laptop asleep) is taken over, once the holder finished its operation; the
/// answer is one line per such host.
async fn lock_each(reached: &[&Reached], holder: &str) -> Result<Vec<String>, ReachError> {
    let locks = reached.iter().map(|host| {
        host.call(Operation::Lock {
            config_path: host.host.config_path.clone().into(),
            holder: Some(holder.to_string()),
        })
    });
    let mut taken_over = Vec::new();
    for (host, result) in reached
        .iter()
        .zip(futures_util::future::join_all(locks).await)
    {
        match result? {
            Reply::Lock(info) => {
                taken_over.extend(info.took_over.map(|how| format!("{}: {how}", host.name())))
            }
            other => {
                return Err(ReachError::AgentGone {
                    host: host.name().to_string(),
                    detail: format!("answered {other:?} to lock"),
                });
            }
        }
    }
    Ok(taken_over)
}

/// Step 7: every host alive under its node-name, every metadata server a member, every partition
/// led, the loglet replicated and replication as asked. After a run that changed nothing, the
/// survey's view (read moments ago) is checked instead of waiting out the gates again.
async fn verify(
    fleet: &Fleet,
    survey: &Survey,
    replication: Option<u32>,
    changed: bool,
) -> Result<ClusterView, String> {
    let names: Vec<String> = fleet.hosts.iter().map(|h| h.node_name.clone()).collect();
    if !changed
        && let Some(view) = &survey.view
        && check_view(fleet, view, &names, replication).is_ok()
    {
        return Ok(view.clone());
    }
    let view = gate::healthy(&survey.admin_clients(), &names, Duration::from_secs(60))
        .await
        .map_err(|e| format!("verify: {e}"))?;
    let view = gate::partitions_led(&survey.admin_clients(), Duration::from_secs(60))
        .await
        .map_err(|e| format!("verify: {e}"))
        .map(|led| {
            if led.nodes.len() >= view.nodes.len() {
                led
            } else {
                view
            }
        })?;
    check_view(fleet, &view, &[], replication).map(|()| view)
}

/// What verify demands of one view; `names` must all be healthy (the gates check that already
/// when they pass an empty list).
fn check_view(
    fleet: &Fleet,
    view: &ClusterView,
    names: &[String],
    replication: Option<u32>,
) -> Result<(), String> {
    let sick: Vec<&str> = names
        .iter()
        .filter(|n| !view.is_healthy(n))
        .map(String::as_str)
        .collect();
    if !sick.is_empty() {
        return Err(format!(
            "verify: not alive and a metadata member: {}",
            sick.join(", ")
        ));
    }
    let membership = membership::changes(fleet, view);
    if !membership.is_empty() {
        let hosts = |targets: &[membership::Target]| {
            targets
                .iter()
                .map(|t| t.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let joining: Vec<membership::Target> = membership
            .add_now
            .iter()
            .chain(&membership.add_after_restart)
            .cloned()
            .collect();
        return Err(format!(
            "verify: the metadata cluster does not follow [cluster] metadata-servers: not members: [{}]; members it does not name: [{}]",
            hosts(&joining),
            hosts(&membership.remove)
        ));
    }
    if !names.is_empty() && !gate::all_partitions_led(view) {
        return Err("verify: not every partition has a leader".to_string());
    }
    if view.config.log_provider != crate::admin::KIND_REPLICATED {
        return Err(format!(
            "verify: the log provider is {}, not replicated",
            view.config.log_provider
        ));
    }
    if let Some(wanted) =
        plan::wanted_replication(fleet, replication).filter(|w| w.is_location_aware())
        && !plan::replication_is(
            [
                view.config.partition_replication.as_deref(),
                view.config.log_replication.as_deref(),
            ],
            &wanted,
        )
    {
        return Err(format!(
            "verify: replication is partitions {:?}, logs {:?}; asked for {wanted}",
            view.config.partition_replication, view.config.log_replication
        ));
    }
    if let Some(to) = replication.or(fleet.cluster.replication) {
        let parse = |r: &Option<String>| r.as_deref().and_then(plan::replication_count);
        let (p, l) = (
            parse(&view.config.partition_replication),
            parse(&view.config.log_replication),
        );
        if p != Some(to) && p.is_some_and(|p| p < to) || l.is_some_and(|l| l < to) {
            return Err(format!(
                "verify: replication is partitions {p:?}, logs {l:?}; asked for {to}"
            ));
        }
    }
    Ok(())
}

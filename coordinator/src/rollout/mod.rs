//! The rollout: the scaling guide as a reconcile loop. Reach every host, survey (facts, classes,
//! cluster view, preflight), plan (ordered steps and file diffs), then carry the steps out behind
//! health gates and verify. `check` and `plan` stop before anything changes.

pub mod desired;
mod drain;
mod error;
mod execute;
#[cfg(test)]
mod fixtures;
pub mod gate;
mod host_checks;
mod install;
pub mod leaving;
mod live;
pub mod membership;
pub mod plan;
mod reboot;
pub mod recap;
mod release_keys;
mod reload;
mod remove;
pub mod restatectl;
pub mod server;
pub mod snapshot_store;
pub mod survey;

use std::time::Duration;

use restate_fleet_inventory::{Fleet, Role};
use restate_fleet_proto::agent::{LockInfo, Operation};
use serde::{Deserialize, Serialize};

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
    /// The run's journal on this machine (apply), its steps recorded as they go.
    pub journal: Option<crate::run_journal::RunJournal>,
    /// The last apply of this inventory, when it stopped part way: said first, with its steps
    /// held against the new plan.
    pub stopped_before: Option<restate_fleet_journal::Run>,
    /// `restate-fleet restart`: the plan is every member restarted as it is
    /// ([`plan::restarts`]), not the inventory's changes.
    pub restart_only: bool,
    /// `restart --reboot`: each member's host reboots instead.
    pub reboot: bool,
}

/// Everything a run found and did, for the human report and `--output json`.
#[derive(Serialize, Deserialize)]
pub struct Report {
    pub hosts: Vec<HostReport>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub plan: Option<Plan>,
    pub recap: Recap,
    pub error: Option<String>,
    /// The cluster after the run (or as found, for check and plan).
    pub cluster: Option<ClusterView>,
    /// The restatectl steps would use, or why there is none (no cluster: not looked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restatectl: Option<restatectl::Finding>,
    /// The run's journal (`restate-fleet history show RUN_ID`), for apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
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
    let mut report = survey_plan_act(fleet, reached, unreachable, options, progress).await;
    let stopped: Vec<String> = report
        .hosts
        .iter()
        .filter(|h| h.class == survey::Class::Member && !h.running)
        .map(|h| h.host.clone())
        .collect();
    report
        .recap
        .still_stopped(stopped.iter().map(String::as_str));
    report
}

async fn survey_plan_act(
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
        restatectl: None,
        run_id: None,
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
        lock_each(&all, &options, progress, &mut report).await;
        if !report.problems.is_empty() {
            report.recap = recap;
            return report;
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
    report.restatectl = survey.restatectl.clone();
    for warning in &survey.warnings {
        progress.warn(warning);
    }
    if let (Some(view), Some(reacher)) = (&survey.view, &options.reacher) {
        survey.leaving = leaving::gather(fleet, view, reacher).await;
    }
    let coming_back = leaving::coming_back(&survey);
    survey.leaving.extend(coming_back);
    let leaving_from = survey.view.as_ref().filter(|_| !survey.leaving.is_empty());
    if let Some(problem) = replication_problem(fleet, leaving_from, options.replication) {
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
        let leaving_hosts: Vec<&Reached> =
            survey.leaving.iter().filter_map(|l| l.own_host()).collect();
        lock_each(&leaving_hosts, &options, progress, &mut report).await;
    }
    if !report.problems.is_empty() {
        report.recap = recap;
        return report;
    }
    // A restart leaves every file as it is: the hosts are not asked what the inventory would
    // change.
    let planned = if options.restart_only {
        let members = survey.members().map(|m| plan::Restartable {
            host: m.name(),
            unit: match (&m.reached.host.service, m.facts.service.as_ref()) {
                (restate_fleet_inventory::Service::Systemd { unit }, Some(state)) => Some((
                    unit.as_str(),
                    state.systemd.as_ref().map_or("", |s| s.enabled.as_str()),
                )),
                _ => None,
            },
        });
        plan::restarts(members, survey.view.as_ref(), options.reboot).map_err(|why| vec![why])
    } else {
        match plan::gather(fleet, &survey).await {
            Ok(gathered) => {
                let rejected = plan::rejections(&gathered, options.limit.as_deref());
                if rejected.is_empty() {
                    Ok(plan::plan(fleet, &gathered, options.replication))
                } else {
                    Err(rejected)
                }
            }
            Err(err) => Err(vec![err.to_string()]),
        }
    };
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(problems) => {
            report.problems.extend(problems);
            report.recap = recap;
            return report;
        }
    };
    if let Some(limit) = &options.limit {
        plan.restrict_to(limit);
    }
    // What the steps need (restatectl, the snapshot store), held against what the survey saw.
    let (mut problems, warnings) =
        restatectl::needs(&plan.steps, survey.restatectl.as_ref(), |host| {
            handover_helps(fleet, &survey, host)
        });
    problems.extend(snapshot_store::needs(&plan.steps, &survey.snapshot_store));
    for warning in warnings {
        progress.warn(&warning);
        recap.warn(&warning);
        report.warnings.push(warning);
    }
    if !problems.is_empty() {
        report.problems.extend(problems);
        report.plan = Some(plan);
        report.recap = recap;
        return report;
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
    let steps: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    if let Some(before) = &options.stopped_before {
        let note = crate::run_journal::stopped_note(before, &steps);
        progress.warn(&note);
        report.warnings.push(note);
    }
    if let Some(journal) = &options.journal {
        journal.record(restate_fleet_journal::Record::Plan { steps }, progress);
        if let Some(view) = &survey.view {
            let summary = crate::run_journal::summary(view);
            journal.record(
                restate_fleet_journal::Record::ClusterBefore { summary },
                progress,
            );
        }
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
        restarted: None,
        journal: options.journal.as_ref(),
        backups: Default::default(),
        reacher: options.reacher.as_ref(),
        rebooted: Default::default(),
    };
    if let Err(err) = executor.run(&plan.steps).await {
        report.error = Some(err.to_string());
    }
    // Rebooted hosts are asked through their new sessions.
    let clients = executor.clients();
    drop(executor);
    if report.error.is_none() {
        progress.step("verifying");
        let changed = !plan.steps.is_empty();
        match verify(fleet, &survey, &clients, options.replication, changed).await {
            Ok(view) => report.cluster = Some(view),
            Err(err) => report.error = Some(err.to_string()),
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
/// `leaving_from`: the cluster, when nodes leave it (its replication is then kept unless asked
/// otherwise).
/// Whether moving `host`'s partition leaders away before it restarts would spare clients a
/// stall: it leads partitions and the other workers can take them (see `drain::worthwhile`).
fn handover_helps(fleet: &Fleet, survey: &Survey, host: &str) -> bool {
    let node = fleet.hosts.iter().find(|h| h.name == host);
    match (survey.view.as_ref(), node) {
        (Some(view), Some(node)) => drain::worthwhile(view, &node.node_name, None),
        _ => false,
    }
}

fn replication_problem(
    fleet: &Fleet,
    leaving_from: Option<&ClusterView>,
    replication: Option<u32>,
) -> Option<String> {
    let asked = replication.or(fleet.cluster.replication);
    let kept = leaving_from.map(|view| {
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
/// (a lost link, a laptop asleep) is taken over, once the holder finished its operation, and
/// the report warns of it; a lock held by a live run is a problem of the report. Taken in the
/// run's name: its holder and journal, which each host's audit log names.
async fn lock_each(
    reached: &[&Reached],
    options: &Options,
    progress: &Progress,
    report: &mut Report,
) {
    let run_id = options.journal.as_ref().map(|j| j.id());
    match lock_all(reached, &options.holder, run_id).await {
        Ok(notes) => {
            for note in notes {
                progress.warn(&note);
                report.warnings.push(note);
            }
        }
        Err((_, err)) => report.problems.push(format!("{err}; nothing was changed")),
    }
}

/// Locks every host's node for the run at once (see [`lock_each`]): the lines of the locks
/// taken over, or the first host whose lock is held by a live run.
pub async fn lock_all(
    reached: &[&Reached],
    holder: &str,
    run_id: Option<&str>,
) -> Result<Vec<String>, (String, ReachError)> {
    let locks = reached.iter().map(|host| {
        host.ask::<LockInfo>(Operation::Lock {
            config_path: host.host.config_path.clone().into(),
            holder: Some(holder.to_string()),
            run_id: run_id.map(str::to_string),
        })
    });
    let mut taken_over = Vec::new();
    for (host, result) in reached
        .iter()
        .zip(futures_util::future::join_all(locks).await)
    {
        let info = result.map_err(|err| (host.name().to_string(), err))?;
        taken_over.extend(info.took_over.map(|how| format!("{}: {how}", host.name())));
    }
    Ok(taken_over)
}

/// Step 7: every host alive under its node-name, every metadata server a member, every partition
/// led, the loglet replicated and replication as asked. After a run that changed nothing, the
/// survey's view (read moments ago) is checked instead of waiting out the gates again.
/// Why the cluster did not verify at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("verify: {0}")]
    Gate(#[from] gate::GateTimeout),
    #[error("verify: not alive and a metadata member: {}", .0.join(", "))]
    NotHealthy(Vec<String>),
    #[error("verify: not every partition has a leader")]
    PartitionsWithoutLeader,
    #[error("verify: the log provider is {0}, not replicated")]
    LogProvider(String),
    #[error(
        "verify: the metadata cluster does not follow [cluster] metadata-servers: not members: [{not_members}]; members it does not name: [{not_named}]"
    )]
    Membership {
        not_members: String,
        not_named: String,
    },
    #[error("verify: replication is partitions {partitions:?}, logs {logs:?}; asked for {asked}")]
    Spread {
        partitions: Option<String>,
        logs: Option<String>,
        asked: String,
    },
    #[error("verify: replication is partitions {partitions:?}, logs {logs:?}; asked for {asked}")]
    Replication {
        partitions: Option<u32>,
        logs: Option<u32>,
        asked: u32,
    },
}

async fn verify(
    fleet: &Fleet,
    survey: &Survey,
    clients: &[crate::admin::AdminClient],
    replication: Option<u32>,
    changed: bool,
) -> Result<ClusterView, VerifyError> {
    let names: Vec<String> = fleet.hosts.iter().map(|h| h.node_name.clone()).collect();
    if !changed
        && let Some(view) = &survey.view
        && check_view(fleet, view, &names, replication).is_ok()
    {
        return Ok(view.clone());
    }
    let view = gate::healthy(clients, &names, Duration::from_secs(60)).await?;
    let led = gate::partitions_led(clients, Duration::from_secs(60)).await?;
    let view = if led.nodes.len() >= view.nodes.len() {
        led
    } else {
        view
    };
    check_view(fleet, &view, &[], replication).map(|()| view)
}

/// What verify demands of one view; `names` must all be healthy (the gates check that already
/// when they pass an empty list).
fn check_view(
    fleet: &Fleet,
    view: &ClusterView,
    names: &[String],
    replication: Option<u32>,
) -> Result<(), VerifyError> {
    let sick: Vec<String> = names
        .iter()
        .filter(|n| !view.is_healthy(n))
        .cloned()
        .collect();
    if !sick.is_empty() {
        return Err(VerifyError::NotHealthy(sick));
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
        return Err(VerifyError::Membership {
            not_members: hosts(&joining),
            not_named: hosts(&membership.remove),
        });
    }
    if !names.is_empty() && !gate::all_partitions_led(view) {
        return Err(VerifyError::PartitionsWithoutLeader);
    }
    if view.config.log_provider != crate::admin::KIND_REPLICATED {
        return Err(VerifyError::LogProvider(view.config.log_provider.clone()));
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
        return Err(VerifyError::Spread {
            partitions: view.config.partition_replication.clone(),
            logs: view.config.log_replication.clone(),
            asked: wanted.to_string(),
        });
    }
    if let Some(asked) = replication.or(fleet.cluster.replication) {
        let parse = |r: &Option<String>| r.as_deref().and_then(plan::replication_count);
        let (partitions, logs) = (
            parse(&view.config.partition_replication),
            parse(&view.config.log_replication),
        );
        if partitions != Some(asked) && partitions.is_some_and(|p| p < asked)
            || logs.is_some_and(|l| l < asked)
        {
            return Err(VerifyError::Replication {
                partitions,
                logs,
                asked,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_view, replication_problem};
    use crate::rollout::fixtures::{fleet, view};

    #[test]
    fn replication_needs_as_many_nodes_of_each_role() {
        let replicated_twice = || {
            let mut v = view("grown");
            v.config.partition_replication = Some("{node: 2}".into());
            v.config.log_replication = Some("{node: 2}".into());
            v
        };
        let two = fleet("", &["n1", "n2"]);
        // (fleet, nodes leaving from, --replication, refused)
        let cases = [
            ("asked 2 of 2 hosts", &two, None, Some(2), false),
            ("asked 3 of 2 hosts", &two, None, Some(3), true),
            ("nothing asked, nothing leaving", &two, None, None, false),
            (
                "leaving a cluster of replication 2, 2 hosts stay",
                &two,
                Some(replicated_twice()),
                None,
                false,
            ),
            (
                "leaving a cluster of replication 2, 1 host stays",
                &fleet("", &["n1"]),
                Some(replicated_twice()),
                None,
                true,
            ),
            (
                "leaving, the inventory lowers it to 1",
                &fleet("replication = 1", &["n1"]),
                Some(replicated_twice()),
                None,
                false,
            ),
        ];
        for (name, fleet, leaving_from, replication, refused) in cases {
            let problem = replication_problem(fleet, leaving_from.as_ref(), replication);
            assert_eq!(problem.is_some(), refused, "{name}: {problem:?}");
            if let Some(problem) = problem {
                assert!(problem.contains("nothing was changed"), "{problem}");
            }
        }
    }

    #[test]
    fn verify_demands_live_members_a_replicated_loglet_and_the_replication_asked() {
        let names = |ns: &[&str]| ns.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let three = fleet("", &["n1", "n2", "n3"]);
        let local = || {
            let mut v = view("grown");
            v.config.log_provider = "local".into();
            v
        };
        let dead_n2 = || {
            let mut v = view("grown");
            v.nodes[1].alive = false;
            v
        };
        let cases = [
            (
                "grown",
                view("grown"),
                names(&["n1", "n2", "n3"]),
                None,
                true,
            ),
            (
                "a dead member",
                dead_n2(),
                names(&["n1", "n2", "n3"]),
                None,
                false,
            ),
            (
                "a dead member nobody asked about",
                dead_n2(),
                names(&[]),
                None,
                true,
            ),
            ("the local loglet", local(), names(&[]), None, false),
            (
                "replication 1, asked 2",
                view("grown"),
                names(&[]),
                Some(2),
                false,
            ),
            (
                "replication 1, asked 1",
                view("grown"),
                names(&[]),
                Some(1),
                true,
            ),
        ];
        for (name, v, names, replication, ok) in cases {
            let got = check_view(&three, &v, &names, replication);
            assert_eq!(got.is_ok(), ok, "{name}: {got:?}");
        }
    }
}

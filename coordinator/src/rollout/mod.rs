//! The rollout: the scaling guide as a reconcile loop, in the phases of a controller. Observe
//! (`observe/`: facts, the cluster's view, binaries, what leaving nodes hold; async, no
//! judgement), decide (`decide/`: classes, preflight, the plan and every refusal; pure and
//! synchronous, table-tested), act (`act/`: the executor carrying the steps out behind health
//! gates, then verify). The doors go one way: `act` uses `decide` and `observe`, `decide` only
//! `observe`'s types, `observe` neither. `survey.rs` interleaves the first two where what a host
//! is decides what to look at next; `gate.rs`, `recap.rs` and `error.rs` serve all three.
//! `check` and `plan` stop before anything changes.

pub mod act;
pub mod decide;
mod error;
#[cfg(test)]
mod fixtures;
pub mod gate;
pub mod observe;
pub mod recap;
mod survey;

use restate_fleet_inventory::{Fleet, Service};
use serde::{Deserialize, Serialize};

use crate::admin::{AdminClient, ClusterView};
use crate::progress::Progress;
use crate::reach::{Reached, Reacher};
use crate::server_binary::LocalServers;
pub use act::Timeouts;
use decide::plan::{self, Plan};
use decide::restatectl::Finding;
use decide::survey::{Class, Survey};
use recap::Recap;

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
    pub restatectl: Option<Finding>,
    /// The run's journal (`restate-fleet history show RUN_ID`), for apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct HostReport {
    pub host: String,
    #[serde(flatten)]
    pub class: Class,
    pub restate_version: Option<String>,
    pub running: bool,
    pub agent_bytes_uploaded: u64,
    /// What happens to its restate-server, when the inventory names one.
    pub server: Option<decide::server::HostServer>,
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
    let mut run = Run::new(fleet, &options, progress);
    for (host, why) in &unreachable {
        run.recap.unreachable(host, why);
        run.problem(format!("{why}; nothing was changed on any host"));
    }
    if options.mode == Mode::Apply && run.go_on() {
        run.lock(&reached.iter().collect::<Vec<_>>()).await;
    }
    if !run.go_on() {
        return run.finish(None);
    }
    progress.step("surveying hosts and the cluster");
    let Some(survey) = run.observe(reached).await else {
        return run.finish(None);
    };
    let plan = match run.decide(&survey).await {
        Some(plan) if options.mode == Mode::Apply && run.go_on() => plan,
        planned => return run.finish(planned),
    };
    if run.confirmed(&survey, &plan) {
        let clients = run.act(&survey, &plan).await;
        if run.report.error.is_none() {
            progress.step("verifying");
            run.verify(&survey, &clients, !plan.steps.is_empty()).await;
        }
    }
    run.finish(Some(plan))
}

/// One run as it goes: what it reports, and its recap.
struct Run<'a> {
    fleet: &'a Fleet,
    options: &'a Options,
    progress: &'a Progress,
    report: Report,
    recap: Recap,
}

impl<'a> Run<'a> {
    fn new(fleet: &'a Fleet, options: &'a Options, progress: &'a Progress) -> Self {
        Run {
            fleet,
            options,
            progress,
            report: Report {
                hosts: Vec::new(),
                problems: Vec::new(),
                warnings: Vec::new(),
                plan: None,
                recap: Recap::default(),
                error: None,
                cluster: None,
                restatectl: None,
                run_id: None,
            },
            recap: Recap::new(fleet.hosts.iter().map(|h| h.name.as_str())),
        }
    }

    /// No problem so far: the run goes on.
    fn go_on(&self) -> bool {
        self.report.problems.is_empty()
    }

    fn problem(&mut self, problem: String) {
        self.report.problems.push(problem);
    }

    fn warn(&mut self, warning: String) {
        self.progress.warn(&warning);
        self.report.warnings.push(warning);
    }

    /// The report, with the plan when there is one, and the members still stopped in its recap.
    fn finish(mut self, plan: Option<Plan>) -> Report {
        let stopped = self
            .report
            .hosts
            .iter()
            .filter(|h| h.class == Class::Member && !h.running)
            .map(|h| h.host.as_str());
        self.recap.still_stopped(stopped);
        self.report.plan = plan;
        self.report.recap = self.recap;
        self.report
    }

    /// The nodes' locks for the run (see `act/lock.rs`); a lock held by a live run is a problem.
    async fn lock(&mut self, hosts: &[&Reached]) {
        let run_id = self.options.journal.as_ref().map(|j| j.id());
        match act::lock::lock_all(hosts, &self.options.holder, run_id).await {
            Ok(notes) => notes.into_iter().for_each(|note| self.warn(note)),
            Err((_, err)) => self.problem(format!("{err}; nothing was changed")),
        }
    }

    /// The survey, in the report as found; with the leaving nodes and the refusals of what the
    /// inventory asks of the cluster. `None` when it could not be made.
    async fn observe(&mut self, reached: Vec<Reached>) -> Option<Survey> {
        let (fleet, options) = (self.fleet, self.options);
        let servers = options.servers.as_deref();
        let mut survey =
            match survey::survey(fleet, reached, servers, options.allow_version_skip).await {
                Ok(survey) => survey,
                Err(err) => {
                    self.problem(err.to_string());
                    return None;
                }
            };
        self.report.hosts = survey.hosts.iter().map(HostReport::of).collect();
        self.report.problems.extend(survey.problems.iter().cloned());
        self.report.warnings.extend(survey.warnings.iter().cloned());
        self.report.cluster = survey.view.clone();
        self.report.restatectl = survey.restatectl.clone();
        for warning in &survey.warnings {
            self.progress.warn(warning);
        }
        survey::leaving(fleet, &mut survey, options.reacher.as_ref()).await;
        let refusals = decide::refusals(fleet, &survey, options.replication);
        self.report.problems.extend(refusals);
        if options.mode == Mode::Apply && self.go_on() {
            let leaving: Vec<&Reached> =
                survey.leaving.iter().filter_map(|l| l.own_host()).collect();
            self.lock(&leaving).await;
        }
        Some(survey)
    }

    /// The plan, held against what its steps need; `None` when it is refused. The plan comes
    /// back with the problems of what it needs, for the report.
    async fn decide(&mut self, survey: &Survey) -> Option<Plan> {
        if !self.go_on() {
            return None;
        }
        let planned = if self.options.restart_only {
            // A restart leaves every file as it is: the hosts are not asked what would change.
            let members = survey.members().map(|m| plan::Restartable {
                host: m.name(),
                unit: match (&m.reached.host.service, m.facts.service.as_ref()) {
                    (Service::Systemd { unit }, Some(state)) => Some((
                        unit.as_str(),
                        state.systemd.as_ref().map_or("", |s| s.enabled.as_str()),
                    )),
                    _ => None,
                },
            });
            plan::restarts(members, survey.view.as_ref(), self.options.reboot)
                .map_err(|why| vec![why])
        } else {
            match survey::previews(self.fleet, survey).await {
                Ok(gathered) => plan::decided(
                    self.fleet,
                    &gathered,
                    self.options.limit.as_deref(),
                    self.options.replication,
                ),
                Err(err) => Err(vec![err.to_string()]),
            }
        };
        let mut plan = planned
            .map_err(|problems| self.report.problems.extend(problems))
            .ok()?;
        if let Some(limit) = &self.options.limit {
            plan.restrict_to(limit);
        }
        let (problems, warnings) = decide::needs(self.fleet, survey, &plan.steps);
        for warning in warnings {
            self.recap.warn(&warning);
            self.warn(warning);
        }
        self.report.problems.extend(problems);
        Some(plan)
    }

    /// The plan in the journal and shown to the operator; whether they let it go ahead.
    fn confirmed(&mut self, survey: &Survey, plan: &Plan) -> bool {
        let steps: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
        if let Some(before) = &self.options.stopped_before {
            self.warn(crate::run_journal::stopped_note(before, &steps));
        }
        if let Some(journal) = &self.options.journal {
            journal.record(restate_fleet_journal::Record::Plan { steps }, self.progress);
            if let Some(view) = &survey.view {
                let summary = crate::run_journal::summary(view);
                let record = restate_fleet_journal::Record::ClusterBefore { summary };
                journal.record(record, self.progress);
            }
        }
        match (self.options.confirm)(plan) {
            Ok(()) => true,
            Err(why) => {
                self.problem(format!("{why}; nothing was changed"));
                false
            }
        }
    }

    /// Carries the steps out; the admin clients to verify with (a rebooted host's new ones).
    async fn act(&mut self, survey: &Survey, plan: &Plan) -> Vec<AdminClient> {
        let mut executor = act::Executor {
            fleet: self.fleet,
            survey,
            progress: self.progress,
            recap: &mut self.recap,
            timeouts: self.options.timeouts,
            restarted: None,
            journal: self.options.journal.as_ref(),
            backups: Default::default(),
            reacher: self.options.reacher.as_ref(),
            rebooted: Default::default(),
        };
        if let Err(err) = executor.run(&plan.steps).await {
            self.report.error = Some(err.to_string());
        }
        executor.clients()
    }

    async fn verify(&mut self, survey: &Survey, clients: &[AdminClient], changed: bool) {
        let replication = self.options.replication;
        match act::verify::verify(self.fleet, survey, clients, replication, changed).await {
            Ok(view) => self.report.cluster = Some(view),
            Err(err) => self.report.error = Some(err.to_string()),
        }
    }
}

impl HostReport {
    fn of(h: &decide::survey::Surveyed) -> Self {
        HostReport {
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
        }
    }
}

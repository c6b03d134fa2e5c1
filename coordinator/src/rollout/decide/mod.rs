//! Every decision of a run, as a pure and synchronous function of what was observed: each host's
//! class, the preflight and host checks, what happens to each restate-server, the plan and its
//! steps, who may leave, what the metadata membership becomes, when a drain helps, what a live
//! change must show, what verify demands. Uses `observe`'s types and nothing of `act`; no `async`
//! here, so each rule is tested table-driven without a host.

pub mod desired;
pub mod drain;
pub mod host_checks;
pub mod leaving;
pub mod membership;
pub mod plan;
pub mod preflight;
pub mod release_keys;
pub mod reload;
pub mod replication;
pub mod restatectl;
pub mod server;
pub mod snapshot_store;
pub mod survey;
pub mod tls;
pub mod verify;

use restate_fleet_inventory::Fleet;

use plan::Step;
use survey::Survey;

/// What stops the run in what the inventory asks of the cluster as surveyed: replication the
/// hosts cannot hold, nodes that cannot leave, metadata servers that would join by themselves, a
/// membership change that cannot be made safely.
pub fn refusals(fleet: &Fleet, survey: &Survey, replication: Option<u32>) -> Vec<String> {
    let leaving_from = survey.view.as_ref().filter(|_| !survey.leaving.is_empty());
    let mut problems: Vec<String> = leaving::replication_problem(fleet, leaving_from, replication)
        .into_iter()
        .chain(leaving::removal_problem(fleet, survey, replication))
        .collect();
    problems.extend(membership::auto_join_problems(survey));
    if let Some(view) = &survey.view {
        problems.extend(membership::refusal(view, &membership::changes(fleet, view)));
    }
    problems
}

/// What the plan's steps need (restatectl, the snapshot store), held against what the survey
/// saw: the problems that stop the run, and the warnings.
pub fn needs(fleet: &Fleet, survey: &Survey, steps: &[Step]) -> (Vec<String>, Vec<String>) {
    let (mut problems, warnings) = restatectl::needs(steps, survey.restatectl.as_ref(), |host| {
        drain::handover_helps(fleet, survey, host)
    });
    problems.extend(snapshot_store::needs(steps, &survey.snapshot_store));
    (problems, warnings)
}

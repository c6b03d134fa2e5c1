//! `restate-fleet apply`: grow the cluster to what the inventory says, safely (see design.md's
//! safety rules), and print the recap.

use std::io::{IsTerminal, Write};

use clap::Args;

use super::Outcome;
use super::common::{self, print_report};
use crate::cli::{Global, RolloutArgs};
use crate::progress::Progress;
use crate::rollout::decide::plan::{Plan, Step};
use crate::rollout::{self, Mode};
use crate::run_journal::{self, RunJournal};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Change nodes that are already members without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

pub async fn run(global: &Global, args: ApplyArgs) -> anyhow::Result<Outcome> {
    run_as(global, &args.rollout, args.yes, "apply", None).await
}

/// `apply`, or (`command` "restart") every member restarted as it is: the same survey, gates,
/// journal and report.
pub(super) async fn run_as(
    global: &Global,
    rollout_args: &RolloutArgs,
    yes: bool,
    command: &str,
    reboot: Option<std::time::Duration>,
) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let progress = Progress::new(global.quiet);
    let mut options = common::rollout_options(global, fleet, Mode::Apply, rollout_args, &progress)?;
    options.restart_only = command == "restart";
    if let Some(boot) = reboot {
        options.reboot = true;
        options.timeouts.boot = boot;
    }
    let (reached, unreachable, reacher) =
        common::reach_hosts(global, fleet, &fleet.hosts, true, &progress).await?;
    options.reacher = Some(reacher);

    let asking = command.to_string();
    options.confirm = Box::new(move |plan: &Plan| {
        let touches_members = plan.steps.iter().any(|s| {
            matches!(
                s,
                Step::StartMember { .. }
                    | Step::FixMember { .. }
                    | Step::RollMember { .. }
                    | Step::ReloadMember { .. }
                    | Step::RestartMember { .. }
                    | Step::UpgradeMember { .. }
                    | Step::LowerReplication { .. }
                    | Step::RemoveNode { .. }
                    | Step::ActivateWorker { .. }
            )
        });
        if touches_members && !yes {
            confirm(plan, &asking)
        } else {
            Ok(())
        }
    });
    let journal = RunJournal::start(global, fleet, command, &progress);
    options.stopped_before = run_journal::stopped_before(global, command)
        .filter(|run| journal.as_ref().is_none_or(|j| j.id() != run.header.id));
    options.journal = journal.clone();
    let mut report = rollout::run(fleet, reached, unreachable, options, &progress).await;
    let interrupted = crate::interrupt::requested();
    if let Some(journal) = &journal {
        let outcome = run_journal::outcome(
            report.succeeded(),
            interrupted,
            report.recap.anything_changed(),
        );
        let error = report
            .error
            .clone()
            .or_else(|| (!report.problems.is_empty()).then(|| report.problems.join("; ")));
        journal.ended(
            outcome,
            error,
            &report.recap,
            report.cluster.as_ref(),
            &progress,
        );
        report.run_id = Some(journal.id().to_string());
    }
    print_report(global, &report, Mode::Apply)?;
    if let (Some(journal), false) = (&journal, report.succeeded()) {
        journal.point_to();
    }
    Ok(if report.succeeded() {
        Outcome::Done
    } else if interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Failed
    })
}

/// Asks on the terminal before members restart; without a terminal, `--yes` is required.
fn confirm(plan: &Plan, command: &str) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{command} would restart or remove nodes that are already cluster members and there is no terminal to ask; review `restate-fleet plan`, then re-run with --yes"
        ));
    }
    eprintln!("{command} will:");
    for step in &plan.steps {
        eprintln!("  - {step}");
    }
    let removing: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::RemoveNode { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    if removing.is_empty() {
        eprint!("change nodes that are already members of the cluster? [y/N] ");
    } else {
        eprint!(
            "remove {} from the cluster and change its other members as listed? [y/N] ",
            removing.join(", ")
        );
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err("not confirmed".into())
    }
}

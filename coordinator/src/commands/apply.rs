//! `restate-fleet apply`: grow the cluster to what the inventory says, safely (see design.md's
//! safety rules), and print the recap.

use std::io::{IsTerminal, Write};

use clap::Args;
use restate_fleet_inventory::Fleet;

use super::Outcome;
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::rollout::plan::{Plan, Step};
use crate::rollout::{self, Mode, Options, Report, Timeouts};
use crate::server_binary::LocalServers;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Change nodes that are already members without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// What `check`, `plan` and `apply` share.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// Raise partition and log replication to N once enough nodes are alive.
    #[arg(long)]
    pub replication: Option<u32>,
    /// Upgrade members by more than one minor version at once (Restate supports one; read its
    /// release notes first).
    #[arg(long)]
    pub allow_version_skip: bool,
}

pub async fn run(global: &Global, args: ApplyArgs) -> anyhow::Result<Outcome> {
    let loaded = super::inventory::load(global)?;
    let fleet = &loaded.fleet;
    let progress = Progress::new(global.quiet);
    let mut options = rollout_options(global, fleet, Mode::Apply, &args.rollout, &progress)?;
    let (reached, unreachable, reacher) =
        super::reach_hosts(global, fleet, &fleet.hosts, true, &progress).await?;
    options.reacher = Some(reacher);

    let yes = args.yes;
    options.confirm = Box::new(move |plan: &Plan| {
        let touches_members = plan.steps.iter().any(|s| {
            matches!(
                s,
                Step::FixMember { .. }
                    | Step::RollMember { .. }
                    | Step::UpgradeMember { .. }
                    | Step::LowerReplication { .. }
                    | Step::RemoveNode { .. }
                    | Step::ActivateWorker { .. }
            )
        });
        if touches_members && !yes {
            confirm(plan)
        } else {
            Ok(())
        }
    });
    let report = rollout::run(fleet, reached, unreachable, options, &progress).await;
    print_report(global, &report, Mode::Apply)?;
    Ok(if report.succeeded() {
        Outcome::Done
    } else if crate::interrupt::requested() {
        Outcome::Interrupted
    } else {
        Outcome::Failed
    })
}

/// Asks on the terminal before members restart; without a terminal, `--yes` is required.
fn confirm(plan: &Plan) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err("apply would restart or remove nodes that are already cluster members and there is no terminal to ask; review `restate-fleet plan`, then re-run with --yes".into());
    }
    eprintln!("apply will:");
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

/// The run's options; the inventory's restate-server binary is checked here, before any host is
/// contacted (a wrong one is bad input: exit 2, nothing uploaded).
pub fn rollout_options(
    global: &Global,
    fleet: &Fleet,
    mode: Mode,
    args: &RolloutArgs,
    progress: &Progress,
) -> anyhow::Result<Options> {
    let servers = match &fleet.cluster.restate_server {
        None => None,
        Some(wanted) => {
            progress.step(&format!(
                "checking restate-server {} on this machine",
                wanted.version
            ));
            let servers = LocalServers::prepare(wanted).map_err(super::BadInput)?;
            Some(std::sync::Arc::new(servers))
        }
    };
    let limit = match &global.limit {
        None => None,
        Some(_) => Some(
            super::inventory::select(global, fleet)?
                .into_iter()
                .map(|h| h.name.clone())
                .collect(),
        ),
    };
    Ok(Options {
        mode,
        replication: args.replication,
        holder: holder(),
        limit,
        timeouts: Timeouts::default(),
        confirm: Box::new(|_| Ok(())),
        servers,
        allow_version_skip: args.allow_version_skip,
        reacher: None,
    })
}

/// `user@machine pid N`, shown to whoever finds a node locked.
fn holder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "restate-fleet by {user}@{machine} pid {}",
        std::process::id()
    )
}

pub fn print_report(global: &Global, report: &Report, mode: Mode) -> anyhow::Result<()> {
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let mut out = String::new();
    for host in &report.hosts {
        let class = match &host.class {
            rollout::survey::Class::Member => "member".to_string(),
            rollout::survey::Class::New => "new".to_string(),
            rollout::survey::Class::Conflicting(_) => "CONFLICTING".to_string(),
        };
        let server = match host.server.as_ref().map(|s| (&s.change, s)) {
            Some((rollout::server::Change::Upgrade { .. }, s)) => {
                format!("  upgrade to {}", s.version)
            }
            Some((rollout::server::Change::Install { .. }, s)) => {
                format!("  install {}", s.version)
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<16} {:<12} restate-server {:<8} {}{server}\n",
            host.host,
            class,
            host.restate_version.as_deref().unwrap_or("-"),
            if host.running {
                "running"
            } else {
                "not running"
            }
        ));
    }
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    for problem in &report.problems {
        out.push_str(&format!("problem: {problem}\n"));
    }
    if let Some(plan) = &report.plan
        && mode != Mode::Apply
    {
        if mode == Mode::Plan {
            for file in &plan.files {
                out.push_str(&format!(
                    "\n{}: {}\n",
                    file.host,
                    file.preview.path.display()
                ));
                if let Some(access) = file.preview.access {
                    out.push_str(&format!("{access}\n"));
                }
                out.push_str(&file.preview.diff);
            }
        }
        if plan.steps.is_empty() {
            out.push_str("\nnothing to do: the fleet matches the inventory\n");
        } else {
            out.push_str("\nsteps apply would take:\n");
            for (i, step) in plan.steps.iter().enumerate() {
                out.push_str(&format!("  {}. {step}\n", i + 1));
            }
        }
        if mode == Mode::Check && report.succeeded() {
            out.push_str("ready: apply can run\n");
        }
    }
    if mode == Mode::Apply {
        out.push_str(&report.recap.human());
        if let Some(err) = &report.error {
            out.push_str(&format!("error: {err}\n"));
        }
        if let Some(view) = &report.cluster
            && report.succeeded()
        {
            out.push_str(&super::status::table(view));
        }
    }
    print!("{out}");
    Ok(())
}

//! What the subcommands share: loading the inventory, selecting hosts, reaching them and the
//! rollout's options. No subcommand imports another; they all import this.

use std::sync::Arc;

use anyhow::Context;
use restate_fleet_inventory::{Diagnostic, Diagnostics, Fleet, Host, Loaded};
use serde_json::json;

use super::BadInput;
use crate::cli::{Global, Output, RolloutArgs};
use crate::progress::Progress;
use crate::reach::{ReachOptions, Reached, Reacher};
use crate::render;
use crate::rollout::{Mode, Options, Report, Timeouts};
use crate::server_binary::LocalServers;
use crate::ssh::{SshClient, SshOptions};

/// Loads the inventory named by `-i`. Warnings go to stderr (unless `-q`); errors go to stderr,
/// or to stdout as one JSON document with `--output json`, and come back as bad input (exit 2).
pub fn load(global: &Global) -> anyhow::Result<Loaded> {
    let path = global.inventory.display().to_string();
    match restate_fleet_inventory::load(&global.inventory) {
        Ok(loaded) => {
            if global.output == Output::Human {
                print_warnings(global, &loaded.warnings);
            }
            Ok(loaded)
        }
        Err(diagnostics) => {
            report_errors(global, &path, &diagnostics)?;
            Err(BadInput(format!(
                "{path}: {} error(s) in the inventory; fix them and run again",
                diagnostics.errors().count()
            ))
            .into())
        }
    }
}

/// The hosts `--limit` selects (all without it), as bad input when a pattern matches nothing.
pub fn select<'f>(global: &Global, fleet: &'f Fleet) -> anyhow::Result<Vec<&'f Host>> {
    match &global.limit {
        None => Ok(fleet.hosts.iter().collect()),
        Some(limit) => fleet.select(limit).map_err(|e| {
            BadInput(format!(
                "{e}; the inventory's hosts are: {}",
                fleet
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()
        }),
    }
}

/// [`select`]'s hosts, owned: what a command reaches.
pub fn selected(global: &Global, fleet: &Fleet) -> anyhow::Result<Vec<Host>> {
    Ok(select(global, fleet)?.into_iter().cloned().collect())
}

pub fn print_warnings(global: &Global, warnings: &[Diagnostic]) {
    if !global.quiet {
        for warning in warnings {
            eprintln!("{warning}");
        }
    }
}

pub fn report_errors(global: &Global, path: &str, diagnostics: &Diagnostics) -> anyhow::Result<()> {
    match global.output {
        Output::Json => {
            let document = json!({ "inventory": path, "diagnostics": diagnostics });
            println!(
                "{}",
                serde_json::to_string_pretty(&document).context("serializing diagnostics")?
            );
        }
        Output::Human => {
            for diagnostic in &diagnostics.0 {
                eprintln!("{diagnostic}");
            }
        }
    }
    Ok(())
}

/// Every selected host reached (session, agent, admin client), and the ones that could not be,
/// with the reason. Nothing is changed on any host here.
pub async fn reach_hosts(
    global: &Global,
    fleet: &Fleet,
    hosts: &[Host],
    start_agent: bool,
    progress: &Progress,
) -> anyhow::Result<(Vec<Reached>, Vec<(String, String)>, Reacher)> {
    let passphrase = fleet
        .hosts
        .iter()
        .find_map(|h| h.ssh.identity_passphrase.as_ref())
        .map(|s| s.expose().to_string());
    let mut options = SshOptions::from_env(
        global.known_hosts.clone(),
        global.accept_new_host_keys,
        passphrase,
    )?;
    options.forks = global.forks.max(1);
    let client = SshClient::new(options);
    progress.step(&format!("reaching {} host(s)", hosts.len()));
    let reacher = Reacher {
        client,
        options: ReachOptions {
            agent: global.agent.clone(),
            start_agent,
            grpc: global.grpc.into(),
            tls: tls_identity(fleet)?,
        },
    };
    let results = reacher.reach(hosts).await;
    let mut reached = Vec::new();
    let mut unreachable = Vec::new();
    for (host, result) in hosts.iter().zip(results) {
        match result {
            Ok(r) => reached.push(r),
            Err(err) => {
                progress.host(&host.name, &format!("unreachable: {err}"));
                unreachable.push((host.name.clone(), err.to_string()));
            }
        }
    }
    Ok((reached, unreachable, reacher))
}

/// The tool's fabric TLS identity from the inventory's CA directory, once the CA was made.
fn tls_identity(fleet: &Fleet) -> anyhow::Result<Option<crate::admin::ClientIdentity>> {
    let Some(dir) = crate::ca_dir::CaDir::of(fleet) else {
        return Ok(None);
    };
    dir.identity().map_err(|e| {
        anyhow::anyhow!(
            "[cluster.tls] ca-dir: cannot read the tool's certificate: {e}; check the directory's permissions (it is yours, mode 0700)"
        )
    })
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
            let servers = LocalServers::prepare(wanted).map_err(BadInput)?;
            Some(Arc::new(servers))
        }
    };
    let limit = match &global.limit {
        None => None,
        Some(_) => Some(
            select(global, fleet)?
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
        journal: None,
        stopped_before: None,
        restart_only: false,
        reboot: false,
    })
}

/// `user@machine pid N`, shown to whoever finds a node locked.
pub fn holder() -> String {
    let (user, machine) = who();
    format!(
        "restate-fleet by {user}@{machine} pid {}",
        std::process::id()
    )
}

/// The local user and this machine's name.
pub fn who() -> (String, String) {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    (user, machine)
}

/// `check`, `plan` and `apply`: the report as JSON or for people.
pub fn print_report(global: &Global, report: &Report, mode: Mode) -> anyhow::Result<()> {
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", render::report(report, mode));
    }
    Ok(())
}

/// The host's last `lines` log lines (`since`: from then on, journals only), or why not, naming
/// the host.
pub async fn log_tail(host: &Reached, lines: usize, since: Option<&str>) -> Result<String, String> {
    let Some(argv) = crate::logs::command(&host.host.service, lines, since) else {
        return Err(format!(
            "{}: no log known: its service commands name none; set `log = PATH` in its service (the file they write restate-server's output to)",
            host.name()
        ));
    };
    match host.session.exec(&argv, b"").await {
        Ok(out) if out.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{}: `{}` failed ({}): {}",
            host.name(),
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{}: {e}", host.name())),
    }
}

/// The hosts `--limit` selects, reached; each one that could not be, as a problem naming it.
pub async fn reach_selected(
    global: &Global,
    fleet: &Fleet,
    start_agent: bool,
    progress: &Progress,
) -> anyhow::Result<(Vec<Reached>, Vec<String>)> {
    let hosts = selected(global, fleet)?;
    let (reached, unreachable, _) =
        reach_hosts(global, fleet, &hosts, start_agent, progress).await?;
    let problems = unreachable
        .iter()
        .map(|(host, why)| format!("{host}: unreachable: {why}"))
        .collect();
    Ok((reached, problems))
}

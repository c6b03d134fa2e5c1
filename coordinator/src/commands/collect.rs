//! `restate-fleet collect`: one archive for a support ticket. Per host its facts, host checks,
//! restate.toml, environment files, unit and status, log tail, data directory size and
//! restate-server version; for the cluster what the admin API reports; the inventory and the
//! latest run's journal. Secrets are redacted on the hosts and scrubbed again here. Changes
//! nothing on any host.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use restate_fleet_proto::agent::{Collected, Facts, HostChecks, Operation};

use super::{BadInput, Outcome, common};
use crate::bundle::{Bundle, CollectReport};
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::reach::Reached;
use crate::{admin, render, rollout, run_journal};

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Where to write the bundle (default: restate-fleet-bundle-<time>.tar.gz here).
    #[arg(short = 'o', long)]
    pub output_file: Option<PathBuf>,
    /// How many of the last log lines of each host.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub lines: usize,
}

pub async fn run(global: &Global, args: CollectArgs) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let now = SystemTime::now();
    let root = format!(
        "restate-fleet-bundle-{}",
        restate_fleet_clock::file_stamp(now)
    );
    let path = args
        .output_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{root}.tar.gz")));
    if path.is_dir() {
        return Err(BadInput(format!(
            "{}: is a directory; name the bundle's file with -o, e.g. -o {}/{root}.tar.gz",
            path.display(),
            path.display()
        ))
        .into());
    }
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, mut problems) = common::reach_selected(global, fleet, true, &progress).await?;
    let mut bundle = Bundle::new(root, fleet.secret_values());

    progress.step("collecting from every host and the cluster");
    let clients = rollout::observe::cluster::admin_clients(reached.iter());
    let (parts, view) = tokio::join!(
        futures_util::future::join_all(reached.iter().map(|h| host_part(h, args.lines))),
        admin::gather(&clients)
    );
    for (host, files, host_problems) in parts {
        for (name, text) in files {
            bundle.add(format!("hosts/{host}/{name}"), &text);
        }
        problems.extend(host_problems);
    }
    match view {
        Ok(view) => bundle.add("cluster/view.json", &serde_json::to_string_pretty(&view)?),
        Err(e) => problems.push(format!("cluster: no admin API answered: {e}")),
    }
    match std::fs::read_to_string(&global.inventory) {
        Ok(text) => bundle.add("inventory.toml", &text),
        Err(e) => problems.push(format!("{}: {e}", global.inventory.display())),
    }
    if let Some(run) = run_journal::latest(global) {
        match std::fs::read_to_string(&run.path) {
            Ok(text) => bundle.add(format!("journal/{}.jsonl", run.header.id), &text),
            Err(e) => problems.push(format!("{}: {e}", run.path.display())),
        }
    }
    bundle.add(
        "README.txt",
        &render::bundle_readme(&reached_names(&reached), &problems),
    );

    let bytes = write(&bundle, &path, now)?;
    let report = CollectReport {
        path: path.display().to_string(),
        bytes,
        files: bundle.names(),
        problems,
    };
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::collect(&report));
    }
    Ok(if report.problems.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

fn reached_names(reached: &[Reached]) -> Vec<String> {
    reached.iter().map(|h| h.name().to_string()).collect()
}

/// One host's files and what could not be had, each problem naming the host.
async fn host_part(host: &Reached, lines: usize) -> (String, Vec<(String, String)>, Vec<String>) {
    let name = host.name().to_string();
    let node = host.node_target(Duration::from_secs(1));
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let (facts, checks, collected, log) = tokio::join!(
        host.ask::<Box<Facts>>(Operation::Facts {
            node: node.clone(),
            restate_server: None,
        }),
        host.ask::<HostChecks>(Operation::HostChecks {
            node: node.clone(),
            ports: Vec::new(),
        }),
        host.ask::<Collected>(Operation::Collect { node }),
        common::log_tail(host, lines, None),
    );
    let mut json = |file: &str, value: Result<String, String>| match value {
        Ok(text) => files.push((file.to_string(), text)),
        Err(e) => problems.push(format!("{name}: {file}: {e}")),
    };
    json(
        "facts.json",
        facts
            .map_err(|e| e.to_string())
            .and_then(|f| serde_json::to_string_pretty(&f).map_err(|e| e.to_string())),
    );
    json(
        "host-checks.json",
        checks
            .map_err(|e| e.to_string())
            .and_then(|c| serde_json::to_string_pretty(&c).map_err(|e| e.to_string())),
    );
    match collected {
        Ok(collected) => {
            files.extend(collected.files.into_iter().map(|f| (f.name, f.text)));
            problems.extend(collected.errors.into_iter().map(|e| format!("{name}: {e}")));
        }
        Err(e) => problems.push(format!("{name}: {e}")),
    }
    match log {
        Ok(text) => files.push(("log.txt".to_string(), text)),
        Err(e) => problems.push(e),
    }
    (name, files, problems)
}

/// Writes the bundle next to its final name and moves it there (0600: it describes the fleet),
/// so that a failed write leaves no half bundle under that name. Returns its size.
fn write(bundle: &Bundle, path: &std::path::Path, now: SystemTime) -> anyhow::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| {
            BadInput(format!(
                "{}: cannot write the bundle: {e}",
                partial.display()
            ))
        })?;
    let mtime = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let written = bundle
        .write_tar_gz(std::io::BufWriter::new(&file), mtime)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(BadInput(format!("{}: cannot write the bundle: {e}", path.display())).into());
    }
    Ok(std::fs::metadata(path).map_or(0, |m| m.len()))
}

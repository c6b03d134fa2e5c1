//! `restate-fleet logs`: each selected host's restate-server log (its unit's journal, or the
//! file its service commands write), merged in time order and prefixed by host.

use clap::Args;

use super::{Outcome, common};
use crate::cli::{Global, Output};
use crate::progress::Progress;
use crate::render;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// How many of the last lines of each host.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub lines: usize,
    /// From then on, as journalctl takes it (`10 min ago`, `2026-12-03 11:00`); journals only.
    #[arg(long)]
    pub since: Option<String>,
}

pub async fn run(global: &Global, args: LogsArgs) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let hosts = common::selected(global, fleet)?;
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, unreachable, _) =
        common::reach_hosts(global, fleet, &hosts, false, &progress).await?;
    let mut problems: Vec<String> = unreachable
        .iter()
        .map(|(host, why)| format!("{host}: unreachable: {why}"))
        .collect();
    let since = args.since.as_deref();
    let reads = reached.iter().map(|host| async move {
        let Some(argv) = crate::logs::command(&host.host.service, args.lines, since) else {
            return Err(format!(
                "{}: no log known: its service commands name none; set `log = PATH` in its service (the file they write restate-server's output to)",
                host.name()
            ));
        };
        match host.session.exec(&argv, b"").await {
            Ok(out) if out.success() => Ok((
                host.name().to_string(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )),
            Ok(out) => Err(format!(
                "{}: `{}` failed ({}): {}",
                host.name(),
                argv.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("{}: {e}", host.name())),
        }
    });
    let mut texts = Vec::new();
    for result in futures_util::future::join_all(reads).await {
        match result {
            Ok(text) => texts.push(text),
            Err(problem) => problems.push(problem),
        }
    }
    let report = crate::logs::LogsReport {
        lines: crate::logs::merge(texts),
        problems,
    };
    if global.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::logs(&report.lines));
        for problem in &report.problems {
            eprintln!("warning: {problem}");
        }
    }
    Ok(if report.problems.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

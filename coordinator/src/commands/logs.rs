//! `restate-fleet logs`: each selected host's restate-server log (its unit's journal, or the
//! file its service commands write), merged in time order and prefixed by host.

use clap::Args;
use tokio::sync::{mpsc, watch};

use super::{Outcome, common};
use crate::cli::{Global, Output};
use crate::logs::{LogLine, LogsReport};
use crate::progress::Progress;
use crate::reach::Reached;
use crate::render;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// How many of the last lines of each host.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub lines: usize,
    /// From then on, as journalctl takes it (`10 min ago`, `2026-12-03 11:00`); journals only.
    #[arg(long)]
    pub since: Option<String>,
    /// Then keep printing each host's new lines as they come, until Ctrl-C (with
    /// `--output json`: one JSON line per log line).
    #[arg(short = 'f', long)]
    pub follow: bool,
}

pub async fn run(global: &Global, args: LogsArgs) -> anyhow::Result<Outcome> {
    let loaded = common::load(global)?;
    let fleet = &loaded.fleet;
    let progress = Progress::new(global.quiet || global.output == Output::Json);
    let (reached, mut problems) = common::reach_selected(global, fleet, false, &progress).await?;
    let since = args.since.as_deref();
    let reads = reached.iter().map(|host| async move {
        common::log_tail(host, args.lines, since)
            .await
            .map(|text| (host.name().to_string(), text))
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
    if args.follow {
        return follow(global, &reached, report).await;
    }
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

/// What a follower tells the printer.
enum Followed {
    Line(LogLine),
    /// The host's follower ended by itself (the host went away, or its log did).
    Ended(String, String),
}

/// Prints the backlog, then every host's new lines as they come, until Ctrl-C or until every
/// follower has ended. Each follower stops when its channel closes (`logs::follow_command`).
async fn follow(
    global: &Global,
    reached: &[Reached],
    backlog: LogsReport,
) -> anyhow::Result<Outcome> {
    let json = global.output == Output::Json;
    let width = reached
        .iter()
        .map(|h| h.name().chars().count())
        .max()
        .unwrap_or(0);
    let print = |line: &LogLine| -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(line)?);
        } else {
            print!("{}", render::log_line(line, width));
        }
        Ok(())
    };
    for line in &backlog.lines {
        print(line)?;
    }
    for problem in &backlog.problems {
        eprintln!("warning: {problem}");
    }
    let (lines, mut incoming) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let mut followers = Vec::new();
    for host in reached {
        let Some(argv) = crate::logs::follow_command(&host.host.service) else {
            continue;
        };
        let name = host.name().to_string();
        let session = host.session.clone();
        let (lines, mut stopped) = (lines.clone(), stopped.clone());
        followers.push(tokio::spawn(async move {
            let mut stream = match session.exec_streaming(&argv).await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = lines.send(Followed::Ended(name, e.to_string()));
                    return;
                }
            };
            loop {
                tokio::select! {
                    line = stream.recv_line() => match line {
                        Ok(Some(raw)) => {
                            if let Some(line) = crate::logs::followed(&name, &raw) {
                                let _ = lines.send(Followed::Line(line));
                            }
                        }
                        Ok(None) => {
                            let why = String::from_utf8_lossy(stream.stderr()).trim().to_string();
                            let _ = lines.send(Followed::Ended(name, why));
                            return;
                        }
                        Err(e) => {
                            let _ = lines.send(Followed::Ended(name, e.to_string()));
                            return;
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            // Closing stdin ends the follower on the host.
            let _ = tokio::time::timeout(FINISH, stream.finish()).await;
        }));
    }
    drop((lines, stopped));
    let mut ended = Vec::new();
    loop {
        tokio::select! {
            message = incoming.recv() => match message {
                Some(Followed::Line(line)) => print(&line)?,
                Some(Followed::Ended(host, why)) => {
                    eprintln!("warning: {host}: its log stopped coming: {}", if why.is_empty() { "the follower ended" } else { &why });
                    ended.push(host);
                }
                // Every follower has ended.
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = stop.send(true);
    for follower in followers {
        let _ = tokio::time::timeout(FINISH, follower).await;
    }
    Ok(if backlog.problems.is_empty() && ended.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// How long a follower may take to stop once asked.
const FINISH: std::time::Duration = std::time::Duration::from_secs(3);

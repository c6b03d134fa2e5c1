//! `restate-fleet logs`, the decisions: what to run on a host for its restate-server's log (its
//! unit's journal, or the file a command-managed service writes), and how the hosts' lines merge
//! into one stream in time order. The command in `commands/logs.rs` runs and prints.

use restate_fleet_inventory::Service;
use serde::{Deserialize, Serialize};

/// What `logs --output json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogsReport {
    pub lines: Vec<LogLine>,
    /// Hosts whose log could not be read, and why.
    pub problems: Vec<String>,
}

/// One line of a host's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub host: String,
    /// UTC, `2026-12-03T11:53:31.123456`; `None`: the line carried no time of its own (a
    /// continuation), it stays after the line before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub line: String,
}

/// The command that prints a host's last `lines` log lines (`since`: from then on, journal
/// only); `None` when its service names no log.
pub fn command(service: &Service, lines: usize, since: Option<&str>) -> Option<Vec<String>> {
    match service {
        Service::Systemd { unit } => {
            let lines = lines.to_string();
            let mut tail = vec!["--lines", lines.as_str()];
            if let Some(since) = since {
                tail.extend(["--since", since]);
            }
            Some(journal(unit, &tail))
        }
        Service::Command { log: Some(log), .. } => Some(vec![
            "tail".into(),
            "-n".into(),
            lines.to_string(),
            log.clone(),
        ]),
        Service::Command { log: None, .. } => None,
    }
}

/// `journalctl` of `unit`, in UTC with microseconds (what [`merge`] orders by), then `tail`.
fn journal(unit: &str, tail: &[&str]) -> Vec<String> {
    [
        "journalctl",
        "--unit",
        unit,
        "--no-pager",
        "--utc",
        "--output",
        "short-iso-precise",
    ]
    .iter()
    .chain(tail)
    .map(|s| s.to_string())
    .collect()
}

/// Keeps a follower (`journalctl --follow`, `tail -F`) running only while its SSH channel is
/// open: it reads stdin to its end, which comes when restate-fleet stops or the link drops, then
/// ends the follower. Without it, a follower outlives the channel until its next line fails.
const FOLLOW_SCRIPT: &str = r#""$@" & follower=$!
cat > /dev/null
kill "$follower" 2> /dev/null
wait "$follower" 2> /dev/null
exit 0"#;

/// The command that prints a host's new log lines as they come, until its stdin closes; `None`
/// when its service names no log.
pub fn follow_command(service: &Service) -> Option<Vec<String>> {
    let follower: Vec<String> = match service {
        Service::Systemd { unit } => journal(unit, &["--lines", "0", "--follow"]),
        Service::Command { log: Some(log), .. } => ["tail", "-n", "0", "-F", log]
            .into_iter()
            .map(str::to_string)
            .collect(),
        Service::Command { log: None, .. } => return None,
    };
    let mut argv: Vec<String> = ["sh", "-c", FOLLOW_SCRIPT, "restate-fleet-logs"]
        .into_iter()
        .map(str::to_string)
        .collect();
    argv.extend(follower);
    Some(argv)
}

/// One line of a followed log, as [`merge`] would have made it.
pub fn followed(host: &str, raw: &str) -> Option<LogLine> {
    let line = strip_ansi(raw);
    if line.trim().is_empty() || line.starts_with("-- ") || line.starts_with("tail: ") {
        return None;
    }
    Some(LogLine {
        host: host.to_string(),
        at: timestamp(&line),
        line,
    })
}

/// The hosts' logs as one stream: lines ordered by their time, each host's own order kept for
/// equal times and for lines without one (which follow the line before them).
pub fn merge(hosts: Vec<(String, String)>) -> Vec<LogLine> {
    // (time, host index, position): a line without a time takes its predecessor's.
    let mut keyed: Vec<(String, usize, usize, LogLine)> = Vec::new();
    for (index, (host, text)) in hosts.into_iter().enumerate() {
        let mut last = String::new();
        for (position, raw) in text.lines().enumerate() {
            let line = strip_ansi(raw);
            if line.trim().is_empty() || line.starts_with("-- ") {
                // journalctl's "-- No entries --" and boot markers.
                continue;
            }
            let at = timestamp(&line);
            if let Some(at) = &at {
                last = at.clone();
            }
            keyed.push((
                last.clone(),
                index,
                position,
                LogLine {
                    host: host.clone(),
                    at,
                    line,
                },
            ));
        }
    }
    keyed.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    keyed.into_iter().map(|(.., line)| line).collect()
}

/// The UTC time a line starts with (journalctl's `2026-12-03T11:53:31.123456+00:00`, Restate's
/// own `2026-12-03T11:53:31.123456Z`), to microseconds.
fn timestamp(line: &str) -> Option<String> {
    let word = line.split_whitespace().next()?;
    let bytes = word.as_bytes();
    let shape = bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && word[..4].bytes().all(|b| b.is_ascii_digit());
    if !shape {
        return None;
    }
    let (seconds, rest) = word.split_at(19);
    let fraction: String = rest
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(format!("{seconds}.{fraction:0<6.6}"))
}

/// Without terminal colour codes (Restate colours its own log).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_log_command() {
        let systemd = Service::Systemd {
            unit: "restate.service".into(),
        };
        let command = |log: Option<&str>| Service::Command {
            start: vec!["s".into()],
            stop: vec!["s".into()],
            restart: vec!["s".into()],
            status: vec!["s".into()],
            log: log.map(str::to_string),
        };
        let cases = [
            (
                &systemd,
                None,
                Some(
                    "journalctl --unit restate.service --no-pager --utc --output short-iso-precise --lines 50",
                ),
            ),
            (
                &systemd,
                Some("10 min ago"),
                Some(
                    "journalctl --unit restate.service --no-pager --utc --output short-iso-precise --lines 50 --since 10 min ago",
                ),
            ),
            (
                &command(Some("/var/log/r.log")),
                None,
                Some("tail -n 50 /var/log/r.log"),
            ),
            (&command(None), None, None),
        ];
        for (service, since, want) in cases {
            let got = command_of(service, since);
            assert_eq!(got.as_deref(), want, "{service:?}");
        }
    }

    #[test]
    fn a_follower_runs_only_while_its_channel_is_open() {
        let systemd = Service::Systemd {
            unit: "restate.service".into(),
        };
        let argv = follow_command(&systemd).expect("a journal is followed");
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[2], FOLLOW_SCRIPT);
        assert_eq!(
            argv[4..].join(" "),
            "journalctl --unit restate.service --no-pager --utc --output short-iso-precise --lines 0 --follow"
        );
        let file = Service::Command {
            start: vec!["s".into()],
            stop: vec!["s".into()],
            restart: vec!["s".into()],
            status: vec!["s".into()],
            log: Some("/var/log/r.log".into()),
        };
        let argv = follow_command(&file).expect("a file is followed");
        assert_eq!(argv[4..].join(" "), "tail -n 0 -F /var/log/r.log");
        // The script ends its follower once stdin closes, and exits 0.
        let done = std::process::Command::new("sh")
            .args(["-c", FOLLOW_SCRIPT, "x", "sleep", "30"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh runs");
        assert!(done.status.success());
        assert_eq!(
            followed("n1", "\u{1b}[2m2026-12-03T11:00:01Z\u{1b}[0m a")
                .and_then(|l| l.at)
                .as_deref(),
            Some("2026-12-03T11:00:01.000000")
        );
        assert_eq!(
            followed("n1", "tail: '/var/log/r.log' has been replaced"),
            None
        );
    }

    fn command_of(service: &Service, since: Option<&str>) -> Option<String> {
        command(service, 50, since).map(|argv| argv.join(" "))
    }

    #[test]
    fn lines_merge_in_time_order_and_continuations_stay_with_their_line() {
        let journal = "2026-12-03T11:00:01.500000+00:00 n1 restate-server[7]: b\n\
                       -- Boot 1234 --\n\
                       2026-12-03T11:00:03.000000+00:00 n1 restate-server[7]: d\n";
        let file = "\u{1b}[2m2026-12-03T11:00:01.2Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m a\n    \
                    continued\n\
                    2026-12-03T11:00:02Z c\n";
        let merged = merge(vec![
            ("n1".into(), journal.into()),
            ("n2".into(), file.into()),
        ]);
        let said: Vec<(String, &str)> = merged
            .iter()
            .map(|l| (l.host.clone(), l.line.trim_start()))
            .collect();
        assert_eq!(
            said,
            [
                ("n2".to_string(), "2026-12-03T11:00:01.2Z  INFO a"),
                ("n2".to_string(), "continued"),
                (
                    "n1".to_string(),
                    "2026-12-03T11:00:01.500000+00:00 n1 restate-server[7]: b"
                ),
                ("n2".to_string(), "2026-12-03T11:00:02Z c"),
                (
                    "n1".to_string(),
                    "2026-12-03T11:00:03.000000+00:00 n1 restate-server[7]: d"
                ),
            ]
        );
        assert_eq!(merged[0].at.as_deref(), Some("2026-12-03T11:00:01.200000"));
        assert_eq!(merged[1].at, None);
    }
}

//! `logs`: the hosts' log lines, merged, each behind its host's name.

use crate::logs::LogLine;

pub fn logs(lines: &[LogLine]) -> String {
    let width = lines
        .iter()
        .map(|l| l.host.chars().count())
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| format!("{:<width$} | {}\n", l.host, l.line))
        .collect()
}

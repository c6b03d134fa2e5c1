//! `logs`: the hosts' log lines, merged, each behind its host's name.

use crate::logs::LogLine;

pub fn logs(lines: &[LogLine]) -> String {
    let width = lines
        .iter()
        .map(|l| l.host.chars().count())
        .max()
        .unwrap_or(0);
    lines.iter().map(|l| log_line(l, width)).collect()
}

/// One line behind its host's name, padded to `width` (the longest host name).
pub fn log_line(line: &LogLine, width: usize) -> String {
    format!("{:<width$} | {}\n", line.host, line.line)
}

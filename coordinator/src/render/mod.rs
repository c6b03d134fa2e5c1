//! What users read: every human output of the CLI as a pure function of what a command gathered,
//! so that each is snapshot-tested (see `tests` below) without a host or a cluster.

mod collect;
mod history;
mod inventory;
mod logs;
mod recap;
mod report;
mod status;
#[cfg(test)]
mod tests;

pub use collect::{bundle_readme, collect};
pub use history::{history, run};
pub use inventory::inventory;
pub use logs::{log_line, logs};
pub use recap::recap;
pub use report::report;
pub use status::{LastChange, StatusReport, cluster_table, status};

/// Rows as left-aligned columns two spaces apart, widths in characters (names may be non-ASCII).
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.as_ref().get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

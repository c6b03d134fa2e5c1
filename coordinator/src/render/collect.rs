//! `collect`: what the bundle holds, and the README that goes in it.

use crate::bundle::CollectReport;

/// The summary: where the bundle is, what each part holds, and what is missing from it.
pub fn collect(report: &CollectReport) -> String {
    let mut parts: Vec<(String, Vec<String>)> = Vec::new();
    for file in &report.files {
        let (part, name) = match file.split_once('/') {
            Some(("hosts", rest)) => match rest.split_once('/') {
                Some((host, name)) => (host.to_string(), name.to_string()),
                None => (rest.to_string(), String::new()),
            },
            Some((part, name)) => (part.to_string(), name.to_string()),
            None => ("top".to_string(), file.clone()),
        };
        match parts.iter_mut().find(|(p, _)| *p == part) {
            Some((_, names)) => names.push(name),
            None => parts.push((part, vec![name])),
        }
    }
    let mut out = format!(
        "wrote {} ({} files, {}); secrets redacted\n",
        report.path,
        report.files.len(),
        size(report.bytes)
    );
    let rows: Vec<Vec<String>> = parts
        .into_iter()
        .map(|(part, names)| vec![format!("  {part}"), names.join(", ")])
        .collect();
    out.push_str(&super::table(&rows));
    for problem in &report.problems {
        out.push_str(&format!("missing: {problem}\n"));
    }
    out
}

fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// README.txt at the top of the bundle.
pub fn bundle_readme(hosts: &[String], problems: &[String]) -> String {
    let mut out = format!(
        "Support bundle written by restate-fleet {}.\n\
         \n\
         hosts/<host>/   facts.json (what the agent found), host-checks.json (clock, free space,\n\
         \x20               open-files limit, ports), restate.toml, environment/ (names only), unit.txt\n\
         \x20               and status.txt (systemd hosts), log.txt (the last lines), data-dir.txt\n\
         \x20               (sizes), version.txt\n\
         cluster/        view.json: nodes, metadata members, logs and partitions as the admin API\n\
         \x20               reports them\n\
         inventory.toml  the inventory as given\n\
         journal/        the latest run on this inventory, when there is one\n\
         \n\
         Secret values are replaced with <redacted>: by key on each host (restate.toml's secret\n\
         keys, every value of an environment file, secret-looking Environment= variables), and\n\
         every value the inventory holds as a secret, everywhere, before anything was written.\n\
         \n\
         Hosts: {}\n",
        env!("CARGO_PKG_VERSION"),
        if hosts.is_empty() {
            "none reached".to_string()
        } else {
            hosts.join(", ")
        }
    );
    if !problems.is_empty() {
        out.push_str("\nNot in this bundle:\n");
        for problem in problems {
            out.push_str(&format!("- {problem}\n"));
        }
    }
    out
}

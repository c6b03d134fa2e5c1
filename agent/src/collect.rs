//! The `collect` operation: this host's part of a support bundle. Every file is redacted here,
//! before it leaves the host: restate.toml by its secret keys, environment files down to their
//! names, `Environment=` lines of the unit whose names look secret. The coordinator scrubs the
//! inventory's secret values from everything once more.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use restate_fleet_proto::agent::{
    Collected, CollectedFile, NodeTarget, SECRET_KEYS, ServiceManager,
};

use crate::redact::Redactor;
use crate::setup::System;
use crate::{facts, files, service};

/// A walk of the data directory stops here: a count, not a full audit of a huge disk.
const WALK_LIMIT: usize = 200_000;
/// Parts of a variable name that mark its value secret.
const SECRET_NAME_PARTS: [&str; 6] = ["SECRET", "TOKEN", "PASSWORD", "KEY", "CREDENTIAL", "AUTH"];

pub fn collect(node: &NodeTarget) -> Collected {
    let mut out = Collected {
        files: Vec::new(),
        errors: Vec::new(),
    };
    let timeout = Duration::from_millis(node.service_timeout_ms);
    let mut add = |name: &str, text: Result<Option<String>, String>| match text {
        Ok(Some(text)) => out.files.push(CollectedFile {
            name: name.to_string(),
            text,
        }),
        Ok(None) => {}
        Err(why) => out.errors.push(format!("{name}: {why}")),
    };
    // A host that is not a node yet has none: facts.json says so.
    add("restate.toml", config(&node.config_path));
    match &node.service {
        Some(ServiceManager::Systemd { unit }) => {
            let systemctl = |args: &[&str]| {
                let mut argv: Vec<String> = vec!["systemctl".into()];
                argv.extend(args.iter().map(|a| a.to_string()));
                service::run(&argv, timeout)
                    .map(|done| format!("{}{}", done.stdout, done.stderr))
                    .map_err(|e| e.message)
            };
            let mut add = |name: &str, text: Result<String, String>| add(name, text.map(Some));
            add(
                "unit.txt",
                systemctl(&["cat", "--no-pager", unit]).map(|t| unit_text(&t)),
            );
            add(
                "status.txt",
                systemctl(&["status", "--no-pager", "--lines", "0", unit]),
            );
            if let Ok(shown) =
                systemctl(&["show", "--property", "EnvironmentFiles", "--value", unit])
            {
                for file in environment_files(&shown) {
                    let name = format!(
                        "environment/{}",
                        file.file_name().map_or_else(
                            || "environment".to_string(),
                            |n| n.to_string_lossy().into_owned()
                        )
                    );
                    add(&name, environment(&file));
                }
            }
        }
        Some(ServiceManager::Command { status, .. }) => add(
            "status.txt",
            service::run(status, timeout)
                .map(|done| {
                    Some(format!(
                        "$ {}\n{}{}",
                        status.join(" "),
                        done.stdout,
                        done.stderr
                    ))
                })
                .map_err(|e| e.message),
        ),
        None => {}
    }
    add("data-dir.txt", data_dir(node).map(Some));
    add("version.txt", version(node, timeout).map(Some));
    out
}

fn config(path: &Path) -> Result<Option<String>, String> {
    match files::read_config(path) {
        Ok(Some((text, _))) => {
            let redactor = Redactor::new(SECRET_KEYS.iter().map(|k| k.to_string()));
            let mut lines = redactor.redact_lines(&text).join("\n");
            lines.push('\n');
            Ok(Some(lines))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.message),
    }
}

/// The paths of `systemctl show -p EnvironmentFiles --value`: `PATH (ignore_errors=no)` lines.
fn environment_files(shown: &str) -> Vec<PathBuf> {
    shown
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// An environment file with every value hidden: which variables are set is what support needs.
fn environment(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|line| match line.split_once('=') {
            Some((name, _)) if !line.trim_start().starts_with('#') => {
                format!("{name}=<redacted>\n")
            }
            _ => format!("{line}\n"),
        })
        .collect())
}

/// `systemctl cat` with the values of secret-looking `Environment=` variables hidden.
fn unit_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(assignments) = line.trim_start().strip_prefix("Environment=") else {
                return format!("{line}\n");
            };
            let shown: Vec<String> = assignments
                .split_whitespace()
                .map(|word| match word.trim_matches('"').split_once('=') {
                    Some((name, _)) if secret_name(name) => format!("{name}=<redacted>"),
                    _ => word.to_string(),
                })
                .collect();
            format!("Environment={}\n", shown.join(" "))
        })
        .collect()
}

fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// Where the data directory is, how much it holds, and what is in its top level.
fn data_dir(node: &NodeTarget) -> Result<String, String> {
    let dir = match facts::find_data_dir(node, &System::host()) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Ok("no data directory found\n".to_string()),
        Err(e) => return Err(e.message),
    };
    let mut text = format!("{}\n", dir.display());
    let mut walked = 0;
    let mut entries: Vec<(String, u64, usize)> = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let Ok(entry) = entry else { continue };
        let (bytes, files) = size_of(&entry.path(), &mut walked);
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            bytes,
            files,
        ));
    }
    entries.sort();
    let total: u64 = entries.iter().map(|(_, b, _)| b).sum();
    for (name, bytes, files) in &entries {
        text.push_str(&format!("{bytes:>16} bytes {files:>8} files  {name}\n"));
    }
    text.push_str(&format!("{total:>16} bytes in all"));
    if walked >= WALK_LIMIT {
        text.push_str(&format!(" (counted the first {WALK_LIMIT} entries only)"));
    }
    text.push('\n');
    Ok(text)
}

fn size_of(path: &Path, walked: &mut usize) -> (u64, usize) {
    *walked += 1;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() || *walked >= WALK_LIMIT {
        return (meta.len(), usize::from(meta.is_file()));
    }
    let mut total = (0, 0);
    for entry in fs::read_dir(path).into_iter().flatten().flatten() {
        let (bytes, files) = size_of(&entry.path(), walked);
        total = (total.0 + bytes, total.1 + files);
    }
    total
}

fn version(node: &NodeTarget, timeout: Duration) -> Result<String, String> {
    let binary = node
        .server_binary
        .clone()
        .or_else(facts::server_on_path)
        .ok_or_else(|| "no restate-server on the agent's PATH".to_string())?;
    let argv = [binary.display().to_string(), "--version".to_string()];
    service::run(&argv, timeout)
        .map(|done| format!("{}\n{}{}", binary.display(), done.stdout, done.stderr))
        .map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_files_keep_names_only() {
        let dir = std::env::temp_dir().join(format!("rf-collect-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("restate-fleet.env");
        fs::write(
            &file,
            "# written by restate-fleet\nAWS_SECRET_ACCESS_KEY=s3cr3t\nRESTATE_X=1\n",
        )
        .unwrap();
        let shown = environment(&file).unwrap();
        assert_eq!(
            shown,
            "# written by restate-fleet\nAWS_SECRET_ACCESS_KEY=<redacted>\nRESTATE_X=<redacted>\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_looking_unit_variables_are_hidden() {
        let unit = "# /etc/systemd/system/restate.service.d/override.conf\n[Service]\nEnvironment=RESTATE_LOG_FORMAT=compact \"AWS_SECRET_ACCESS_KEY=abc\" API_TOKEN=xyz\n";
        assert_eq!(
            unit_text(unit),
            "# /etc/systemd/system/restate.service.d/override.conf\n[Service]\nEnvironment=RESTATE_LOG_FORMAT=compact AWS_SECRET_ACCESS_KEY=<redacted> API_TOKEN=<redacted>\n"
        );
        assert_eq!(
            environment_files("/etc/restate/restate-fleet.env (ignore_errors=no)\n"),
            [PathBuf::from("/etc/restate/restate-fleet.env")]
        );
    }
}

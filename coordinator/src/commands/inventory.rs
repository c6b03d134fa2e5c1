//! `restate-fleet inventory`: print the resolved fleet; `inventory import FILE` converts Ansible's.
//!
//! Also the one place other commands load the inventory from (`load`, `select`), so every command
//! reports inventory problems the same way.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use restate_fleet_inventory::ansible::{self, Format};
use restate_fleet_inventory::{
    DEFAULT_INSTALL_PATH, Diagnostic, Diagnostics, Fleet, Host, Loaded, Role, ServerBinary, Service,
};
use serde_json::json;

use super::{BadInput, Outcome};
use crate::cli::{Global, Output};

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub action: Option<InventoryAction>,
}

#[derive(Debug, Subcommand)]
pub enum InventoryAction {
    /// Convert an Ansible inventory (INI or YAML) to a restate-fleet inventory, printed on stdout.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Ansible inventory file.
    pub file: PathBuf,
    /// Its format; detected from the extension or the content when not given.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// The cluster name to write (default: a CHANGE-ME placeholder).
    #[arg(long)]
    pub cluster_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Ini,
    Yaml,
}

pub fn run(global: &Global, args: InventoryArgs) -> anyhow::Result<Outcome> {
    match args.action {
        None => show(global),
        Some(InventoryAction::Import(import)) => import_ansible(global, import),
    }
}

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

fn show(global: &Global) -> anyhow::Result<Outcome> {
    let loaded = load(global)?;
    let hosts = select(global, &loaded.fleet)?;
    match global.output {
        Output::Json => {
            let document = json!({
                "inventory": global.inventory.display().to_string(),
                "cluster": loaded.fleet.cluster,
                "groups": loaded.fleet.groups,
                "hosts": hosts,
                "warnings": loaded.warnings,
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Output::Human => print!("{}", human(&loaded.fleet, &hosts)),
    }
    Ok(Outcome::Done)
}

fn import_ansible(global: &Global, args: ImportArgs) -> anyhow::Result<Outcome> {
    let path = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| BadInput(format!("cannot read the Ansible inventory {path}: {e}")))?;
    let format = args.format.map(|f| match f {
        ImportFormat::Ini => Format::Ini,
        ImportFormat::Yaml => Format::Yaml,
    });
    match ansible::import(&path, &text, format, args.cluster_name.as_deref()) {
        Ok(imported) => {
            match global.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "source": path,
                        "toml": imported.toml,
                        "warnings": imported.warnings,
                    }))?
                ),
                Output::Human => {
                    print_warnings(global, &imported.warnings);
                    print!("{}", imported.toml);
                }
            }
            Ok(Outcome::Done)
        }
        Err(diagnostics) => {
            report_errors(global, &path, &diagnostics)?;
            Err(BadInput(format!(
                "{path}: {} error(s) in the Ansible inventory; nothing was converted",
                diagnostics.errors().count()
            ))
            .into())
        }
    }
}

fn print_warnings(global: &Global, warnings: &[Diagnostic]) {
    if !global.quiet {
        for warning in warnings {
            eprintln!("{warning}");
        }
    }
}

fn report_errors(global: &Global, path: &str, diagnostics: &Diagnostics) -> anyhow::Result<()> {
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

/// The human view: one row per host, then the cluster's settings and the config patches.
fn human(fleet: &Fleet, hosts: &[&Host]) -> String {
    let mut rows = vec![
        [
            "HOST",
            "ADDRESS",
            "USER",
            "NODE-NAME",
            "ROLES",
            "METADATA",
            "ADVERTISED",
            "SERVICE",
        ]
        .map(String::from),
    ];
    for host in hosts {
        rows.push([
            host.name.clone(),
            format!("{}:{}", host.ssh.address, host.ssh.port),
            format!(
                "{}{}",
                host.ssh.user.as_deref().unwrap_or("-"),
                if host.ssh.become_root { " (sudo)" } else { "" }
            ),
            host.node_name.clone(),
            roles(&host.roles),
            match (host.metadata_server, host.has_role(Role::MetadataServer)) {
                (true, _) => "yes",
                // Runs a metadata server that does not join (auto-join = false).
                (false, true) => "standby",
                (false, false) => "no",
            }
            .to_string(),
            host.advertised_address.clone(),
            match (&host.service, &host.service_user) {
                (Service::Systemd { unit }, None) => format!("systemd {unit}"),
                (Service::Systemd { unit }, Some(user)) => format!("systemd {unit} as {user}"),
                (Service::Command { .. }, None) => "command".to_string(),
                (Service::Command { .. }, Some(user)) => format!("command as {user}"),
            },
        ]);
    }
    let mut out = table(&rows);
    let cluster = &fleet.cluster;
    out.push_str(&format!("\ncluster: {}\n", cluster.name));
    match (cluster.replication, cluster.replication_property) {
        (Some(_), Some(spread)) if spread.is_location_aware() => {
            out.push_str(&format!("  replication: {spread}\n"))
        }
        (Some(replication), _) => out.push_str(&format!("  replication: {replication}\n")),
        (None, _) => {}
    }
    let placed: Vec<String> = hosts
        .iter()
        .filter_map(|h| h.location.as_ref().map(|l| format!("{} {l}", h.name)))
        .collect();
    if !placed.is_empty() {
        out.push_str(&format!("  locations: {}\n", placed.join(", ")));
    }
    out.push_str(&format!(
        "  metadata servers: {}\n",
        cluster.metadata_servers.join(", ")
    ));
    if let Some(server) = &cluster.restate_server {
        let binary = match &server.binary {
            ServerBinary::Any(path) => path.display().to_string(),
            ServerBinary::PerArch(paths) => paths
                .iter()
                .map(|(arch, path)| format!("{}: {}", arch.as_str(), path.display()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(
            "  restate-server: {} ({binary}), installed at {}\n",
            server.version,
            server.install_path.as_deref().map_or_else(
                || format!("the host's own path, else {DEFAULT_INSTALL_PATH}"),
                |p| p.display().to_string()
            )
        ));
    }
    if let Some(snapshots) = &cluster.snapshots {
        out.push_str("  snapshots:\n");
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(snapshots) {
            for (key, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                out.push_str(&format!("    {}: {value}\n", key.replace('_', "-")));
            }
        }
    }
    for host in hosts.iter().filter(|h| !h.config.is_empty()) {
        out.push_str(&format!(
            "\nconfig of {} ({}):\n",
            host.name, host.config_path
        ));
        for entry in &host.config {
            let value = serde_json::to_string(&entry.value).unwrap_or_default();
            out.push_str(&format!("  {} = {value}\n", entry.dotted_path()));
        }
    }
    out
}

fn roles(roles: &[Role]) -> String {
    if Role::ALL.iter().all(|r| roles.contains(r)) {
        "all".to_string()
    } else {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn table(rows: &[[String; 8]]) -> String {
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

//! `restate-fleet inventory`: print the resolved fleet; `inventory import FILE` converts Ansible's.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use restate_fleet_inventory::ansible::{self, Format};
use serde_json::json;

use super::common::{load, print_warnings, report_errors, select};
use super::{BadInput, Outcome};
use crate::cli::{Global, Output};
use crate::render;

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
        Output::Human => print!("{}", render::inventory(&loaded.fleet, &hosts)),
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

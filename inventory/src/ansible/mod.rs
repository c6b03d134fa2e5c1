//! Ansible inventories (INI and YAML) converted to a restate-fleet inventory.
//!
//! Ansible's semantics (groups, `:children`, `:vars`, `all`/`ungrouped`, host ranges) are
//! implemented here; only YAML's syntax comes from a library.

mod emit;
mod ini;
mod range;
mod yaml;

use crate::diagnostic::{Diagnostic, Diagnostics, Report};

pub use emit::to_toml;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ini,
    Yaml,
}

/// An Ansible inventory as Ansible sees it, before conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsibleInventory {
    /// In order of first mention; always holds `all`.
    pub groups: Vec<AnsibleGroup>,
    /// In order of first mention.
    pub hosts: Vec<AnsibleHost>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsibleGroup {
    pub name: String,
    /// Direct members only; members of children are not repeated here.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsibleHost {
    pub name: String,
    pub vars: Vec<(String, String)>,
}

/// The converted inventory and what the operator should know about the conversion.
#[derive(Debug, Clone)]
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<Diagnostic>,
}

/// Picks the format from the file extension, else from the first meaningful line (INI starts
/// with a host or a `[section]`, YAML with `key:` or `---`).
pub fn detect(file_name: &str, text: &str) -> Format {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        return Format::Yaml;
    }
    if lower.ends_with(".ini") || lower.ends_with(".cfg") {
        return Format::Ini;
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    match first {
        Some(line)
            if line.starts_with("---") || line.trim_end().ends_with(':') || line.contains(": ") =>
        {
            Format::Yaml
        }
        _ => Format::Ini,
    }
}

/// Parses an Ansible inventory; `format` `None` means auto-detect.
pub fn parse(
    file_name: &str,
    text: &str,
    format: Option<Format>,
) -> Result<(AnsibleInventory, Vec<Diagnostic>), Diagnostics> {
    let mut report = Report::new(file_name, text);
    let inventory = match format.unwrap_or_else(|| detect(file_name, text)) {
        Format::Ini => ini::parse(text, &mut report),
        Format::Yaml => yaml::parse(text, &mut report),
    };
    let diagnostics = report.into_diagnostics();
    if diagnostics
        .iter()
        .any(|d| d.severity == crate::Severity::Error)
    {
        Err(Diagnostics(diagnostics))
    } else {
        Ok((inventory, diagnostics))
    }
}

/// Reads an Ansible inventory and writes the equivalent restate-fleet inventory.
pub fn import(
    file_name: &str,
    text: &str,
    format: Option<Format>,
    cluster_name: Option<&str>,
) -> Result<Imported, Diagnostics> {
    let (inventory, warnings) = parse(file_name, text, format)?;
    Ok(Imported {
        toml: to_toml(&inventory, file_name, cluster_name),
        warnings,
    })
}

impl AnsibleInventory {
    fn new() -> Self {
        let mut inventory = AnsibleInventory::default();
        inventory.group_mut("all");
        inventory
    }

    pub fn group(&self, name: &str) -> Option<&AnsibleGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn host(&self, name: &str) -> Option<&AnsibleHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    fn group_mut(&mut self, name: &str) -> &mut AnsibleGroup {
        let index = match self.groups.iter().position(|g| g.name == name) {
            Some(index) => index,
            None => {
                self.groups.push(AnsibleGroup {
                    name: name.to_string(),
                    ..AnsibleGroup::default()
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[index]
    }

    /// Adds `host` to `group` (creating both as needed) and sets its vars, later values winning.
    fn add_host(&mut self, group: &str, host: &str, vars: Vec<(String, String)>) {
        let members = &mut self.group_mut(group).hosts;
        if !members.iter().any(|h| h == host) {
            members.push(host.to_string());
        }
        let index = match self.hosts.iter().position(|h| h.name == host) {
            Some(index) => index,
            None => {
                self.hosts.push(AnsibleHost {
                    name: host.to_string(),
                    vars: Vec::new(),
                });
                self.hosts.len() - 1
            }
        };
        for (key, value) in vars {
            set_var(&mut self.hosts[index].vars, key, value);
        }
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        let children = &mut self.group_mut(parent).children;
        if !children.iter().any(|c| c == child) {
            children.push(child.to_string());
        }
    }

    fn set_group_var(&mut self, group: &str, key: String, value: String) {
        set_var(&mut self.group_mut(group).vars, key, value);
    }

    /// Every host in `group` or, transitively, in its children.
    pub fn members(&self, group: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut seen_groups: Vec<&str> = Vec::new();
        let mut stack = vec![group];
        while let Some(name) = stack.pop() {
            if seen_groups.contains(&name) {
                continue;
            }
            seen_groups.push(name);
            if let Some(g) = self.group(name) {
                for host in &g.hosts {
                    if !out.contains(&host.as_str()) {
                        out.push(host);
                    }
                }
                stack.extend(g.children.iter().rev().map(String::as_str));
            }
        }
        // Keep the inventory's host order, not the traversal's.
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .filter(|h| out.contains(h))
            .collect()
    }
}

fn set_var(vars: &mut Vec<(String, String)>, key: String, value: String) {
    match vars.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => vars.push((key, value)),
    }
}

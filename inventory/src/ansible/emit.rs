//! Writes the restate-fleet inventory equivalent to an Ansible one. What has no equivalent is kept
//! as a comment, so nothing is lost silently; secrets are never copied.

use std::fmt::Write;

use toml_edit::{Key, Value};

use super::AnsibleInventory;

/// Converts `inventory` (read from `source`) to restate-fleet TOML.
pub fn to_toml(inventory: &AnsibleInventory, source: &str, cluster_name: Option<&str>) -> String {
    let mut out = String::new();
    header(&mut out, source, cluster_name.is_none());
    out.push_str("[cluster]\n");
    let name = cluster_name.unwrap_or("CHANGE-ME");
    let _ = writeln!(out, "name = {}", string(name));

    if let Some(all) = inventory.group("all").filter(|g| !g.vars.is_empty()) {
        out.push_str("\n[defaults]\n");
        settings(&mut out, &all.vars, Scope::Group);
    }
    for name in group_order(inventory) {
        let Some(group) = inventory.group(name) else {
            continue;
        };
        if name == "all" || (name == "ungrouped" && group.vars.is_empty()) {
            continue;
        }
        let _ = writeln!(out, "\n[groups.{}]", key(name));
        let members: Vec<String> = inventory.members(name).into_iter().map(string).collect();
        let _ = writeln!(out, "hosts = [{}]", members.join(", "));
        if !group.children.is_empty() {
            let _ = writeln!(out, "# ansible: children = {}", group.children.join(", "));
        }
        settings(&mut out, &group.vars, Scope::Group);
    }
    for host in &inventory.hosts {
        let _ = writeln!(out, "\n[hosts.{}]", key(&host.name));
        if !host.vars.iter().any(|(k, _)| is_address(k)) {
            let _ = writeln!(out, "address = {}", string(&host.name));
        }
        settings(&mut out, &host.vars, Scope::Host);
    }
    out
}

fn header(out: &mut String, source: &str, placeholder: bool) {
    let source = one_line(source);
    let _ = writeln!(
        out,
        "# restate-fleet inventory converted from the Ansible inventory {source}"
    );
    out.push_str(
        "# by `restate-fleet inventory import`. Review it before use:\n\
         #  - Ansible variables restate-fleet has no use for are kept as `# ansible:` comments;\n\
         #  - passwords are never copied: use an SSH key (identity-file) or ssh-agent;\n\
         #  - group settings apply in the order of the [groups.*] tables (later wins), the order\n\
         #    Ansible applies group variables in; host settings win over groups.\n",
    );
    if placeholder {
        out.push_str(
            "#  - set [cluster] name to the cluster-name your existing Restate node runs with.\n",
        );
    }
    out.push('\n');
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Group,
    Host,
}

/// Writes the settings restate-fleet understands, then the rest as comments.
fn settings(out: &mut String, vars: &[(String, String)], scope: Scope) {
    let mut comments = Vec::new();
    for (name, value) in vars {
        if is_secret(name) {
            comments.push(format!(
                "# ansible: {}=<not copied: a secret>",
                one_line(name)
            ));
            continue;
        }
        match setting(name, value, scope) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
            }
            Err(note) => comments.push(format!(
                "# ansible: {}={}{note}",
                one_line(name),
                one_line(value)
            )),
        }
    }
    for comment in comments {
        let _ = writeln!(out, "{comment}");
    }
}

/// One Ansible variable as a restate-fleet setting, or a note on why it stays a comment.
fn setting(name: &str, value: &str, scope: Scope) -> Result<String, &'static str> {
    match name {
        n if is_address(n) => match scope {
            Scope::Host => Ok(format!("address = {}", string(value))),
            Scope::Group => Err("  (not imported: an address is per host)"),
        },
        "ansible_port" | "ansible_ssh_port" => match value.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(format!("port = {port}")),
            _ => Err("  (not imported: not a port number)"),
        },
        "ansible_user" | "ansible_ssh_user" => Ok(format!("user = {}", string(value))),
        "ansible_ssh_private_key_file" | "ansible_private_key_file" => {
            Ok(format!("identity-file = {}", string(value)))
        }
        "ansible_become" => match boolean(value) {
            Some(b) => Ok(format!("become = {b}")),
            None => Err("  (not imported: not a boolean)"),
        },
        _ => Err(""),
    }
}

fn is_address(name: &str) -> bool {
    matches!(name, "ansible_host" | "ansible_ssh_host")
}

/// Passwords and passphrases (`ansible_password`, `ansible_become_pass`, ...).
fn is_secret(name: &str) -> bool {
    name.to_ascii_lowercase().contains("pass")
}

/// Ansible's truthy and falsy spellings.
fn boolean(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "y" => Some(true),
        "no" | "false" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Groups ordered the way Ansible applies their variables: by depth below `all`, then by name.
fn group_order(inventory: &AnsibleInventory) -> Vec<&str> {
    let mut depth: Vec<(&str, usize)> = inventory
        .groups
        .iter()
        .map(|g| (g.name.as_str(), usize::from(g.name != "all")))
        .collect();
    // Relaxation bounded by the group count, so a cycle of children cannot loop forever.
    for _ in 0..inventory.groups.len() {
        let mut changed = false;
        for group in &inventory.groups {
            let parent = depth
                .iter()
                .find(|(n, _)| *n == group.name)
                .map_or(1, |(_, d)| *d);
            for child in &group.children {
                if let Some(slot) = depth.iter_mut().find(|(n, _)| n == child)
                    && slot.1 < parent + 1
                {
                    slot.1 = parent + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    depth.into_iter().map(|(n, _)| n).collect()
}

fn key(name: &str) -> String {
    Key::new(name).display_repr().into_owned()
}

fn string(value: &str) -> String {
    Value::from(value).to_string()
}

/// Keeps a value on its comment line.
fn one_line(text: &str) -> String {
    text.replace('\r', "\\r").replace('\n', "\\n")
}

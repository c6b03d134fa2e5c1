//! Ansible's INI inventory format, read the way Ansible's `ini` plugin reads it.

use super::{AnsibleInventory, range};
use crate::argv;
use crate::diagnostic::Report;

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(super) fn parse(text: &str, report: &mut Report) -> AnsibleInventory {
    let mut inventory = AnsibleInventory::new();
    let mut section = Section::Hosts("ungrouped".to_string());
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = strip_comment(raw.trim());
        if line.is_empty() {
            continue;
        }
        let lead = raw.len() - raw.trim_start().len();
        let span = start + lead..start + lead + line.len();
        if line.starts_with('[') {
            match header(line) {
                Ok(next) => {
                    let (Section::Hosts(name) | Section::Vars(name) | Section::Children(name)) =
                        &next;
                    inventory.group_mut(name);
                    section = next;
                }
                Err(message) => {
                    report.error(
                        span,
                        message,
                        Some("write [group], [group:vars] or [group:children]".into()),
                    );
                    // Lines up to the next good header would land in the wrong group.
                    section = Section::Hosts("ungrouped".to_string());
                }
            }
            continue;
        }
        match &section {
            Section::Hosts(group) => hosts_line(&mut inventory, group, line, span, report),
            Section::Vars(group) => match line.split_once('=') {
                Some((key, value)) => {
                    inventory.set_group_var(group, key.trim().to_string(), unquote(value.trim()));
                }
                None => report.error(
                    span,
                    format!("`{line}` in [{group}:vars] is not a variable"),
                    Some("write key=value".into()),
                ),
            },
            Section::Children(group) => {
                if line.split_whitespace().count() == 1 {
                    inventory.add_child(group, line);
                } else {
                    report.error(
                        span,
                        format!("`{line}` in [{group}:children] is not a group name"),
                        Some("list one child group per line".into()),
                    );
                }
            }
        }
    }
    inventory
}

fn header(line: &str) -> Result<Section, String> {
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| format!("`{line}` is not a section header"))?;
    let (name, kind) = match inner.split_once(':') {
        Some((name, kind)) => (name.trim(), Some(kind.trim())),
        None => (inner.trim(), None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("`{line}` does not name a group"));
    }
    match kind {
        None | Some("hosts") => Ok(Section::Hosts(name.to_string())),
        Some("vars") => Ok(Section::Vars(name.to_string())),
        Some("children") => Ok(Section::Children(name.to_string())),
        Some(other) => Err(format!(
            "section `{line}` has the unknown suffix `:{other}` (Ansible knows :vars and :children)"
        )),
    }
}

/// `host[:port] [key=value ...]`, quoted like a shell line.
fn hosts_line(
    inventory: &mut AnsibleInventory,
    group: &str,
    line: &str,
    span: std::ops::Range<usize>,
    report: &mut Report,
) {
    let words = match argv::split(line) {
        Ok(words) => words,
        Err(err) => {
            let at = span.start + err.offset;
            report.error(at..at + 1, err.message, Some("close the quote".into()));
            return;
        }
    };
    let Some((pattern, assignments)) = words.split_first() else {
        return;
    };
    let mut vars = Vec::new();
    for word in assignments {
        match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                vars.push((key.to_string(), value.to_string()))
            }
            _ => {
                let at = span.start + line.find(word.as_str()).unwrap_or(0);
                report.error(
                    at..at + word.len(),
                    format!("`{word}` after host `{pattern}` is not a variable"),
                    Some("host variables are written key=value".into()),
                );
            }
        }
    }
    let (pattern, port) = split_port(pattern);
    if let Some(port) = port {
        vars.insert(0, ("ansible_port".to_string(), port.to_string()));
    }
    match range::expand(pattern) {
        Ok(hosts) => {
            for host in hosts {
                inventory.add_host(group, &host, vars.clone());
            }
        }
        Err(message) => report.error(span, message, None),
    }
}

/// `name:22` carries a port; IPv6 addresses (several colons) do not.
fn split_port(pattern: &str) -> (&str, Option<&str>) {
    match pattern.split_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit())
                && !host.contains('[') =>
        {
            (host, Some(port))
        }
        _ => (pattern, None),
    }
}

/// Drops a `#` or `;` comment that starts a line, or a `#` after whitespace outside quotes.
fn strip_comment(line: &str) -> &str {
    if line.starts_with('#') || line.starts_with(';') {
        return "";
    }
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line
}

fn unquote(value: &str) -> String {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return value[1..value.len() - 1].to_string();
        }
    }
    value.to_string()
}

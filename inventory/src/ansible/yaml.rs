//! Ansible's YAML inventory format: groups map to `hosts`, `children` and `vars`, recursively.
//! saphyr parses the YAML syntax; the meaning is Ansible's and lives here.

use std::ops::Range;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{AnsibleInventory, range};
use crate::diagnostic::Report;

pub(super) fn parse<'s>(text: &'s str, report: &mut Report<'s>) -> AnsibleInventory {
    let mut inventory = AnsibleInventory::new();
    let documents = match MarkedYaml::load_from_str(text) {
        Ok(documents) => documents,
        Err(err) => {
            let at = byte_offset(text, err.marker().index());
            report.error(at..at + 1, format!("invalid YAML: {}", err.info()), None);
            return inventory;
        }
    };
    let mut reader = YamlReader { text, report };
    for document in &documents {
        match &document.data {
            YamlData::Mapping(groups) => {
                for (name, group) in groups {
                    if let Some(name) = reader.name(name) {
                        reader.group(&mut inventory, &name, group);
                    }
                }
            }
            YamlData::Value(Scalar::Null) => {}
            _ => reader.error(
                document,
                "an Ansible inventory is a mapping of group names",
                None,
            ),
        }
    }
    inventory
}

struct YamlReader<'r, 's> {
    text: &'s str,
    report: &'r mut Report<'s>,
}

impl YamlReader<'_, '_> {
    fn span(&self, node: &MarkedYaml) -> Range<usize> {
        byte_offset(self.text, node.span.start.index())
            ..byte_offset(self.text, node.span.end.index())
    }

    fn error(&mut self, node: &MarkedYaml, message: impl Into<String>, help: Option<String>) {
        let span = self.span(node);
        self.report.error(span, message, help);
    }

    fn group(&mut self, inventory: &mut AnsibleInventory, name: &str, node: &MarkedYaml) {
        inventory.group_mut(name);
        let entries = match &node.data {
            YamlData::Mapping(entries) => entries,
            YamlData::Value(Scalar::Null) => return,
            _ => {
                return self.error(
                    node,
                    format!("group `{name}` must be a mapping with hosts, children and vars"),
                    None,
                );
            }
        };
        for (key, value) in entries {
            let Some(key_name) = self.name(key) else {
                continue;
            };
            match key_name.as_str() {
                "hosts" => self.each(value, "hosts", |reader, host, vars| {
                    let vars = reader.vars(vars);
                    match range::expand(&host.0) {
                        Ok(hosts) => {
                            for h in hosts {
                                inventory.add_host(name, &h, vars.clone());
                            }
                        }
                        Err(message) => reader.error(host.1, message, None),
                    }
                }),
                "children" => self.each(value, "children", |reader, child, body| {
                    inventory.add_child(name, &child.0);
                    reader.group(inventory, &child.0, body);
                }),
                "vars" => {
                    for (k, v) in self.vars(value) {
                        inventory.set_group_var(name, k, v);
                    }
                }
                other => self.report.warning(
                    Some(self.span(key)),
                    format!("group `{name}` has the key `{other}`, which Ansible skips"),
                    Some("groups hold only hosts, children and vars; nest host groups under children".into()),
                ),
            }
        }
    }

    /// Calls `f` for each `name: body` of a mapping (a null body counts as empty).
    fn each<'n>(
        &mut self,
        node: &'n MarkedYaml,
        what: &str,
        mut f: impl FnMut(&mut Self, (String, &'n MarkedYaml), &'n MarkedYaml),
    ) {
        match &node.data {
            YamlData::Mapping(entries) => {
                for (key, body) in entries {
                    if let Some(name) = self.name(key) {
                        f(self, (name, key), body);
                    }
                }
            }
            YamlData::Value(Scalar::Null) => {}
            _ => self.error(
                node,
                format!("`{what}` must be a mapping (name: ...), not a list or a value"),
                Some(format!(
                    "write each entry as `name:` on its own line under {what}"
                )),
            ),
        }
    }

    fn vars(&mut self, node: &MarkedYaml) -> Vec<(String, String)> {
        match &node.data {
            YamlData::Mapping(entries) => entries
                .iter()
                .filter_map(|(k, v)| Some((self.name(k)?, render(v))))
                .collect(),
            YamlData::Value(Scalar::Null) => Vec::new(),
            _ => {
                self.error(node, "variables must be a mapping (key: value)", None);
                Vec::new()
            }
        }
    }

    /// A mapping key as a name; anything but a scalar is an error.
    fn name(&mut self, node: &MarkedYaml) -> Option<String> {
        match &node.data {
            YamlData::Value(scalar) if !matches!(scalar, Scalar::Null) => Some(scalar_text(scalar)),
            _ => {
                self.error(node, "expected a name here", None);
                None
            }
        }
    }
}

fn scalar_text(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Null => String::new(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

/// A variable's value as text; structured values are kept in flow style so they survive as a
/// comment.
fn render(node: &MarkedYaml) -> String {
    match &node.data {
        YamlData::Value(scalar) => scalar_text(scalar),
        YamlData::Sequence(items) => {
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(", ")
            )
        }
        YamlData::Mapping(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        YamlData::Tagged(tag, inner) => format!("!{} {}", tag.suffix, render(inner)),
        YamlData::Representation(raw, _, _) => raw.to_string(),
        YamlData::Alias(_) | YamlData::BadValue => String::new(),
    }
}

/// saphyr counts characters; diagnostics count bytes.
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

//! Typed reading of tree nodes with errors that point at the offending text.
//!
//! Every reader records its problem and returns `None`, so parsing goes on and the operator sees
//! all problems of the file at once.

use crate::diagnostic::Report;
use crate::secret::Secret;
use crate::suggest;
use crate::tree::{Entry, Kind, Node, Span};

pub(crate) struct Reader<'a> {
    pub report: Report<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(report: Report<'a>, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader { report, env }
    }

    /// Reports every key of `entries` not in `allowed`. `elsewhere` tells where a key that is
    /// valid in another table belongs.
    pub(crate) fn check_keys(
        &mut self,
        entries: &[Entry],
        table: &str,
        allowed: &[&str],
        elsewhere: impl Fn(&str) -> Option<String>,
    ) {
        for entry in entries
            .iter()
            .filter(|e| !allowed.contains(&e.key.as_str()))
        {
            let help = elsewhere(&entry.key).unwrap_or_else(|| suggest::help(&entry.key, allowed));
            self.report.error(
                entry.key_span.clone(),
                format!("unknown key `{}` in {table}", entry.key),
                Some(help),
            );
        }
    }

    pub(crate) fn type_error(&mut self, entry: &Entry, expected: &str) {
        self.report.error(
            entry.node.span.clone(),
            format!(
                "`{}` must be {expected}, found {}",
                entry.key,
                entry.node.kind.describe()
            ),
            None,
        );
    }

    /// `{ env = "VAR" }`, the one way to take a value from the environment.
    pub(crate) fn env_var(node: &Node) -> Option<(&str, &Span)> {
        match &node.kind {
            Kind::Table(entries) if entries.len() == 1 && entries[0].key == "env" => {
                match &entries[0].node.kind {
                    Kind::Str(var) => Some((var, &entries[0].node.span)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Reads `{ env = "VAR" }`; a missing variable is an error naming it and the key.
    pub(crate) fn env_value(&mut self, key: &str, var: &str, span: &Span) -> Option<String> {
        match (self.env)(var) {
            Some(value) => Some(value),
            None => {
                self.report.error(
                    span.clone(),
                    format!("environment variable `{var}` is not set (needed for `{key}`)"),
                    Some(format!(
                        "export {var}=... in the shell that runs restate-fleet"
                    )),
                );
                None
            }
        }
    }

    /// A string as written or read from the environment.
    pub(crate) fn string(&mut self, entry: &Entry) -> Option<String> {
        if let Some((var, span)) = Self::env_var(&entry.node) {
            return self.env_value(&entry.key, var, span);
        }
        match &entry.node.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(entry, "a string or { env = \"VAR\" }");
                None
            }
        }
    }

    pub(crate) fn secret(&mut self, entry: &Entry) -> Option<Secret> {
        self.string(entry).map(Secret::new)
    }

    pub(crate) fn integer(&mut self, entry: &Entry) -> Option<i64> {
        match entry.node.kind {
            Kind::Int(i) => Some(i),
            _ => {
                self.type_error(entry, "an integer");
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, entry: &Entry) -> Option<bool> {
        match entry.node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.type_error(entry, "true or false");
                None
            }
        }
    }

    pub(crate) fn table<'e>(&mut self, entry: &'e Entry) -> Option<&'e [Entry]> {
        match &entry.node.kind {
            Kind::Table(entries) => Some(entries),
            _ => {
                self.type_error(entry, "a table");
                None
            }
        }
    }

    /// An array of strings, each with its place for later errors.
    pub(crate) fn string_list(&mut self, entry: &Entry) -> Option<Vec<(String, Span)>> {
        let Kind::Array(items) = &entry.node.kind else {
            self.type_error(entry, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match &item.kind {
                Kind::Str(s) => out.push((s.clone(), item.span.clone())),
                other => {
                    self.report.error(
                        item.span.clone(),
                        format!(
                            "`{}` must be an array of strings, found {} in it",
                            entry.key,
                            other.describe()
                        ),
                        None,
                    );
                    return None;
                }
            }
        }
        Some(out)
    }
}

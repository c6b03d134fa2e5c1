//! The parsed TOML as a small tree where every key and value knows its place in the file.
//!
//! toml_edit keeps spans but spreads them over many types; one uniform tree keeps the readers
//! short.

use std::ops::Range;

use toml_edit::{Item, Key, Table, Value};

pub(crate) type Span = Range<usize>;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Span,
    pub node: Node,
}

impl Kind {
    /// How the type is named in messages ("expected a string, found an integer").
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime(_) => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl Node {
    pub(crate) fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Table(entries) => Some(entries),
            _ => None,
        }
    }
}

/// Looks a key up in a table's entries.
pub(crate) fn get<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.key == key)
}

pub(crate) fn from_document(root: &Table) -> Node {
    table(root, 0..0)
}

fn table(table: &Table, fallback: Span) -> Node {
    let span = table.span().unwrap_or(fallback);
    let entries = entries(
        table.iter().map(|(k, _)| k),
        |k| table.get_key_value(k),
        &span,
    );
    Node {
        span,
        kind: Kind::Table(entries),
    }
}

/// Shared by standard and inline tables, which expose the same lookups through different types.
fn entries<'a>(
    keys: impl Iterator<Item = &'a str>,
    lookup: impl Fn(&str) -> Option<(&'a Key, &'a Item)>,
    fallback: &Span,
) -> Vec<Entry> {
    keys.filter_map(|key| {
        let (k, item) = lookup(key)?;
        let key_span = k.span().unwrap_or_else(|| fallback.clone());
        item_node(item, key_span.clone()).map(|node| Entry {
            key: key.to_string(),
            key_span,
            node,
        })
    })
    .collect()
}

fn item_node(item: &Item, key_span: Span) -> Option<Node> {
    match item {
        Item::None => None,
        Item::Value(value) => Some(value_node(value, key_span)),
        Item::Table(t) => Some(table(t, key_span)),
        Item::ArrayOfTables(array) => {
            let span = array.span().unwrap_or_else(|| key_span.clone());
            let items = array.iter().map(|t| table(t, key_span.clone())).collect();
            Some(Node {
                span,
                kind: Kind::Array(items),
            })
        }
    }
}

fn value_node(value: &Value, fallback: Span) -> Node {
    let span = value.span().unwrap_or(fallback);
    let kind = match value {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(f) => Kind::Float(*f.value()),
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(d) => Kind::Datetime(d.value().to_string()),
        Value::Array(array) => {
            Kind::Array(array.iter().map(|v| value_node(v, span.clone())).collect())
        }
        Value::InlineTable(inline) => Kind::Table(entries(
            inline.iter().map(|(k, _)| k),
            |k| inline.get_key_value(k),
            &span,
        )),
    };
    Node { span, kind }
}

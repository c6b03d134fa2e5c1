//! restate.toml values carried from the inventory's `config` tables to the agent.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::Secret;

/// A TOML value as restate.toml needs it; tables keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// TOML date/time values, kept as written.
    Datetime(String),
    Array(Vec<ConfigValue>),
    Table(Vec<(String, ConfigValue)>),
    /// Read from the environment (`{ env = "VAR" }`); never printed.
    Secret(Secret),
}

impl ConfigValue {
    pub fn contains_secret(&self) -> bool {
        match self {
            ConfigValue::Secret(_) => true,
            ConfigValue::Array(items) => items.iter().any(ConfigValue::contains_secret),
            ConfigValue::Table(entries) => entries.iter().any(|(_, v)| v.contains_secret()),
            _ => false,
        }
    }
}

impl Serialize for ConfigValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ConfigValue::String(s) | ConfigValue::Datetime(s) => serializer.serialize_str(s),
            ConfigValue::Integer(i) => serializer.serialize_i64(*i),
            ConfigValue::Float(f) => serializer.serialize_f64(*f),
            ConfigValue::Bool(b) => serializer.serialize_bool(*b),
            ConfigValue::Secret(secret) => secret.serialize(serializer),
            ConfigValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            ConfigValue::Table(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// One key of the restate.toml patch: `path` is the dotted key split into segments
/// (`["worker", "snapshots", "destination"]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigEntry {
    pub path: Vec<String>,
    pub value: ConfigValue,
    pub secret: bool,
}

impl ConfigEntry {
    pub fn new(path: Vec<String>, value: ConfigValue) -> Self {
        let secret = value.contains_secret();
        ConfigEntry {
            path,
            value,
            secret,
        }
    }

    pub fn dotted_path(&self) -> String {
        self.path.join(".")
    }
}

//! Changes a running restate-server takes from its file without a restart, and how to see that
//! it took them. Restate watches its `--config-file` and reloads it about 3 s after a change;
//! only some keys are applied by a running server (measured on 1.7.12, docs/config-reload.md).
//! Its `config` SQL table shows what it loaded from the file, so for these keys a value there is
//! a value in effect. Everything here is pure; `execute.rs` carries it out.

use restate_fleet_proto::agent::{ConfigValue, PatchOp};
use serde::Deserialize;

/// Keys a running 1.7 server applies when its file changes, each seen taking effect
/// (docs/config-reload.md). A key ending in `.` is a table: every key under it.
const LIVE: [&str; 5] = [
    "rocksdb-total-memory-size",
    "worker.snapshots.snapshot-interval-num-records",
    "worker.invoker.inactivity-timeout",
    "worker.invoker.abort-timeout",
    "default-retry-policy.",
];

/// Whether a running server applies `key` when its file changes.
pub fn is_live(key: &str) -> bool {
    LIVE.iter().any(|live| match live.strip_suffix('.') {
        Some(table) => key.strip_prefix(table).is_some_and(|r| r.starts_with('.')),
        None => key == *live,
    })
}

/// Whether a member's change can be taken live: some keys change, every one of them live, set
/// (a removed key falls back to a default the table cannot be held against), no environment
/// file to reload with the service.
pub fn takes_live(changed_keys: &[String], environment_changed: bool) -> bool {
    !environment_changed && !changed_keys.is_empty() && changed_keys.iter().all(|k| is_live(k))
}

/// The values the server must show in its `config` table for `keys`, from the patch that sets
/// them: `(dotted key, value as the file has it)`. `None` when one of them is not a plain value
/// the patch sets (removed, or an array or table).
pub fn expected(patch: &[PatchOp], keys: &[String]) -> Option<Vec<(String, String)>> {
    let mut leaves = Vec::new();
    for op in patch {
        if let PatchOp::Set { path, value, .. } = op {
            flatten(&path.join("."), value, &mut leaves);
        }
    }
    keys.iter()
        .map(|key| {
            leaves
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.clone())
                .map(|v| (key.clone(), v))
        })
        .collect()
}

fn flatten(prefix: &str, value: &ConfigValue, out: &mut Vec<(String, Option<String>)>) {
    let plain = match value {
        ConfigValue::Table(entries) => {
            for (key, value) in entries {
                flatten(&format!("{prefix}.{key}"), value, out);
            }
            return;
        }
        ConfigValue::Bool(b) => Some(b.to_string()),
        ConfigValue::Integer(i) => Some(i.to_string()),
        ConfigValue::Float(f) => Some(f.to_string()),
        ConfigValue::String(s) => Some(s.clone()),
        ConfigValue::Array(_) => None,
    };
    out.push((prefix.to_string(), plain));
}

/// One row of `restatectl sql "SELECT key, value FROM config ..." --json`.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Row {
    pub key: String,
    pub value: String,
}

/// The rows of restatectl's `--json` answer (a JSON array).
pub fn rows(json: &str) -> Result<Vec<Row>, String> {
    serde_json::from_str(json.trim()).map_err(|e| format!("restatectl's JSON: {e}: {json:?}"))
}

/// The query for `keys` of node `node_id` (`N2`): keys are dotted names, never quotes.
pub fn query(node_id: &str, keys: &[(String, String)]) -> String {
    let list: Vec<String> = keys
        .iter()
        .map(|(k, _)| format!("'{}'", k.replace('\'', "")))
        .collect();
    format!(
        "SELECT key, value FROM config WHERE plain_node_id = '{}' AND key IN ({})",
        node_id.replace('\'', ""),
        list.join(", ")
    )
}

/// The keys whose value in `rows` is not yet the file's (each with what the table says).
pub fn not_yet(expected: &[(String, String)], rows: &[Row]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(key, want)| {
            let shown = rows
                .iter()
                .find(|r| &r.key == key)
                .map(|r| r.value.as_str());
            match shown {
                Some(shown) if same_value(want, shown) => None,
                Some(shown) => Some(format!("{key} is {shown:?}, not {want:?}")),
                None => Some(format!("{key} is not in the table")),
            }
        })
        .collect()
}

/// The file's value and the table's rendering of it are the same value: as text, as numbers, as
/// sizes (the table shows binary units with one decimal: `512 MiB` as `512.0 MiB`, `1GB` as
/// `953.7 MiB`), or as durations (`90s` as `1m 30s`).
pub fn same_value(file: &str, table: &str) -> bool {
    if file.trim() == table.trim() {
        return true;
    }
    if let (Some(a), Some(b)) = (bytes(file), bytes(table)) {
        // One decimal of the unit shown: up to 0.05 of it either way.
        let unit = unit_of(table);
        return (a - b).abs() <= unit * 0.05 + 0.5;
    }
    matches!((millis(file), millis(table)), (Some(a), Some(b)) if a == b)
}

/// A size in bytes: a plain number, or a number and a unit (`512 MiB`, `1.5GiB`, `1GB`).
fn bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * factor)
}

/// The unit a size is shown in, in bytes (1 for a plain number).
fn unit_of(text: &str) -> f64 {
    let unit: String = text
        .trim()
        .chars()
        .skip_while(|c| c.is_ascii_digit() || *c == '.' || c.is_whitespace())
        .collect();
    bytes(&format!("1{unit}")).unwrap_or(1.0)
}

/// A duration in ms: humantime (`1m 30s`, `1500ms`, `2h`) or ISO 8601 (`PT10M`).
fn millis(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(iso) = text.strip_prefix("PT").or_else(|| text.strip_prefix("pt")) {
        return parts(
            &iso.to_ascii_lowercase(),
            &[("h", 3_600_000), ("m", 60_000), ("s", 1000)],
        );
    }
    let compact: String = text.split_whitespace().collect();
    parts(
        &compact,
        &[
            ("ms", 1),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ],
    )
}

/// `1m30s` with `units` (longest first where one is another's prefix: `ms` before `m`).
fn parts(text: &str, units: &[(&str, u64)]) -> Option<u64> {
    let mut rest = text;
    let mut total = 0u64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let (unit, factor) = units.iter().find(|(u, _)| after.starts_with(u))?;
        total = total.checked_add(number.checked_mul(*factor)?)?;
        rest = &after[unit.len()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn live_keys_are_the_measured_ones() {
        for (key, live) in [
            ("rocksdb-total-memory-size", true),
            ("worker.invoker.abort-timeout", true),
            ("default-retry-policy.max-attempts", true),
            ("default-retry-policy", false),
            ("default-retry-policy-x.y", false),
            ("worker.snapshots.destination", false),
            ("log-filter", false),
            ("metadata-client.addresses", false),
        ] {
            assert_eq!(is_live(key), live, "{key}");
        }
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(takes_live(&keys(&["rocksdb-total-memory-size"]), false));
        assert!(!takes_live(&keys(&["rocksdb-total-memory-size"]), true));
        assert!(!takes_live(
            &keys(&["rocksdb-total-memory-size", "log-filter"]),
            false
        ));
        assert!(!takes_live(&[], false));
    }

    #[test]
    fn the_table_shows_the_file_s_value_in_its_own_words() {
        for (file, table, same) in [
            ("512 MiB", "512.0 MiB", true),
            ("384 MiB", "384.0 MiB", true),
            ("1073741824", "1.0 GiB", true),
            ("1.5GiB", "1.5 GiB", true),
            ("1GB", "953.7 MiB", true),
            ("500 MiB", "512.0 MiB", false),
            ("90s", "1m 30s", true),
            ("1500ms", "1s 500ms", true),
            ("PT10M", "10m", true),
            ("3s", "5s", false),
            ("5", "5", true),
            ("5", "6", false),
            ("kill", "kill", true),
        ] {
            assert_eq!(same_value(file, table), same, "{file} against {table}");
        }
    }

    #[test]
    fn what_to_look_for_comes_from_the_patch() {
        let patch = vec![
            PatchOp::set(&["rocksdb-total-memory-size"], "384 MiB"),
            PatchOp::Set {
                path: vec!["worker".into()],
                value: ConfigValue::Table(BTreeMap::from([(
                    "invoker".to_string(),
                    ConfigValue::Table(BTreeMap::from([(
                        "abort-timeout".to_string(),
                        ConfigValue::String("3s".into()),
                    )])),
                )])),
                secret: false,
            },
        ];
        let keys = vec![
            "rocksdb-total-memory-size".to_string(),
            "worker.invoker.abort-timeout".to_string(),
        ];
        let want = expected(&patch, &keys).expect("both set");
        assert_eq!(
            want,
            [
                (
                    "rocksdb-total-memory-size".to_string(),
                    "384 MiB".to_string()
                ),
                ("worker.invoker.abort-timeout".to_string(), "3s".to_string()),
            ]
        );
        assert_eq!(expected(&patch, &["log-filter".to_string()]), None);
        assert_eq!(
            query("N2", &want),
            "SELECT key, value FROM config WHERE plain_node_id = 'N2' AND key IN ('rocksdb-total-memory-size', 'worker.invoker.abort-timeout')"
        );
        let table = rows(
            r#"[{"key":"rocksdb-total-memory-size","value":"384.0 MiB"},{"key":"worker.invoker.abort-timeout","value":"10m"}]"#,
        )
        .expect("rows");
        assert_eq!(
            not_yet(&want, &table),
            ["worker.invoker.abort-timeout is \"10m\", not \"3s\""]
        );
    }
}

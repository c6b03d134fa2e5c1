//! Applies [`PatchOp`]s to restate.toml with toml_edit, so that everything the patch does not name
//! (comments, blank lines, key order, other keys, line endings) stays byte for byte.

use std::path::Path;

use restate_fleet_proto::agent::{AgentError, ConfigValue, ErrorKind, PatchOp};
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

/// Parses a config file's text, turning a syntax error into a `config_parse` error with line:col.
pub fn parse(text: &str, path: &Path) -> Result<DocumentMut, AgentError> {
    text.parse::<DocumentMut>().map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((1, 1));
        AgentError::new(
            ErrorKind::ConfigParse,
            format!("not valid TOML: {}", e.message()),
        )
        .with_path(path)
        .with_location(line, column)
        .with_hint("fix the file by hand; the agent never rewrites a file it cannot parse")
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut i = offset.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A file's text after a patch, and the keys the patch changed in it.
#[derive(Debug)]
pub struct Patched {
    /// Equal to the old text when the patch changes nothing.
    pub text: String,
    /// Dotted key paths, in patch order (`metadata-client.addresses`), each once.
    pub changed_keys: Vec<String>,
}

pub fn patch_text(old: &str, ops: &[PatchOp], path: &Path) -> Result<Patched, AgentError> {
    let mut doc = parse(old, path)?;
    let mut changed_keys: Vec<String> = Vec::new();
    for op in ops {
        for key in apply_op(doc.as_table_mut(), op).map_err(|e| e.with_path(path))? {
            if !changed_keys.contains(&key) {
                changed_keys.push(key);
            }
        }
    }
    if changed_keys.is_empty() {
        // toml_edit's rendering may differ in details it does not model (a missing final newline).
        return Ok(Patched {
            text: old.to_string(),
            changed_keys,
        });
    }
    let mut new = doc.to_string();
    if old.contains("\r\n") {
        // toml_edit writes `\n` after the keys it adds; keep a CRLF file CRLF throughout.
        new = new.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    if !old.is_empty() && !old.ends_with('\n') {
        let trimmed = new.trim_end_matches(['\r', '\n']).len();
        new.truncate(trimmed);
    }
    Ok(Patched {
        text: new,
        changed_keys,
    })
}

/// The keys the op changed in the document.
fn apply_op(root: &mut Table, op: &PatchOp) -> Result<Vec<String>, AgentError> {
    if op.path().is_empty() || op.path().iter().any(|s| s.is_empty()) {
        return Err(AgentError::new(
            ErrorKind::Patch,
            "a patch op has an empty key path or an empty key segment",
        )
        .with_key(op.path().join(".")));
    }
    match op {
        PatchOp::Set { path, value, .. } => {
            let mut leaves = Vec::new();
            flatten(path.clone(), value, &mut leaves);
            let mut changed = Vec::new();
            for (leaf_path, leaf) in leaves {
                if set_leaf(root, &leaf_path, &leaf_path, to_toml(leaf))? {
                    changed.push(leaf_path.join("."));
                }
            }
            Ok(changed)
        }
        PatchOp::Remove { path, .. } => Ok(if remove(root, path) {
            vec![path.join(".")]
        } else {
            Vec::new()
        }),
        PatchOp::Rename { path, to } => {
            let Some(value) = take_value(root, path) else {
                return Ok(Vec::new());
            };
            set_leaf(root, to, to, value)?;
            Ok(vec![path.join("."), to.join(".")])
        }
    }
}

/// Removes the value at `path` and returns it; a table there, or nothing, stays as it is.
fn take_value(table: &mut dyn TableLike, path: &[String]) -> Option<Value> {
    let (key, rest) = path.split_first()?;
    if rest.is_empty() {
        if !matches!(table.get(key), Some(Item::Value(_))) {
            return None;
        }
        return table.remove(key).and_then(|item| item.into_value().ok());
    }
    take_value(table.get_mut(key)?.as_table_like_mut()?, rest)
}

/// A table value is merged key by key: each non-table entry becomes its own leaf to set.
fn flatten<'v>(
    path: Vec<String>,
    value: &'v ConfigValue,
    out: &mut Vec<(Vec<String>, &'v ConfigValue)>,
) {
    match value {
        ConfigValue::Table(entries) => {
            for (key, entry) in entries {
                let mut sub = path.clone();
                sub.push(key.clone());
                flatten(sub, entry, out);
            }
        }
        leaf => out.push((path, leaf)),
    }
}

fn to_toml(value: &ConfigValue) -> Value {
    match value {
        ConfigValue::Bool(b) => Value::from(*b),
        ConfigValue::Integer(i) => Value::from(*i),
        ConfigValue::Float(f) => Value::from(*f),
        ConfigValue::String(s) => Value::from(s.as_str()),
        ConfigValue::Array(items) => Value::Array(items.iter().map(to_toml).collect()),
        ConfigValue::Table(entries) => Value::InlineTable(
            entries
                .iter()
                .map(|(k, v)| (k.as_str(), to_toml(v)))
                .collect(),
        ),
    }
}

fn set_leaf(
    table: &mut dyn TableLike,
    path: &[String],
    full: &[String],
    new: Value,
) -> Result<bool, AgentError> {
    let Some((key, rest)) = path.split_first() else {
        return Ok(false);
    };
    if rest.is_empty() {
        return match table.get_mut(key) {
            Some(Item::Value(current)) if same_value(current, &new) => Ok(false),
            Some(Item::Value(current)) => {
                // The old value's decor holds the comment beside the key: keep it.
                let decor = current.decor().clone();
                *current = new;
                *current.decor_mut() = decor;
                Ok(true)
            }
            Some(Item::Table(_) | Item::ArrayOfTables(_)) => Err(conflict(
                full,
                "is a table here, so it cannot be set to a value",
            )),
            Some(Item::None) | None => {
                table.insert(key, Item::Value(new));
                Ok(true)
            }
        };
    }
    if table.get(key).is_none() {
        let mut child = Table::new();
        // Only the table that receives the key gets a `[header]`; tables above it stay implicit.
        child.set_implicit(rest.len() > 1);
        // Inside `a.b = 1` style keys, new keys follow the same style.
        child.set_dotted(table.is_dotted());
        table.insert(key, Item::Table(child));
    }
    match table.get_mut(key).and_then(Item::as_table_like_mut) {
        Some(child) => set_leaf(child, rest, full, new),
        None => {
            let depth = full.len() - rest.len();
            Err(conflict(
                &full[..depth],
                "is not a table (a value or an array of tables), so no key can be set under it",
            ))
        }
    }
}

fn conflict(path: &[String], what: &str) -> AgentError {
    let key = path.join(".");
    AgentError::new(ErrorKind::Patch, format!("`{key}` {what}"))
        .with_key(key)
        .with_hint("change or remove that key by hand, or fix the inventory's config keys")
}

fn remove(table: &mut dyn TableLike, path: &[String]) -> bool {
    let Some((key, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(key).is_some();
    }
    match table.get_mut(key).and_then(Item::as_table_like_mut) {
        Some(child) => remove(child, rest),
        None => false,
    }
}

/// Equal as TOML data, whatever the formatting (so `'x'` equals `"x"` and stays as written).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Integer(a), Value::Integer(b)) => a.value() == b.value(),
        (Value::Float(a), Value::Float(b)) => {
            a.value() == b.value() || (a.value().is_nan() && b.value().is_nan())
        }
        (Value::Boolean(a), Value::Boolean(b)) => a.value() == b.value(),
        (Value::Datetime(a), Value::Datetime(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same_value(x, y))
        }
        (Value::InlineTable(a), Value::InlineTable(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| same_value(x, y)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(old: &str, ops: &[PatchOp]) -> String {
        patch_text(old, ops, Path::new("restate.toml"))
            .unwrap()
            .text
    }

    const REAL: &str = r#"# Restate node n1 — managed by hand until now
cluster-name = "prod"   # do not change
node-name = "n1"

# all roles
roles = ["worker", "admin", "metadata-server", "log-server", "http-ingress"]
advertised-address = "http://10.0.0.1:5122/"

[admin]
# admin API
bind-address = "0.0.0.0:9070"

[worker.snapshots]
destination = "s3://old/path" # old bucket
aws-region = "eu-west-1"

[[ingress.kafka-clusters]]
name = "a"
brokers = ["b1:9092"]

[[ingress.kafka-clusters]]
name = "b"
brokers = ["b2:9092"]

[bifrost]
default-provider = "replicated"
"#;

    #[test]
    fn names_the_keys_that_change_and_only_those() {
        let old = "roles = [\"worker\"]\n[metadata-client]\naddresses = [\"http://n1:5122/\"]\n";
        let ops = [
            PatchOp::set(&["roles"], vec!["worker".to_string()]),
            PatchOp::set(
                &["metadata-client", "addresses"],
                vec!["http://n1:5122/".to_string(), "http://n2:5122/".to_string()],
            ),
            PatchOp::set(&["auto-provision"], false),
            PatchOp::remove(&["bifrost", "default-provider"]),
        ];
        let patched = patch_text(old, &ops, Path::new("f")).unwrap();
        assert_eq!(
            patched.changed_keys,
            ["metadata-client.addresses", "auto-provision"]
        );
        let again = patch_text(&patched.text, &ops, Path::new("f")).unwrap();
        assert!(again.changed_keys.is_empty());
        assert_eq!(again.text, patched.text);
    }

    #[test]
    fn changes_only_the_patched_value_and_keeps_the_comment_beside_it() {
        let new = patch(
            REAL,
            &[PatchOp::set(
                &["worker", "snapshots", "destination"],
                "s3://new/p",
            )],
        );
        assert_eq!(
            new,
            REAL.replace(
                r#"destination = "s3://old/path" # old bucket"#,
                r#"destination = "s3://new/p" # old bucket"#
            )
        );
    }

    #[test]
    fn setting_current_values_is_no_change() {
        let ops = [
            PatchOp::set(&["cluster-name"], "prod"),
            PatchOp::set(
                &["roles"],
                vec![
                    "worker",
                    "admin",
                    "metadata-server",
                    "log-server",
                    "http-ingress",
                ],
            ),
            PatchOp::set(&["worker", "snapshots", "aws-region"], "eu-west-1"),
            PatchOp::remove(&["auto-provision"]),
            PatchOp::remove(&["metadata-client", "addresses"]),
        ];
        assert_eq!(patch(REAL, &ops), REAL);
    }

    #[test]
    fn literal_string_equal_to_basic_string_is_no_change() {
        let old = "node-name = 'n1'\n";
        assert_eq!(patch(old, &[PatchOp::set(&["node-name"], "n1")]), old);
    }

    #[test]
    fn a_renamed_key_keeps_its_value_under_its_new_name() {
        let old = "[worker.snapshots]\ndestination = \"s3://b\"\nexperimental-num-retained = 3 # keep three\n";
        let op = PatchOp::rename(
            &["worker", "snapshots", "experimental-num-retained"],
            &["worker", "snapshots", "num-retained"],
        );
        let new = patch(old, std::slice::from_ref(&op));
        assert!(new.contains("num-retained = 3"), "{new}");
        assert!(!new.contains("experimental-num-retained"), "{new}");
        assert!(new.contains("destination = \"s3://b\""), "{new}");
        assert_eq!(
            patch(&new, &[op]),
            new,
            "renamed once: no change the second time"
        );
    }

    #[test]
    fn new_key_goes_into_the_existing_table() {
        let new = patch(
            REAL,
            &[PatchOp::set(
                &["worker", "snapshots", "aws-allow-http"],
                true,
            )],
        );
        assert!(
            new.contains(
                "aws-region = \"eu-west-1\"\naws-allow-http = true\n\n[[ingress.kafka-clusters]]"
            ),
            "{new}"
        );
        assert_eq!(new.replace("aws-allow-http = true\n", ""), REAL);
    }

    #[test]
    fn new_top_level_key_goes_before_the_first_table() {
        let new = patch(REAL, &[PatchOp::set(&["auto-provision"], false)]);
        assert!(
            new.contains(
                "advertised-address = \"http://10.0.0.1:5122/\"\nauto-provision = false\n\n[admin]"
            ),
            "{new}"
        );
    }

    #[test]
    fn new_table_is_created_once_with_a_header() {
        let new = patch(
            REAL,
            &[
                PatchOp::set(&["metadata-client", "addresses"], vec!["http://n1:5122/"]),
                PatchOp::set(&["metadata-client", "x"], 1i64),
            ],
        );
        assert!(new.starts_with(REAL), "{new}");
        assert_eq!(
            &new[REAL.len()..],
            "\n[metadata-client]\naddresses = [\"http://n1:5122/\"]\nx = 1\n"
        );
    }

    #[test]
    fn nested_new_table_under_existing_parent_follows_its_siblings() {
        let old = "[worker]\nx = 1\n\n[worker.invoker]\ny = 2\n\n[admin]\nz = 3\n";
        let new = patch(
            old,
            &[PatchOp::set(
                &["worker", "snapshots", "destination"],
                "s3://b",
            )],
        );
        assert_eq!(
            new,
            "[worker]\nx = 1\n\n[worker.invoker]\ny = 2\n\n[worker.snapshots]\ndestination = \"s3://b\"\n\n[admin]\nz = 3\n"
        );
    }

    #[test]
    fn dotted_keys_at_top_level_stay_dotted() {
        let old = "cluster-name = \"c\"\nworker.snapshots.destination = \"s3://a\" # here\n\n[admin]\nbind-address = \"0.0.0.0:9070\"\n";
        let new = patch(
            old,
            &[
                PatchOp::set(&["worker", "snapshots", "destination"], "s3://b"),
                PatchOp::set(&["worker", "snapshots", "aws-region"], "us-east-1"),
            ],
        );
        assert_eq!(
            new,
            "cluster-name = \"c\"\nworker.snapshots.destination = \"s3://b\" # here\nworker.snapshots.aws-region = \"us-east-1\"\n\n[admin]\nbind-address = \"0.0.0.0:9070\"\n"
        );
    }

    #[test]
    fn inline_tables_are_patched_in_place() {
        let old = "[worker]\nsnapshots = { destination = \"s3://a\", aws-region = \"r\" }\n";
        let new = patch(
            old,
            &[PatchOp::set(
                &["worker", "snapshots", "destination"],
                "s3://b",
            )],
        );
        assert_eq!(
            new,
            "[worker]\nsnapshots = { destination = \"s3://b\", aws-region = \"r\" }\n"
        );
        let added = patch(
            old,
            &[PatchOp::set(
                &["worker", "snapshots", "aws-allow-http"],
                true,
            )],
        );
        let doc: DocumentMut = added.parse().unwrap();
        assert_eq!(
            doc["worker"]["snapshots"]["aws-allow-http"].as_bool(),
            Some(true)
        );
        assert!(
            added.starts_with(
                "[worker]\nsnapshots = { destination = \"s3://a\", aws-region = \"r\""
            )
        );
    }

    #[test]
    fn table_values_merge_key_by_key() {
        let value: ConfigValue =
            serde_json::from_str(r#"{"destination": "s3://old/path", "aws-allow-http": true}"#)
                .unwrap();
        let new = patch(
            REAL,
            &[PatchOp::Set {
                path: vec!["worker".into(), "snapshots".into()],
                value,
                secret: false,
            }],
        );
        assert_eq!(
            new,
            REAL.replace(
                "aws-region = \"eu-west-1\"\n",
                "aws-region = \"eu-west-1\"\naws-allow-http = true\n"
            )
        );
    }

    #[test]
    fn arrays_of_tables_survive_and_cannot_be_addressed() {
        let new = patch(
            REAL,
            &[PatchOp::set(&["bifrost", "default-provider"], "local")],
        );
        assert!(new.contains("[[ingress.kafka-clusters]]\nname = \"a\""));
        assert!(new.contains("[[ingress.kafka-clusters]]\nname = \"b\""));
        let err = patch_text(
            REAL,
            &[PatchOp::set(&["ingress", "kafka-clusters", "name"], "c")],
            Path::new("restate.toml"),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Patch);
        assert_eq!(err.key.as_deref(), Some("ingress.kafka-clusters"));
    }

    #[test]
    fn value_in_the_way_of_a_table_is_a_patch_error() {
        let err = patch_text(
            "worker = 5\n",
            &[PatchOp::set(
                &["worker", "snapshots", "destination"],
                "s3://b",
            )],
            Path::new("/etc/restate/restate.toml"),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Patch);
        assert_eq!(err.key.as_deref(), Some("worker"));
        assert_eq!(
            err.path.as_deref(),
            Some(Path::new("/etc/restate/restate.toml"))
        );
        let err = patch_text(
            "[admin]\n",
            &[PatchOp::set(&["admin"], 1i64)],
            Path::new("f"),
        )
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("admin"));
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let old = "cluster-name = \"c\"\r\n# comment\r\n\r\n[admin]\r\nbind-address = \"x\"\r\n";
        let new = patch(
            old,
            &[
                PatchOp::set(&["admin", "y"], 1i64),
                PatchOp::set(&["worker", "snapshots", "destination"], "s3://b"),
            ],
        );
        assert_eq!(
            new.matches('\n').count(),
            new.matches("\r\n").count(),
            "{new:?}"
        );
        assert!(new.starts_with("cluster-name = \"c\"\r\n# comment\r\n\r\n[admin]\r\nbind-address = \"x\"\r\ny = 1\r\n"), "{new:?}");
    }

    #[test]
    fn file_without_trailing_newline() {
        let old = "cluster-name = \"c\"\nnode-name = \"n1\"";
        assert_eq!(patch(old, &[PatchOp::set(&["node-name"], "n1")]), old);
        assert_eq!(
            patch(old, &[PatchOp::set(&["node-name"], "n2")]),
            "cluster-name = \"c\"\nnode-name = \"n2\""
        );
        let added = patch(old, &[PatchOp::set(&["auto-provision"], false)]);
        assert_eq!(
            added,
            "cluster-name = \"c\"\nnode-name = \"n1\"\nauto-provision = false"
        );
    }

    #[test]
    fn remove_deletes_only_that_key_and_its_comment() {
        let new = patch(REAL, &[PatchOp::remove(&["admin", "bind-address"])]);
        assert_eq!(
            new,
            REAL.replace("# admin API\nbind-address = \"0.0.0.0:9070\"\n", "")
        );
    }

    #[test]
    fn empty_file_gets_new_content() {
        let new = patch(
            "",
            &[
                PatchOp::set(&["cluster-name"], "c"),
                PatchOp::set(&["worker", "snapshots", "destination"], "s3://b"),
            ],
        );
        assert_eq!(
            new,
            "cluster-name = \"c\"\n\n[worker.snapshots]\ndestination = \"s3://b\"\n"
        );
    }

    #[test]
    fn parse_errors_say_where() {
        let err = parse("a = 1\nb = = 2\n", Path::new("/etc/r.toml")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ConfigParse);
        assert_eq!((err.line, err.column), (Some(2), Some(5)));
    }

    #[test]
    fn keys_needing_quotes_are_quoted() {
        let new = patch("", &[PatchOp::set(&["a b"], 1i64)]);
        assert_eq!(new, "\"a b\" = 1\n");
        assert!(patch_text("", &[PatchOp::set(&[], 1i64)], Path::new("f")).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("worker".to_string()),
                Just("snapshots".to_string()),
                Just("admin".to_string()),
                Just("roles".to_string()),
                Just("cluster-name".to_string()),
                "[a-z][a-z0-9-]{0,8}",
                "[ -~]{1,6}",
            ]
        }

        fn leaf() -> impl Strategy<Value = ConfigValue> {
            prop_oneof![
                any::<bool>().prop_map(ConfigValue::Bool),
                any::<i64>().prop_map(ConfigValue::Integer),
                (-1.0e9f64..1.0e9).prop_map(ConfigValue::Float),
                "[ -~]{0,12}".prop_map(ConfigValue::String),
                proptest::collection::vec("[a-z]{0,5}".prop_map(ConfigValue::String), 0..4)
                    .prop_map(ConfigValue::Array),
            ]
        }

        fn read_back(text: &str, path: &[String]) -> Option<Value> {
            let doc: DocumentMut = text.parse().ok()?;
            let (first, rest) = path.split_first()?;
            let item = rest.iter().try_fold(doc.get(first)?, |i, k| i.get(k))?;
            item.as_value().cloned()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// A set either fails cleanly or yields a valid file holding the value, a second
            /// identical set is no change, and a remove takes the key away again.
            #[test]
            fn set_reads_back_and_is_idempotent(
                path in proptest::collection::vec(segment(), 1..4),
                value in leaf(),
                crlf in any::<bool>(),
            ) {
                let base = if crlf { REAL.replace('\n', "\r\n") } else { REAL.to_string() };
                let op = PatchOp::Set { path: path.clone(), value: value.clone(), secret: false };
                let Ok(once) = patch_text(&base, std::slice::from_ref(&op), Path::new("f")).map(|p| p.text) else {
                    return Ok(());
                };
                let got = read_back(&once, &path).expect("value is in the patched file");
                prop_assert!(same_value(&got, &to_toml(&value)), "{got} in {once}");
                let twice = patch_text(&once, &[op], Path::new("f")).unwrap().text;
                prop_assert_eq!(&twice, &once);
                if crlf {
                    prop_assert_eq!(once.matches('\n').count(), once.matches("\r\n").count());
                }
                let removed = patch_text(&once, &[PatchOp::Remove { path: path.clone(), secret: false }], Path::new("f")).unwrap().text;
                prop_assert!(read_back(&removed, &path).is_none());
            }

            /// Arbitrary text never panics the parser or the patcher.
            #[test]
            fn arbitrary_text_never_panics(text in "[ -~\n\r\t\\[\\]{}=\"'#.]{0,120}") {
                let _ = patch_text(&text, &[PatchOp::set(&["worker", "snapshots", "destination"], "s3://b")], Path::new("f"));
            }
        }
    }
}

//! One level of host settings: `[defaults]`, a `[groups.NAME]` or a `[hosts.NAME]`. Layers are
//! read independently, then stacked defaults < groups (file order) < host.

use restate_fleet_proto::agent::is_portable_user_name;

use crate::address;
use crate::argv;
use crate::model::{Role, Service};
use crate::placement::{Location, parse_location};
use crate::reader::Reader;
use crate::secret::Secret;
use crate::suggest;
use crate::tree::{Entry, Kind, Node, Span};
use crate::value::ConfigValue;

#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    /// `parsed` at `entry`'s value, or its error reported there with `help`.
    pub(crate) fn at(
        reader: &mut Reader,
        entry: &Entry,
        parsed: Result<T, String>,
        help: &str,
    ) -> Option<Self> {
        match parsed {
            Ok(value) => Some(Spanned {
                value,
                span: entry.node.span.clone(),
            }),
            Err(message) => {
                reader
                    .report
                    .error(entry.node.span.clone(), message, Some(help.into()));
                None
            }
        }
    }
}

/// A `config` key with its place, kept until merging is done.
#[derive(Debug, Clone)]
pub(crate) struct ConfigItem {
    pub path: Vec<String>,
    pub value: ConfigValue,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Layer {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub identity_passphrase: Option<Secret>,
    pub become_root: Option<bool>,
    pub config_path: Option<String>,
    /// The service and its `user`, replaced together by a later layer.
    pub service: Option<(Service, Option<String>)>,
    pub roles: Option<Spanned<Vec<Role>>>,
    pub location: Option<Spanned<Location>>,
    pub config: Vec<ConfigItem>,
    // Only in [hosts.NAME]:
    pub address: Option<Spanned<String>>,
    pub node_name: Option<Spanned<String>>,
    pub advertised_address: Option<String>,
    // Only in [groups.NAME]:
    pub hosts: Vec<(String, Span)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Defaults,
    Group,
    Host,
}

const COMMON_KEYS: [&str; 10] = [
    "user",
    "port",
    "identity-file",
    "identity-passphrase",
    "become",
    "config-path",
    "service",
    "roles",
    "location",
    "config",
];
const HOST_KEYS: [&str; 3] = ["address", "node-name", "advertised-address"];
const CLUSTER_KEYS: [&str; 5] = [
    "name",
    "replication",
    "metadata-servers",
    "restate-server",
    "snapshots",
];

impl Layer {
    /// Applies `over` on top of `self`: every setting `over` has wins; config keys merge per key.
    pub(crate) fn stack(&mut self, over: &Layer) {
        fn take<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
            if over.is_some() {
                base.clone_from(over);
            }
        }
        take(&mut self.user, &over.user);
        take(&mut self.port, &over.port);
        take(&mut self.identity_file, &over.identity_file);
        take(&mut self.identity_passphrase, &over.identity_passphrase);
        take(&mut self.become_root, &over.become_root);
        take(&mut self.config_path, &over.config_path);
        take(&mut self.service, &over.service);
        take(&mut self.roles, &over.roles);
        take(&mut self.location, &over.location);
        take(&mut self.address, &over.address);
        take(&mut self.node_name, &over.node_name);
        take(&mut self.advertised_address, &over.advertised_address);
        for item in &over.config {
            merge_config(&mut self.config, item.clone());
        }
    }
}

/// A later key replaces the same key, and also whatever it overlaps: `a = 1` replaces `a.b`, and
/// `a.b` replaces `a`. The first position of a key is kept so the patch order stays stable.
fn merge_config(items: &mut Vec<ConfigItem>, item: ConfigItem) {
    if let Some(same) = items.iter_mut().find(|i| i.path == item.path) {
        *same = item;
        return;
    }
    items.retain(|i| !i.path.starts_with(&item.path) && !item.path.starts_with(&i.path));
    items.push(item);
}

pub(crate) fn read(reader: &mut Reader, entries: &[Entry], scope: Scope, label: &str) -> Layer {
    let own: &[&str] = match scope {
        Scope::Host => &HOST_KEYS,
        Scope::Group => &["hosts"],
        Scope::Defaults => &[],
    };
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(own).copied().collect();
    reader.check_keys(entries, label, &allowed, |key| {
        elsewhere(key, scope, label, &allowed)
    });

    let mut layer = Layer::default();
    for entry in entries.iter().filter(|e| allowed.contains(&e.key.as_str())) {
        match entry.key.as_str() {
            "user" => layer.user = reader.string(entry),
            "port" => layer.port = port(reader, entry),
            "identity-file" => layer.identity_file = reader.string(entry),
            "identity-passphrase" => layer.identity_passphrase = reader.secret(entry),
            "become" => layer.become_root = reader.boolean(entry),
            "config-path" => layer.config_path = reader.string(entry),
            "service" => layer.service = service(reader, entry),
            "roles" => layer.roles = roles(reader, entry),
            "location" => {
                layer.location = reader.string(entry).and_then(|text| {
                    Spanned::at(
                        reader,
                        entry,
                        parse_location(&text),
                        "it becomes the node's `location` in restate.toml: \"region.zone\" or \"region\"",
                    )
                });
            }
            "config" => {
                if let Some(table) = reader.table(entry) {
                    flatten(reader, table, &mut Vec::new(), &mut layer.config);
                }
            }
            "address" => {
                layer.address = reader.string(entry).map(|value| Spanned {
                    value,
                    span: entry.node.span.clone(),
                });
                if let Some(Err(message)) = layer
                    .address
                    .as_ref()
                    .map(|a| address::check_host(&a.value))
                {
                    reader.report.error(
                        entry.node.span.clone(),
                        message,
                        Some("write a hostname or an IP address, without scheme or port (SSH's port goes in `port`)".into()),
                    );
                }
            }
            "node-name" => {
                layer.node_name = reader.string(entry).map(|value| Spanned {
                    value,
                    span: entry.node.span.clone(),
                })
            }
            "advertised-address" => {
                layer.advertised_address = reader.string(entry);
                if let Some(Err(message)) = layer
                    .advertised_address
                    .as_deref()
                    .map(address::check_fabric_url)
                {
                    reader.report.error(
                        entry.node.span.clone(),
                        message,
                        Some(
                            "write it as http://HOST:5122/ (Restate's fabric address of this node)"
                                .into(),
                        ),
                    );
                }
            }
            "hosts" => layer.hosts = reader.string_list(entry).unwrap_or_default(),
            _ => unreachable!("keys were checked against the allowed list"),
        }
    }
    layer
}

/// Where a key that does not belong in this table does belong, if anywhere.
fn elsewhere(key: &str, scope: Scope, label: &str, allowed: &[&str]) -> Option<String> {
    if let Some(close) = suggest::closest(key, allowed.iter().copied()) {
        return Some(format!("did you mean `{close}`?"));
    }
    if HOST_KEYS.contains(&key) && scope != Scope::Host {
        return Some(format!("`{key}` is per host: set it in [hosts.NAME]"));
    }
    if key == "hosts" {
        return Some("`hosts` lists the members of a group: set it in [groups.NAME]".into());
    }
    if CLUSTER_KEYS.contains(&key) {
        return Some(format!("`{key}` is cluster-wide: set it in [cluster]"));
    }
    Some(format!(
        "restate.toml settings go in [{}.config]; inventory keys here are: {}",
        label.trim_matches(['[', ']']),
        allowed.join(", ")
    ))
}

fn port(reader: &mut Reader, entry: &Entry) -> Option<u16> {
    let value = reader.integer(entry)?;
    match u16::try_from(value) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            reader.report.error(
                entry.node.span.clone(),
                format!("port {value} is out of range"),
                Some("an SSH port is between 1 and 65535 (usually 22)".into()),
            );
            None
        }
    }
}

fn roles(reader: &mut Reader, entry: &Entry) -> Option<Spanned<Vec<Role>>> {
    let names = reader.string_list(entry)?;
    let known = Role::ALL.map(Role::as_str);
    if names.is_empty() {
        reader.report.error(
            entry.node.span.clone(),
            "`roles` is empty: a node needs at least one role",
            Some(format!("pick from: {}", known.join(", "))),
        );
        return None;
    }
    let mut roles = Vec::new();
    for (name, span) in names {
        match Role::parse(&name) {
            Some(role) if !roles.contains(&role) => roles.push(role),
            Some(_) => {}
            None => reader.report.error(
                span,
                format!("`{name}` is not a Restate role"),
                Some(suggest::help(&name, &known)),
            ),
        }
    }
    Some(Spanned {
        value: roles,
        span: entry.node.span.clone(),
    })
}

fn service(reader: &mut Reader, entry: &Entry) -> Option<(Service, Option<String>)> {
    let table = reader.table(entry)?;
    let user = match crate::tree::get(table, "user") {
        Some(user) => Some(service_user(reader, user)?),
        None => None,
    };
    manager(reader, entry, table).map(|service| (service, user))
}

/// The names the agent accepts for a service user.
fn service_user(reader: &mut Reader, entry: &Entry) -> Option<String> {
    let user = reader.string(entry)?;
    if is_portable_user_name(&user) {
        return Some(user);
    }
    reader.report.error(
        entry.node.span.clone(),
        format!("`{user}` is not a valid system user name"),
        Some(
            "use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. user = \"restate\""
                .into(),
        ),
    );
    None
}

fn manager(reader: &mut Reader, entry: &Entry, table: &[Entry]) -> Option<Service> {
    let label = format!("`{}`", entry.key);
    let Some(manager) = crate::tree::get(table, "manager") else {
        reader.report.error(
            entry.node.span.clone(),
            "`service` has no `manager`",
            Some(
                "write service = { manager = \"systemd\", unit = \"restate.service\" } or \
                 { manager = \"command\", start = \"...\", stop = \"...\", restart = \"...\", status = \"...\" }"
                    .into(),
            ),
        );
        return None;
    };
    match reader.string(manager)?.as_str() {
        "systemd" => {
            reader.check_keys(table, &label, &["manager", "unit", "user"], |_| None);
            let unit = match crate::tree::get(table, "unit") {
                Some(unit) => reader.string(unit)?,
                None => crate::model::DEFAULT_UNIT.to_string(),
            };
            Some(Service::Systemd { unit })
        }
        "command" => {
            const KEYS: [&str; 5] = ["manager", "start", "stop", "restart", "status"];
            reader.check_keys(
                table,
                &label,
                &[&KEYS[..], &["user", "log"]].concat(),
                |_| None,
            );
            let log = match crate::tree::get(table, "log") {
                None => None,
                Some(log) => {
                    let path = reader.string(log)?;
                    if !path.starts_with('/') {
                        reader.report.error(
                            log.node.span.clone(),
                            format!("`log` must be an absolute path, not {path:?}"),
                            Some("give the file the commands write restate-server's output to, e.g. log = \"/var/log/restate/restate-server.log\"".into()),
                        );
                        return None;
                    }
                    Some(path)
                }
            };
            // Every command is read before giving up, so all broken ones are reported at once.
            let argvs: Vec<Option<Vec<String>>> = KEYS[1..]
                .iter()
                .map(|key| match crate::tree::get(table, key) {
                    Some(command) => command_argv(reader, command),
                    None => {
                        reader.report.error(
                            entry.node.span.clone(),
                            format!("`service` with manager \"command\" has no `{key}` command"),
                            Some("give all four: start, stop, restart, status".into()),
                        );
                        None
                    }
                })
                .collect();
            match <[Option<Vec<String>>; 4]>::try_from(argvs) {
                Ok([Some(start), Some(stop), Some(restart), Some(status)]) => {
                    Some(Service::Command {
                        start,
                        stop,
                        restart,
                        status,
                        log,
                    })
                }
                _ => None,
            }
        }
        other => {
            reader.report.error(
                manager.node.span.clone(),
                format!("unknown service manager `{other}`"),
                Some(suggest::help(other, &["systemd", "command"])),
            );
            None
        }
    }
}

/// A command string split into argv; quoting errors point at the quote inside the string.
fn command_argv(reader: &mut Reader, entry: &Entry) -> Option<Vec<String>> {
    let line = reader.string(entry)?;
    match argv::split(&line) {
        Ok(argv) if !argv.is_empty() => Some(argv),
        Ok(_) => {
            reader.report.error(
                entry.node.span.clone(),
                format!("`{}` command is empty", entry.key),
                Some("give the program to run and its arguments".into()),
            );
            None
        }
        Err(err) => {
            let span = inner_span(reader.report.text(), &entry.node, &line, err.offset);
            reader.report.error(
                span,
                format!("`{}` command: {}", entry.key, err.message),
                Some(
                    "commands are split like a POSIX shell would (no shell runs them): close the \
                     quote, or escape it with a backslash"
                        .into(),
                ),
            );
            None
        }
    }
}

/// The place of byte `offset` of a string value inside the file, exact when the string is written
/// without escapes (the usual case); otherwise the whole string.
fn inner_span(text: &str, node: &Node, value: &str, offset: usize) -> Span {
    let raw = text.get(node.span.clone()).unwrap_or_default();
    let unescaped = raw.len() == value.len() + 2 && raw.get(1..raw.len() - 1) == Some(value);
    if unescaped {
        let at = node.span.start + 1 + offset;
        at..at + 1
    } else {
        node.span.clone()
    }
}

/// Flattens a `config` table into dotted keys; values that are not tables stay whole.
fn flatten(
    reader: &mut Reader,
    entries: &[Entry],
    prefix: &mut Vec<String>,
    out: &mut Vec<ConfigItem>,
) {
    for entry in entries {
        prefix.push(entry.key.clone());
        match &entry.node.kind {
            Kind::Table(inner) if !inner.is_empty() && Reader::env_var(&entry.node).is_none() => {
                flatten(reader, inner, prefix, out)
            }
            _ => {
                if let Some(problem) = managed(prefix) {
                    reader.report.error(
                        entry.key_span.clone(),
                        format!(
                            "`{}` is managed by restate-fleet and cannot be set in `config`",
                            prefix.join(".")
                        ),
                        Some(problem.to_string()),
                    );
                } else if let Some(value) = config_value(reader, &prefix.join("."), &entry.node) {
                    out.push(ConfigItem {
                        path: prefix.clone(),
                        value,
                    });
                }
            }
        }
        prefix.pop();
    }
}

/// Keys the tool writes itself, and the inventory key to use instead.
fn managed(path: &[String]) -> Option<&'static str> {
    let first = path.first().map(String::as_str);
    let second = path.get(1).map(String::as_str);
    match (first, second) {
        (Some("cluster-name"), _) => Some("set the cluster name with `name` in [cluster]"),
        (Some("node-name"), _) => {
            Some("set it with `node-name` in [hosts.NAME] (default: the host's key)")
        }
        (Some("auto-provision"), _) => {
            Some("restate-fleet sets auto-provision = false on joining nodes; remove this key")
        }
        (Some("advertised-address"), _) => Some("set it with `advertised-address` in [hosts.NAME]"),
        (Some("roles"), _) => Some("set `roles` in [defaults], [groups.NAME] or [hosts.NAME]"),
        (Some("location"), _) => {
            Some("set `location` in [hosts.NAME] or [groups.NAME] (\"region.zone\")")
        }
        (Some("metadata-client"), Some("addresses")) | (Some("metadata-client"), None) => {
            Some("the addresses are derived from `metadata-servers` in [cluster]")
        }
        (Some("worker"), Some("snapshots")) => Some("set snapshot settings in [cluster.snapshots]"),
        // Written per host from the list: false on a metadata server the list leaves out.
        (Some("metadata-server"), Some("auto-join")) => Some(
            "metadata membership follows `metadata-servers` in [cluster]; hosts it leaves out get auto-join = false",
        ),
        _ => None,
    }
}

fn config_value(reader: &mut Reader, key: &str, node: &Node) -> Option<ConfigValue> {
    if let Some((var, span)) = Reader::env_var(node) {
        return reader
            .env_value(key, var, span)
            .map(|v| ConfigValue::Secret(Secret::new(v)));
    }
    Some(match &node.kind {
        Kind::Str(s) => ConfigValue::String(s.clone()),
        Kind::Int(i) => ConfigValue::Integer(*i),
        Kind::Float(f) => ConfigValue::Float(*f),
        Kind::Bool(b) => ConfigValue::Bool(*b),
        Kind::Datetime(d) => ConfigValue::Datetime(d.clone()),
        Kind::Array(items) => ConfigValue::Array(
            items
                .iter()
                .map(|item| config_value(reader, key, item))
                .collect::<Option<_>>()?,
        ),
        Kind::Table(entries) => ConfigValue::Table(
            entries
                .iter()
                .map(|e| Some((e.key.clone(), config_value(reader, key, &e.node)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

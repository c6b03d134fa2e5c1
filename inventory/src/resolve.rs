//! From the file's text to the resolved fleet: parse, read every table, stack the layers per host,
//! then check what needs the whole fleet (names, addresses, metadata servers, replication).

use std::collections::HashMap;
use std::path::Path;

use crate::address;
use crate::cluster::{self, ClusterDraft};
use crate::diagnostic::{Diagnostic, Diagnostics, Report, Severity};
use crate::layer::{self, Layer, Scope};
use crate::model::{
    Cluster, CredentialsIn, DEFAULT_CONFIG_PATH, DEFAULT_SSH_PORT, FABRIC_PORT, Fleet, Group, Host,
    Role, Service, SshTarget,
};
use crate::placement::{self, Location};
use crate::reader::Reader;
use crate::suggest;
use crate::tree::{self, Entry, Span};
use crate::value::ConfigEntry;

/// A fleet that passed every check, and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub fleet: Fleet,
    pub warnings: Vec<Diagnostic>,
}

const TOP_KEYS: [&str; 4] = ["cluster", "defaults", "groups", "hosts"];

/// Parses an inventory. `file_name` is used in diagnostics and to resolve relative paths; `env`
/// answers `{ env = "VAR" }` lookups.
pub fn parse(
    file_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Diagnostics> {
    let mut reader = Reader::new(Report::new(file_name, text), env);
    let document = match toml_edit::Document::parse(text) {
        Ok(document) => document,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            reader.report.error(
                span,
                format!("invalid TOML: {}", err.message().trim_end()),
                Some("fix the syntax; see docs/inventory.md for the format".into()),
            );
            return Err(Diagnostics(reader.report.into_diagnostics()));
        }
    };
    let root = tree::from_document(document.as_table());
    let top = root.entries().unwrap_or_default();
    reader.check_keys(top, "the inventory", &TOP_KEYS, |_| None);

    let base_dir = Path::new(file_name).parent().unwrap_or(Path::new(""));
    let cluster = cluster::read(&mut reader, tree::get(top, "cluster"), base_dir);
    let defaults = tree::get(top, "defaults")
        .and_then(|e| reader.table(e))
        .map(|t| layer::read(&mut reader, t, Scope::Defaults, "[defaults]"))
        .unwrap_or_default();
    let groups = named_tables(&mut reader, top, "groups", Scope::Group);
    let hosts = named_tables(&mut reader, top, "hosts", Scope::Host);

    let fleet = build(&mut reader, cluster, &defaults, &groups, &hosts);
    let diagnostics = reader.report.into_diagnostics();
    match fleet {
        Some(fleet) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => Ok(Loaded {
            fleet,
            warnings: diagnostics,
        }),
        _ => Err(Diagnostics(diagnostics)),
    }
}

/// A `[groups.NAME]` or `[hosts.NAME]`.
struct Named<'t> {
    name: &'t str,
    key_span: Span,
    layer: Layer,
}

fn named_tables<'t>(
    reader: &mut Reader,
    top: &'t [Entry],
    key: &str,
    scope: Scope,
) -> Vec<Named<'t>> {
    let Some(entries) = tree::get(top, key).and_then(|e| reader.table(e)) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let table = reader.table(entry)?;
            let label = format!("[{key}.{}]", entry.key);
            Some(Named {
                name: &entry.key,
                key_span: entry.key_span.clone(),
                layer: layer::read(reader, table, scope, &label),
            })
        })
        .collect()
}

fn build(
    reader: &mut Reader,
    cluster: ClusterDraft,
    defaults: &Layer,
    groups: &[Named],
    hosts: &[Named],
) -> Option<Fleet> {
    let host_names: Vec<&str> = hosts.iter().map(|h| h.name).collect();
    check_group_members(reader, groups, &host_names);
    if hosts.is_empty() {
        reader.report.file_error(
            "the inventory has no hosts",
            Some("add a [hosts.NAME] table with `address = \"...\"` for every node".into()),
        );
    }

    let resolved: Vec<Option<Host>> = hosts
        .iter()
        .map(|host| resolve_host(reader, host, defaults, groups))
        .collect();
    let resolved: Vec<Host> = resolved.into_iter().collect::<Option<_>>()?;

    check_unique_node_names(reader, hosts, &resolved);
    check_unique_endpoints(reader, hosts, &resolved);
    let metadata_servers = metadata_servers(reader, &cluster, &resolved);
    check_replication(reader, &cluster, &resolved);
    check_credentials_file(reader, &cluster, &resolved);
    check_tls_config(reader, &cluster, &resolved);

    let mut resolved = resolved;
    for host in &mut resolved {
        host.metadata_server = metadata_servers.contains(&host.name);
    }
    let nameless = Named {
        name: "",
        key_span: 0..0,
        layer: Layer {
            address: Some(layer::Spanned {
                value: String::new(),
                span: 0..0,
            }),
            ..Layer::default()
        },
    };
    let defaults_host = resolve_host(reader, &nameless, defaults, &[])?;
    Some(Fleet {
        cluster: Cluster {
            name: cluster.name?,
            replication: cluster.replication.as_ref().map(|r| r.value.nodes),
            replication_property: cluster.replication.as_ref().map(|r| r.value),
            metadata_servers,
            restate_server: cluster.restate_server,
            snapshots: cluster.snapshots,
            restatectl: cluster.restatectl,
            nodeset_size: cluster.nodeset_size.as_ref().map(|s| s.value),
            tls: cluster.tls,
        },
        groups: groups
            .iter()
            .map(|g| Group {
                name: g.name.to_string(),
                hosts: g.layer.hosts.iter().map(|(h, _)| h.clone()).collect(),
            })
            .collect(),
        hosts: resolved,
        defaults: defaults_host,
    })
}

fn check_group_members(reader: &mut Reader, groups: &[Named], host_names: &[&str]) {
    for group in groups {
        for (member, span) in &group.layer.hosts {
            if !host_names.contains(&member.as_str()) {
                let help = match suggest::closest(member, host_names.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("add a [hosts.{member}] table, or remove it from the group"),
                };
                reader.report.error(
                    span.clone(),
                    format!(
                        "group `{}` names `{member}`, which is not a host",
                        group.name
                    ),
                    Some(help),
                );
            }
        }
    }
}

fn resolve_host(
    reader: &mut Reader,
    host: &Named,
    defaults: &Layer,
    groups: &[Named],
) -> Option<Host> {
    let mut merged = defaults.clone();
    let member_of: Vec<&Named> = groups
        .iter()
        .filter(|g| g.layer.hosts.iter().any(|(h, _)| h == host.name))
        .collect();
    for group in &member_of {
        merged.stack(&group.layer);
    }
    merged.stack(&host.layer);

    let Some(address) = merged.address else {
        reader.report.error(
            host.key_span.clone(),
            format!("host `{}` has no `address`", host.name),
            Some(format!(
                "add address = \"...\" (hostname or IP) under [hosts.{}]",
                host.name
            )),
        );
        return None;
    };
    let (service, service_user) = merged.service.unzip();
    let service_user = service_user.flatten();
    let advertised_address = merged
        .advertised_address
        .unwrap_or_else(|| address::default_fabric_url(&address.value, FABRIC_PORT));
    Some(Host {
        name: host.name.to_string(),
        groups: member_of.iter().map(|g| g.name.to_string()).collect(),
        ssh: SshTarget {
            address: address.value,
            port: merged.port.unwrap_or(DEFAULT_SSH_PORT),
            user: merged.user,
            identity_file: merged.identity_file,
            identity_passphrase: merged.identity_passphrase,
            become_root: merged.become_root.unwrap_or(false),
        },
        node_name: merged
            .node_name
            .map_or_else(|| host.name.to_string(), |n| n.value),
        advertised_address,
        roles: merged.roles.map_or_else(|| Role::ALL.to_vec(), |r| r.value),
        location: merged.location.map(|l| l.value),
        metadata_server: false,
        config_path: merged
            .config_path
            .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_string()),
        service: service.unwrap_or_default(),
        service_user,
        config: merged
            .config
            .into_iter()
            .map(|item| ConfigEntry::new(item.path, item.value))
            .collect(),
    })
}

/// The span to point at for a host's setting: where the host sets it, else the host's key.
fn host_span(named: &Named, own: Option<&Span>) -> Span {
    own.cloned().unwrap_or_else(|| named.key_span.clone())
}

fn check_unique_node_names(reader: &mut Reader, named: &[Named], hosts: &[Host]) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (n, host) in named.iter().zip(hosts) {
        if let Some(first) = seen.insert(&host.node_name, &host.name) {
            let span = host_span(n, n.layer.node_name.as_ref().map(|s| &s.span));
            reader.report.error(
                span,
                format!(
                    "hosts `{first}` and `{}` have the same node-name `{}`",
                    host.name, host.node_name
                ),
                Some("node-names must be unique: two live nodes with one name preempt each other; set `node-name` on one of them".into()),
            );
        }
    }
}

fn check_unique_endpoints(reader: &mut Reader, named: &[Named], hosts: &[Host]) {
    let mut seen: HashMap<(&str, u16), &str> = HashMap::new();
    for (n, host) in named.iter().zip(hosts) {
        if let Some(first) = seen.insert((&host.ssh.address, host.ssh.port), &host.name) {
            let span = host_span(n, n.layer.address.as_ref().map(|s| &s.span));
            reader.report.error(
                span,
                format!(
                    "hosts `{first}` and `{}` are both at {}:{}",
                    host.name, host.ssh.address, host.ssh.port
                ),
                Some("each host is one machine: fix the address or the port of one of them".into()),
            );
        }
    }
}

fn metadata_servers(reader: &mut Reader, cluster: &ClusterDraft, hosts: &[Host]) -> Vec<String> {
    let servers: Vec<String> = match &cluster.metadata_servers {
        Some(listed) => {
            let mut servers = Vec::new();
            for (name, span) in listed {
                match hosts.iter().find(|h| &h.name == name) {
                    None => {
                        let names = hosts.iter().map(|h| h.name.as_str());
                        let help = suggest::closest(name, names)
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| "list hosts defined in [hosts.NAME]".into());
                        reader.report.error(span.clone(), format!("metadata server `{name}` is not a host"), Some(help));
                    }
                    Some(host) if !host.has_role(Role::MetadataServer) => reader.report.error(
                        span.clone(),
                        format!("metadata server `{name}` does not have the `metadata-server` role"),
                        Some(format!("add \"metadata-server\" to the roles of `{name}`, or remove it from metadata-servers")),
                    ),
                    Some(_) if servers.contains(name) => {}
                    Some(_) => servers.push(name.clone()),
                }
            }
            // A host with the `metadata-server` role that the list leaves out is no member: it
            // runs a standby metadata server with `metadata-server.auto-join = false`, so that it
            // does not join by itself (the rollout refuses where that key cannot hold it back).
            servers
        }
        None => hosts
            .iter()
            .filter(|h| h.has_role(Role::MetadataServer))
            .map(|h| h.name.clone())
            .collect(),
    };
    // Point at the list when there is one; a derived set has no single place in the file.
    let span = cluster.metadata_servers_span.clone();
    if servers.is_empty() && !hosts.is_empty() {
        reader.report.file_error(
            "the cluster has no metadata server",
            Some(
                "give at least one host the `metadata-server` role (three for fault tolerance)"
                    .into(),
            ),
        );
    } else if servers.len().is_multiple_of(2) && !servers.is_empty() {
        let message = format!(
            "{} metadata servers ({}): an even number adds no fault tolerance over {}",
            servers.len(),
            servers.join(", "),
            servers.len() - 1
        );
        let help =
            Some("use an odd number (1, 3, 5): a quorum of 4 tolerates one failure, like 3".into());
        reader.report.warning(span, message, help);
    }
    servers
}

/// The environment file is named by a systemd drop-in: a host run by commands has no place for it.
fn check_credentials_file(reader: &mut Reader, cluster: &ClusterDraft, hosts: &[Host]) {
    let (Some(snapshots), Some(span)) = (&cluster.snapshots, &cluster.credentials_span) else {
        return;
    };
    if snapshots.credentials != CredentialsIn::EnvironmentFile {
        return;
    }
    let without: Vec<&str> = hosts
        .iter()
        .filter(|h| !matches!(h.service, Service::Systemd { .. }))
        .map(|h| h.name.as_str())
        .collect();
    if !without.is_empty() {
        reader.report.error(
            span.clone(),
            format!(
                "credentials = \"environment-file\" needs the systemd service manager on every host, not `manager = \"command\"` as on {}",
                without.join(", ")
            ),
            Some(
                "use credentials = \"restate-toml\" (the file is narrowed to root, its owner and the \
                 service before it gets them), or run those hosts under systemd"
                    .into(),
            ),
        );
    }
}

/// With `[cluster.tls]` the tool writes each node's `[tls]`; a host's own `tls` keys would fight it.
fn check_tls_config(reader: &mut Reader, cluster: &ClusterDraft, hosts: &[Host]) {
    let (Some(tls), Some(span)) = (&cluster.tls, &cluster.tls_span) else {
        return;
    };
    // A managed CA's nodes admit `restate-fleet/<cluster>/*`: a `*` in the name would admit
    // another cluster's nodes and tools.
    if let (crate::TlsCa::Managed { .. }, Some(name)) = (&tls.ca, &cluster.name)
        && name.contains('*')
    {
        reader.report.error(
            span.clone(),
            format!("the cluster name {name:?} has a `*`, which would widen the names every node admits under a managed CA"),
            Some("use a cluster name without `*`, or ca = \"own\" with allowed-subject-names of your own".into()),
        );
    }
    let setting: Vec<&str> = hosts
        .iter()
        .filter(|h| {
            h.config
                .iter()
                .any(|e| e.path.first().is_some_and(|k| k == "tls"))
        })
        .map(|h| h.name.as_str())
        .collect();
    if !setting.is_empty() {
        reader.report.error(
            span.clone(),
            format!(
                "[cluster.tls] writes every node's [tls], but the `config` of {} sets `tls` keys too",
                setting.join(", ")
            ),
            Some("remove the `tls` keys from `config` ([defaults], [groups.NAME] or [hosts.NAME]) and say the mode in [cluster.tls]".into()),
        );
    }
}

fn check_replication(reader: &mut Reader, cluster: &ClusterDraft, hosts: &[Host]) {
    let Some(replication) = &cluster.replication else {
        return;
    };
    if let Some(size) = cluster
        .nodeset_size
        .as_ref()
        .filter(|s| s.value != 0 && s.value < replication.value.nodes)
    {
        reader.report.error(
            size.span.clone(),
            format!(
                "nodeset-size {} is smaller than the replication {}: a log record could not get its copies",
                size.value, replication.value.nodes
            ),
            Some(format!(
                "use 0 (auto) or at least {}",
                replication.value.nodes
            )),
        );
    }
    let mut said: Vec<String> = Vec::new();
    for (role, holds) in [(Role::Worker, "partitions"), (Role::LogServer, "logs")] {
        let able: Vec<&str> = hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| h.name.as_str())
            .collect();
        if (able.len() as u64) < u64::from(replication.value.nodes) {
            reader.report.error(
                replication.span.clone(),
                format!(
                    "replication {} needs {} hosts with the `{role}` role ({holds}), the inventory has {}{}",
                    replication.value.nodes,
                    replication.value.nodes,
                    able.len(),
                    if able.is_empty() { String::new() } else { format!(": {}", able.join(", ")) }
                ),
                Some(format!("lower `replication`, or give more hosts the `{role}` role")),
            );
            continue;
        }
        let placed: Vec<(&str, Option<&Location>)> = hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| (h.name.as_str(), h.location.as_ref()))
            .collect();
        let holders = format!("the `{role}` role ({holds})");
        // Hosts without a location are named once, not once per role.
        if let Some(message) = placement::shortfall(&replication.value, &placed, &holders)
            .filter(|m| !said.contains(m))
        {
            said.push(message.clone());
            reader.report.error(
                replication.span.clone(),
                message,
                Some("give each host a `location = \"region.zone\"` (in [hosts.NAME] or a group), or ask for fewer zones or regions".into()),
            );
        }
    }
}

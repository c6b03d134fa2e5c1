//! `[cluster]`: settings shared by every node, read as written; checks that need the hosts are
//! done in `resolve`.

use std::path::{Path, PathBuf};

use restate_fleet_version::Version;

use crate::address;
use crate::layer::Spanned;
use crate::model::{Arch, CredentialsIn, RestateServer, ServerBinary, Snapshots};
use crate::placement::{Replication, parse_replication};
use crate::reader::Reader;
use crate::tls::{self, FabricTls};
use crate::tree::{self, Entry, Kind, Span};

pub(crate) struct ClusterDraft {
    pub name: Option<String>,
    pub replication: Option<Spanned<Replication>>,
    pub metadata_servers: Option<Vec<(String, Span)>>,
    pub metadata_servers_span: Option<Span>,
    pub restate_server: Option<RestateServer>,
    pub snapshots: Option<Snapshots>,
    pub restatectl: Option<PathBuf>,
    pub nodeset_size: Option<Spanned<u32>>,
    /// Where `[cluster.snapshots] credentials` is, for errors about hosts it cannot work on.
    pub credentials_span: Option<Span>,
    pub tls: Option<FabricTls>,
    /// Where `[cluster.tls]` is, for errors about host settings it conflicts with.
    pub tls_span: Option<Span>,
}

const KEYS: [&str; 8] = [
    "name",
    "replication",
    "metadata-servers",
    "restate-server",
    "snapshots",
    "restatectl",
    "nodeset-size",
    "tls",
];

/// The oldest Restate with the replicated metadata server and loglet the rollout relies on.
const MIN_VERSION: Version = Version::new(1, 4, 0);

pub(crate) fn read(reader: &mut Reader, cluster: Option<&Entry>, base_dir: &Path) -> ClusterDraft {
    let mut draft = ClusterDraft {
        name: None,
        replication: None,
        metadata_servers: None,
        metadata_servers_span: None,
        restate_server: None,
        snapshots: None,
        restatectl: None,
        nodeset_size: None,
        credentials_span: None,
        tls: None,
        tls_span: None,
    };
    let entries = match cluster {
        Some(entry) => reader.table(entry).unwrap_or_default(),
        None => &[],
    };
    reader.check_keys(entries, "[cluster]", &KEYS, |_| None);
    for entry in entries {
        match entry.key.as_str() {
            "name" => draft.name = cluster_name(reader, entry),
            "replication" => draft.replication = replication(reader, entry),
            "metadata-servers" => {
                draft.metadata_servers = reader.string_list(entry);
                draft.metadata_servers_span = Some(entry.node.span.clone());
            }
            "restate-server" => draft.restate_server = restate_server(reader, entry, base_dir),
            "restatectl" => draft.restatectl = reader.string(entry).map(|p| base_dir.join(p)),
            "nodeset-size" => draft.nodeset_size = nodeset_size(reader, entry),
            "tls" => {
                draft.tls_span = Some(entry.key_span.clone());
                draft.tls = tls::read(reader, entry, base_dir);
            }
            "snapshots" => {
                if let Kind::Table(table) = &entry.node.kind {
                    draft.credentials_span =
                        tree::get(table, "credentials").map(|e| e.node.span.clone());
                }
                draft.snapshots = snapshots(reader, entry);
            }
            _ => {}
        }
    }
    if draft.name.is_none() && !entries.iter().any(|e| e.key == "name") {
        let help = Some(
            "add `name = \"my-cluster\"` under [cluster]; it becomes cluster-name on every node"
                .into(),
        );
        match cluster {
            Some(entry) => {
                reader
                    .report
                    .error(entry.key_span.clone(), "the cluster has no name", help)
            }
            None => reader.report.file_error(
                "the inventory has no [cluster] table with the cluster's name",
                help,
            ),
        }
    }
    draft
}

fn cluster_name(reader: &mut Reader, entry: &Entry) -> Option<String> {
    let name = reader.string(entry)?;
    if name.trim().is_empty() {
        reader.report.error(
            entry.node.span.clone(),
            "the cluster name is empty",
            Some("use the name the existing node runs with (its `cluster-name`)".into()),
        );
        return None;
    }
    Some(name)
}

/// 0 (auto) or at least the replication, checked once both are known.
fn nodeset_size(reader: &mut Reader, entry: &Entry) -> Option<Spanned<u32>> {
    let value = reader.integer(entry)?;
    match u32::try_from(value) {
        Ok(n) => Some(Spanned {
            value: n,
            span: entry.node.span.clone(),
        }),
        Err(_) => {
            reader.report.error(
                entry.node.span.clone(),
                format!("nodeset-size must be 0 (auto) or a number of nodes, not {value}"),
                Some("leave it out, or use 0, to let Restate size each log's nodeset".into()),
            );
            None
        }
    }
}

/// A number of copies (`2`), or Restate's location-aware form (`"{zone: 2, node: 3}"`).
fn replication(reader: &mut Reader, entry: &Entry) -> Option<Spanned<Replication>> {
    let parsed = match &entry.node.kind {
        Kind::Int(i) => parse_replication(&i.to_string()).map_err(|e| e.0),
        Kind::Str(s) => parse_replication(s).map_err(|e| e.0),
        _ => Err("replication is a number or a string such as \"{zone: 2, node: 3}\"".to_string()),
    };
    Spanned::at(
        reader,
        entry,
        parsed,
        "replication is how many copies of each log and partition: 1 or more, or \"{zone: 2, node: 3}\" to spread them over zones (or regions) given by each host's `location`",
    )
}

fn restate_server(reader: &mut Reader, entry: &Entry, base_dir: &Path) -> Option<RestateServer> {
    let table = reader.table(entry)?;
    reader.check_keys(
        table,
        "`restate-server`",
        &["path", "version", "install-path"],
        |_| None,
    );
    let version = match tree::get(table, "version") {
        Some(v) => version(reader, v),
        None => {
            missing(
                reader,
                entry,
                "version",
                "the version of the binary, e.g. version = \"1.7.12\"",
            );
            None
        }
    };
    let binary = match tree::get(table, "path") {
        Some(p) => binary(reader, p, base_dir),
        None => {
            missing(
                reader,
                entry,
                "path",
                "the restate-server binary on this machine, e.g. path = \"./bin/restate-server\"",
            );
            None
        }
    };
    // Read even when the rest is broken, so its own errors show up in the same run.
    let install_path = match tree::get(table, "install-path") {
        Some(p) => Some(install_path(reader, p)?),
        None => None,
    };
    Some(RestateServer {
        version: version?,
        binary: binary?,
        install_path,
    })
}

/// A path on the hosts, so it is not relative to the inventory; the agent refuses anything else.
fn install_path(reader: &mut Reader, entry: &Entry) -> Option<PathBuf> {
    let path = reader.string(entry)?;
    let valid = path.starts_with('/')
        && !path.ends_with('/')
        && !path.chars().any(char::is_control)
        && !path.ends_with(char::is_whitespace);
    if valid {
        return Some(PathBuf::from(path));
    }
    reader.report.error(
        entry.node.span.clone(),
        format!("`{path}` is not an absolute file path on the hosts"),
        Some(
            "write the full path of the binary on the hosts, e.g. install-path = \"/usr/local/bin/restate-server\""
                .into(),
        ),
    );
    None
}

fn missing(reader: &mut Reader, entry: &Entry, key: &str, help: &str) {
    reader.report.error(
        entry.node.span.clone(),
        format!("`{}` has no `{key}`", entry.key),
        Some(format!("add {help}")),
    );
}

fn version(reader: &mut Reader, entry: &Entry) -> Option<String> {
    let version = reader.string(entry)?;
    match version.parse::<Version>() {
        Ok(parsed) if parsed >= MIN_VERSION => Some(version),
        Ok(_) => {
            reader.report.error(
                entry.node.span.clone(),
                format!("restate-server {version} is too old for a replicated cluster"),
                Some("use 1.4.0 or newer (the replicated metadata server and loglet)".into()),
            );
            None
        }
        Err(_) => {
            reader.report.error(
                entry.node.span.clone(),
                format!("`{version}` is not a version"),
                Some("write it as MAJOR.MINOR.PATCH, e.g. \"1.7.12\"".into()),
            );
            None
        }
    }
}

fn binary(reader: &mut Reader, entry: &Entry, base_dir: &Path) -> Option<ServerBinary> {
    let resolve = |p: String| -> PathBuf { base_dir.join(p) };
    match &entry.node.kind {
        Kind::Table(arches) if Reader::env_var(&entry.node).is_none() => {
            let names = Arch::ALL.map(Arch::as_str);
            reader.check_keys(arches, "`restate-server.path`", &names, |_| None);
            let paths: Vec<(Arch, PathBuf)> = Arch::ALL
                .into_iter()
                .filter_map(|arch| {
                    let e = tree::get(arches, arch.as_str())?;
                    Some((arch, resolve(reader.string(e)?)))
                })
                .collect();
            if paths.is_empty() {
                reader.report.error(
                    entry.node.span.clone(),
                    "`path` names no binary",
                    Some(
                        "write path = { x86_64 = \"...\", aarch64 = \"...\" } or path = \"...\""
                            .into(),
                    ),
                );
                return None;
            }
            Some(ServerBinary::PerArch(paths))
        }
        _ => reader.string(entry).map(|p| ServerBinary::Any(resolve(p))),
    }
}

const SNAPSHOT_KEYS: [&str; 11] = [
    "destination",
    "snapshot-interval",
    "snapshot-interval-num-records",
    "aws-profile",
    "aws-region",
    "aws-endpoint-url",
    "aws-allow-http",
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-session-token",
    "credentials",
];

fn snapshots(reader: &mut Reader, entry: &Entry) -> Option<Snapshots> {
    let table = reader.table(entry)?;
    reader.check_keys(table, "[cluster.snapshots]", &SNAPSHOT_KEYS, |_| None);
    let mut snapshots = Snapshots::default();
    let mut destination = None;
    for e in table {
        match e.key.as_str() {
            "destination" => {
                destination =
                    reader
                        .string(e)
                        .filter(|d| match address::check_snapshot_destination(d) {
                            Ok(()) => true,
                            Err((message, help)) => {
                                reader
                                    .report
                                    .error(e.node.span.clone(), message, Some(help));
                                false
                            }
                        })
            }
            "snapshot-interval" => snapshots.snapshot_interval = reader.string(e),
            "snapshot-interval-num-records" => {
                snapshots.snapshot_interval_num_records = reader.integer(e)
            }
            "aws-profile" => snapshots.aws_profile = reader.string(e),
            "aws-region" => snapshots.aws_region = reader.string(e),
            "aws-endpoint-url" => snapshots.aws_endpoint_url = reader.string(e),
            "aws-allow-http" => snapshots.aws_allow_http = reader.boolean(e),
            "aws-access-key-id" => snapshots.aws_access_key_id = reader.secret(e),
            "aws-secret-access-key" => snapshots.aws_secret_access_key = reader.secret(e),
            "aws-session-token" => snapshots.aws_session_token = reader.secret(e),
            "credentials" => match reader.string(e).as_deref() {
                None => {}
                Some("restate-toml") => snapshots.credentials = CredentialsIn::RestateToml,
                Some("environment-file") => snapshots.credentials = CredentialsIn::EnvironmentFile,
                Some(other) => reader.report.error(
                    e.node.span.clone(),
                    format!("`credentials` is \"restate-toml\" or \"environment-file\", not {other:?}"),
                    Some(
                        "\"environment-file\" keeps the S3 credentials out of restate.toml (hosts with \
                         the systemd manager only)"
                            .into(),
                    ),
                ),
            },
            _ => {}
        }
    }
    if tree::get(table, "destination").is_none() {
        reader.report.error(
            entry.key_span.clone(),
            "[cluster.snapshots] has no `destination`",
            Some("add destination = \"s3://BUCKET/PREFIX\"".into()),
        );
    }
    snapshots.destination = destination?;
    Some(snapshots)
}

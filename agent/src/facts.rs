//! The `facts` operation: what the node is, runs and says. Changes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use restate_fleet_proto::agent::{
    AgentError, ConfigFacts, ConfigValues, DEFAULT_WORKING_DIR, DataDirFacts, Facts, NodeTarget,
    ParseErrorInfo, ServerBinary, ServiceManager,
};
use restate_fleet_version::Version;
use toml_edit::{DocumentMut, Item};

use crate::digest::{HOST_VERSION_CACHE, HashCache};
use crate::setup::System;
use crate::{files, health, host, patch, service};

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
const SERVER_BINARY: &str = "restate-server";
/// restate-server's default `base-dir`, relative to its working directory.
const DEFAULT_BASE_DIR: &str = "restate-data";
/// Written by restate-server into `<base-dir>/<node-name>/` on first start (measured on 1.7.12):
/// `{"cluster_name": ..., "cluster_fingerprint": ..., "current_version": ..., ...}`.
const CLUSTER_MARKER: &str = ".cluster-marker";

pub fn gather(node: &NodeTarget, restate_server: Option<&Path>) -> Result<Facts, AgentError> {
    let uname = host::uname();
    let hostname = uname.as_ref().map(|u| u.nodename.clone());
    let config = config_facts(&node.config_path)?;
    let values = &config.values;

    let data_dir = node_dir(values, node, hostname.as_deref()).map(|dir| {
        if dir.is_dir() {
            return data_dir_facts(&dir);
        }
        // Not where the request says the server starts: look where it may start instead.
        match find_data_dir(node, &System::host()) {
            Ok(Some(found)) => data_dir_facts(&found),
            _ => data_dir_facts(&dir),
        }
    });

    let address = values
        .advertised_address
        .clone()
        .or_else(|| node.advertised_address.clone());
    // The three slow parts (running `restate-server --version`, the service's status command and
    // the node's /health) wait on other processes: ask all three at once.
    let (restate_server, service, (health, health_error)) = std::thread::scope(|scope| {
        let binary = scope.spawn(|| {
            restate_server
                .map(Path::to_path_buf)
                .or_else(|| find_on_path(SERVER_BINARY))
                .map(|path| server_binary(&path))
        });
        let service = scope.spawn(|| {
            node.service
                .as_ref()
                .map(|m| service::state(m, Duration::from_millis(node.service_timeout_ms)))
        });
        let health = match address {
            Some(address) => match health::probe(&health::Target {
                address,
                sockets: fabric_sockets(values, node),
            }) {
                Ok(h) => (Some(h), None),
                Err(e) => (None, Some(e)),
            },
            None => (
                None,
                Some("no advertised-address in the config or the request".to_string()),
            ),
        };
        (
            binary
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            service
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            health,
        )
    });
    Ok(Facts {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        os: std::env::consts::OS.to_string(),
        arch: uname.map_or_else(|| std::env::consts::ARCH.to_string(), |u| u.machine),
        hostname,
        restate_server,
        config,
        data_dir,
        service,
        health,
        health_error,
    })
}

fn config_facts(path: &Path) -> Result<ConfigFacts, AgentError> {
    let mut facts = ConfigFacts {
        path: path.to_path_buf(),
        exists: false,
        parse_error: None,
        values: ConfigValues::default(),
        keys: Vec::new(),
    };
    let text = match files::read_config(path) {
        Ok(Some((text, _))) => text,
        Ok(None) => return Ok(facts),
        // Not UTF-8: report it like a syntax error, it is the same problem for the operator.
        Err(e) if e.kind == restate_fleet_proto::agent::ErrorKind::ConfigParse => {
            facts.exists = true;
            facts.parse_error = Some(parse_error_info(&e));
            return Ok(facts);
        }
        Err(e) => return Err(e),
    };
    facts.exists = true;
    match patch::parse(&text, path) {
        Ok(doc) => {
            facts.values = config_values(&doc);
            facts.keys = leaf_keys(doc.as_table());
        }
        Err(e) => facts.parse_error = Some(parse_error_info(&e)),
    }
    Ok(facts)
}

/// The dotted names of every value in `table` (arrays of tables count as one key).
fn leaf_keys(table: &toml_edit::Table) -> Vec<String> {
    fn walk(prefix: &str, table: &dyn toml_edit::TableLike, out: &mut Vec<String>) {
        for (key, item) in table.iter() {
            let name = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            match item.as_table_like() {
                Some(child) if !item.is_array_of_tables() => walk(&name, child, out),
                _ => out.push(name),
            }
        }
    }
    let mut out = Vec::new();
    walk("", table, &mut out);
    out
}

fn parse_error_info(e: &AgentError) -> ParseErrorInfo {
    ParseErrorInfo {
        line: e.line.map_or(1, |l| l as usize),
        column: e.column.map_or(1, |c| c as usize),
        message: e.message.clone(),
    }
}

fn lookup<'a>(doc: &'a DocumentMut, path: &[&str]) -> Option<&'a Item> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(doc.get(first)?, |item, key| item.get(key))
}

fn text_at(doc: &DocumentMut, path: &[&str]) -> Option<String> {
    lookup(doc, path)?.as_str().map(str::to_string)
}

fn strings_at(doc: &DocumentMut, path: &[&str]) -> Option<Vec<String>> {
    let array = lookup(doc, path)?.as_array()?;
    Some(
        array
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    )
}

pub fn config_values(doc: &DocumentMut) -> ConfigValues {
    ConfigValues {
        cluster_name: text_at(doc, &["cluster-name"]),
        node_name: text_at(doc, &["node-name"]),
        roles: strings_at(doc, &["roles"]),
        auto_provision: lookup(doc, &["auto-provision"]).and_then(Item::as_bool),
        metadata_client_addresses: strings_at(doc, &["metadata-client", "addresses"]),
        bifrost_default_provider: text_at(doc, &["bifrost", "default-provider"]),
        snapshots_destination: text_at(doc, &["worker", "snapshots", "destination"]),
        base_dir: text_at(doc, &["base-dir"]),
        advertised_address: text_at(doc, &["advertised-address"]),
        tls_mode: text_at(doc, &["tls", "mode"]),
    }
}

/// `<base-dir>/<node-name>/`, where the node keeps its data; Restate's default node-name is the
/// hostname.
fn node_dir(values: &ConfigValues, node: &NodeTarget, hostname: Option<&str>) -> Option<PathBuf> {
    let name = values.node_name.as_deref().or(hostname)?;
    Some(base_dir(values, node).join(name))
}

/// The fabric's unix socket of the node `values` configure, where it answers `/health` in plain
/// HTTP whatever its TLS mode.
pub fn fabric_sockets(values: &ConfigValues, node: &NodeTarget) -> Vec<PathBuf> {
    let hostname = host::uname().map(|u| u.nodename);
    working_dirs(node, &System::host())
        .into_iter()
        .filter_map(|dir| {
            let mut at = node.clone();
            at.working_dir = Some(dir);
            node_dir(values, &at, hostname.as_deref())
        })
        .map(|d| d.join(health::FABRIC_SOCKET))
        .collect()
}

/// The data directory of the node whose config `node` names.
pub fn data_dir(node: &NodeTarget) -> Result<Option<PathBuf>, AgentError> {
    let config = config_facts(&node.config_path)?;
    let hostname = host::uname().map(|u| u.nodename);
    Ok(node_dir(&config.values, node, hostname.as_deref()))
}

/// The node's data directory where it exists: a relative `base-dir` starts at the server's
/// working directory, which the request may name, a systemd unit says, or is
/// `/var/lib/restate` (the unit restate-fleet writes) or `/`. A stopped server cannot say which.
pub fn find_data_dir(node: &NodeTarget, system: &System) -> Result<Option<PathBuf>, AgentError> {
    for dir in working_dirs(node, system) {
        let mut at = node.clone();
        at.working_dir = Some(dir);
        if let Some(found) = data_dir(&at)?.filter(|d| d.is_dir()) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Where the server may start: the request's working directory, the unit's, restate-fleet's
/// unit's, `/`.
fn working_dirs(node: &NodeTarget, system: &System) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = node.working_dir.iter().cloned().collect();
    if let Some(ServiceManager::Systemd { unit }) = &node.service
        && let Some(dir) = system.unit_working_dir(unit)
    {
        dirs.push(dir);
    }
    dirs.extend([PathBuf::from(DEFAULT_WORKING_DIR), PathBuf::from("/")]);
    dirs.dedup();
    dirs
}

/// `base-dir` as the server sees it: relative paths start at its working directory.
fn base_dir(values: &ConfigValues, node: &NodeTarget) -> PathBuf {
    let base = PathBuf::from(values.base_dir.as_deref().unwrap_or(DEFAULT_BASE_DIR));
    if base.is_absolute() {
        base
    } else {
        node.working_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(base)
    }
}

fn data_dir_facts(dir: &Path) -> DataDirFacts {
    let mut facts = DataDirFacts {
        path: dir.to_path_buf(),
        exists: dir.is_dir(),
        cluster_name: None,
        cluster_fingerprint: None,
        server_version: None,
        marker_error: None,
    };
    if !facts.exists {
        return facts;
    }
    let marker = dir.join(CLUSTER_MARKER);
    let parsed = fs::read(&marker)
        .map_err(|e| format!("cannot read {}: {e}", marker.display()))
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| format!("{} is not JSON: {e}", marker.display()))
        });
    match parsed {
        Ok(json) => {
            facts.cluster_name = json
                .get("cluster_name")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            facts.cluster_fingerprint = json.get("cluster_fingerprint").and_then(|v| v.as_u64());
            facts.server_version = json
                .get("current_version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        Err(e) => facts.marker_error = Some(e),
    }
    facts
}

/// Folders searched after `PATH`: sudo's `secure_path` often leaves out `/usr/local/bin`, where
/// binaries installed by hand (and by `install-path`'s default) live.
const USUAL_BIN_DIRS: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/opt/restate/bin"];

/// The restate-server the agent finds (its PATH, then the usual directories).
pub fn server_on_path() -> Option<PathBuf> {
    find_on_path(SERVER_BINARY)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(USUAL_BIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn server_binary(path: &Path) -> ServerBinary {
    let cache = HashCache::at(HOST_VERSION_CACHE);
    let (version_output, version) = match cache.lookup(path) {
        Some(output) => {
            let version = parse_version(&output);
            (output, version)
        }
        None => {
            let (output, version) = version_of(path);
            // Only an answer is worth remembering; a failure is asked again next time.
            if version.is_some() {
                cache.remember_current(path, &output);
            }
            (output, version)
        }
    };
    ServerBinary {
        path: path.to_path_buf(),
        version_output,
        version,
    }
}

/// The first line of `path --version` (or why it could not run) and the version parsed from it.
pub fn version_of(path: &Path) -> (String, Option<String>) {
    let argv = vec![path.display().to_string(), "--version".to_string()];
    let output = match service::run(&argv, VERSION_TIMEOUT) {
        Ok(done) => done
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        Err(e) => e.message,
    };
    let version = parse_version(&output);
    (output, version)
}

/// The version in a program's first output line, e.g. `1.7.12` from `restate-server 1.7.12`.
fn parse_version(output: &str) -> Option<String> {
    Version::find_in(output).map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_every_form() {
        let doc: DocumentMut = r#"
cluster-name = "c1"
roles = ["worker", "log-server"]
auto-provision = false
worker.snapshots.destination = "s3://b/p"
[metadata-client]
addresses = ["http://n1:5122/", "http://n2:5122/"]
[bifrost]
default-provider = "local"
"#
        .parse()
        .unwrap();
        let v = config_values(&doc);
        assert_eq!(v.cluster_name.as_deref(), Some("c1"));
        assert_eq!(v.node_name, None);
        assert_eq!(v.roles.unwrap(), vec!["worker", "log-server"]);
        assert_eq!(v.auto_provision, Some(false));
        assert_eq!(v.snapshots_destination.as_deref(), Some("s3://b/p"));
        assert_eq!(v.metadata_client_addresses.unwrap().len(), 2);
        assert_eq!(v.bifrost_default_provider.as_deref(), Some("local"));
    }

    #[test]
    fn relative_base_dir_starts_at_the_working_dir() {
        let mut node = NodeTarget::new("/etc/restate/restate.toml");
        let values = ConfigValues {
            base_dir: Some("./data".into()),
            ..ConfigValues::default()
        };
        assert_eq!(base_dir(&values, &node), PathBuf::from("/./data"));
        node.working_dir = Some("/var/lib/restate".into());
        assert_eq!(
            base_dir(&values, &node),
            PathBuf::from("/var/lib/restate/./data")
        );
        assert_eq!(
            base_dir(&ConfigValues::default(), &node),
            PathBuf::from("/var/lib/restate/restate-data")
        );
    }

    #[test]
    fn marker_is_read() {
        let dir = std::env::temp_dir().join(format!("rfa-marker-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(CLUSTER_MARKER),
            r#"{"cluster_name":"probe","cluster_fingerprint":6838024026436311643,"max_version":"1.7.12","current_version":"1.7.12","is_provisioned":true}"#,
        )
        .unwrap();
        let facts = data_dir_facts(&dir);
        assert_eq!(facts.cluster_name.as_deref(), Some("probe"));
        assert_eq!(facts.cluster_fingerprint, Some(6838024026436311643));
        assert_eq!(facts.server_version.as_deref(), Some("1.7.12"));
        fs::remove_dir_all(&dir).unwrap();
        assert!(!data_dir_facts(&dir).exists);
    }
}

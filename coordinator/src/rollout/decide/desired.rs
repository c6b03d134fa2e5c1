//! What each host's restate.toml must say: the keys the tool manages (from the inventory's cluster
//! and host settings) followed by the host's own `config` keys, as agent patch operations.

use std::path::Path;

use restate_fleet_inventory::{
    self as inventory, CredentialsIn, Fleet, Host, Secret, TlsCa, TlsMode,
};
use restate_fleet_proto::agent::{
    ConfigValue, Environment, PatchOp, TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE,
};

use crate::admin::https_address;
use crate::ca_dir::host_tls_dir;

/// Which part of the managed keys to write. Existing members first get everything but the new
/// metadata server list (the guide gives them the full list only after the new nodes joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything the inventory says, metadata-client addresses included.
    Full,
    /// Everything except `[metadata-client] addresses`.
    KeepMetadataList,
}

/// The metadata server list as a preview's `changed_keys` names it.
pub const METADATA_ADDRESSES: &str = "metadata-client.addresses";

/// The fabric addresses of the metadata servers, in inventory order, as nodes at fabric TLS mode
/// `tls` dial them (`https://` from `prefer` on).
pub fn metadata_addresses(fleet: &Fleet, tls: Option<TlsMode>) -> Vec<String> {
    fleet
        .cluster
        .metadata_servers
        .iter()
        .filter_map(|name| fleet.hosts.iter().find(|h| &h.name == name))
        .map(|h| advertised(h, tls))
        .collect()
}

/// `host`'s fabric address at TLS mode `tls`: Restate uses an explicit `advertised-address`
/// verbatim, so the scheme is the tool's to write (docs/fabric-tls.md).
pub fn advertised(host: &Host, tls: Option<TlsMode>) -> String {
    match tls {
        Some(mode) if mode.advertises_https() => https_address(&host.advertised_address),
        _ => host.advertised_address.clone(),
    }
}

/// Every node's `allowed-subject-names`: under a managed CA the names it gives the cluster's
/// nodes and the tool itself (`act/tls.rs`), else the inventory's.
pub fn subject_patterns(fleet: &Fleet) -> Vec<String> {
    match fleet.cluster.tls.as_ref().map(|t| &t.ca) {
        Some(TlsCa::Own {
            allowed_subject_names,
            ..
        }) => allowed_subject_names.clone(),
        _ => vec![format!("restate-fleet/{}/*", fleet.cluster.name)],
    }
}

/// The `[tls]` table at `mode`: the certificates beside the config (or where the host keeps its
/// own), mutual TLS limited to the cluster's own names.
fn tls_table(fleet: &Fleet, host: &Host, mode: TlsMode) -> ConfigValue {
    let dir = host_tls_dir(&host.config_path);
    let pushed = |name: &str| dir.join(name).display().to_string();
    // The operator's own files where they are, else those the tool puts beside the config.
    let on_hosts = fleet.cluster.tls.as_ref().and_then(|t| t.ca.host_files());
    let [cert, key, ca] = match on_hosts {
        Some(files) => files.of(&host.node_name),
        None => [TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE].map(pushed),
    };
    let refresh = fleet
        .cluster
        .tls
        .as_ref()
        .map_or("1h", |t| t.refresh_interval.as_str());
    ConfigValue::Table(std::collections::BTreeMap::from([
        ("mode".into(), ConfigValue::from(mode.as_str())),
        ("cert-file".into(), ConfigValue::from(cert.as_str())),
        ("key-file".into(), ConfigValue::from(key.as_str())),
        (
            "ca-files".into(),
            ConfigValue::Array(vec![ConfigValue::from(ca.as_str())]),
        ),
        ("require-client-auth".into(), ConfigValue::Bool(true)),
        (
            "allowed-subject-names".into(),
            ConfigValue::Array(
                subject_patterns(fleet)
                    .iter()
                    .map(|p| ConfigValue::from(p.as_str()))
                    .collect(),
            ),
        ),
        ("refresh-interval".into(), ConfigValue::from(refresh)),
    ]))
}

/// The patch that takes `host`'s file to what the inventory says. `pinned_provider` is the file's
/// current `[bifrost] default-provider`, which is rewritten only when it pins something other than
/// the replicated loglet. `tls`: the fabric TLS mode the file gets (`None`: its `[tls]` is left as
/// it is, and its addresses are `http://`).
pub fn patch(
    fleet: &Fleet,
    host: &Host,
    scope: Scope,
    pinned_provider: Option<&str>,
    tls: Option<TlsMode>,
) -> Vec<PatchOp> {
    let mut ops = vec![
        PatchOp::set(&["cluster-name"], fleet.cluster.name.as_str()),
        PatchOp::set(&["node-name"], host.node_name.as_str()),
        // Never let a node provision a cluster of its own (split brain); harmless once provisioned.
        PatchOp::set(&["auto-provision"], false),
        PatchOp::set(&["advertised-address"], advertised(host, tls).as_str()),
        PatchOp::set(
            &["roles"],
            host.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ),
    ];
    if scope == Scope::Full {
        ops.push(PatchOp::set(
            &["metadata-client", "addresses"],
            metadata_addresses(fleet, tls),
        ));
    }
    if let Some(mode) = tls {
        ops.push(PatchOp::set(&["tls"], tls_table(fleet, host, mode)));
    }
    ops.push(auto_join(host));
    // Restate warns when a registered node's location changes and never clears one: only ever
    // written when the inventory names it.
    if let Some(location) = &host.location {
        ops.push(PatchOp::set(&["location"], location.to_string()));
    }
    if pinned_provider.is_some_and(|p| p != "replicated") {
        ops.push(PatchOp::set(&["bifrost", "default-provider"], "replicated"));
    }
    if let Some(snapshots) = &fleet.cluster.snapshots {
        ops.extend(snapshot_ops(snapshots));
    }
    ops.extend(host.config.iter().map(config_op));
    ops
}

/// A metadata server the list leaves out must not join the metadata cluster by itself: Restate
/// registers a node that first starts with auto-join as `provisioning` and it joins at once; with
/// `auto-join = false` as a `standby` (1.5+). Everyone else has Restate's default, so that a host
/// put back in the list is not held back by an old `false`.
fn auto_join(host: &Host) -> PatchOp {
    const KEY: [&str; 2] = ["metadata-server", "auto-join"];
    if host.has_role(inventory::Role::MetadataServer) && !host.metadata_server {
        PatchOp::set(&KEY, false)
    } else {
        PatchOp::remove(&KEY)
    }
}

fn snapshot_ops(s: &inventory::Snapshots) -> Vec<PatchOp> {
    let key = |k: &'static str| ["worker", "snapshots", k];
    let mut ops = vec![PatchOp::set(&key("destination"), s.destination.as_str())];
    let text = [
        ("snapshot-interval", &s.snapshot_interval),
        ("aws-profile", &s.aws_profile),
        ("aws-region", &s.aws_region),
        ("aws-endpoint-url", &s.aws_endpoint_url),
    ];
    for (name, value) in text {
        if let Some(value) = value {
            ops.push(PatchOp::set(&key(name), value.as_str()));
        }
    }
    if let Some(n) = s.snapshot_interval_num_records {
        ops.push(PatchOp::set(&key("snapshot-interval-num-records"), n));
    }
    if let Some(allow) = s.aws_allow_http {
        ops.push(PatchOp::set(&key("aws-allow-http"), allow));
    }
    for (name, value) in credentials(s) {
        match (s.credentials, value) {
            (CredentialsIn::RestateToml, Some(value)) => {
                ops.push(PatchOp::set(&key(name), value.expose()).secret());
            }
            // They live in the environment file: any copy in the file goes.
            (CredentialsIn::EnvironmentFile, _) => {
                ops.push(PatchOp::remove(&key(name)).secret());
            }
            (CredentialsIn::RestateToml, None) => {}
        }
    }
    ops
}

fn credentials(s: &inventory::Snapshots) -> [(&'static str, Option<&Secret>); 3] {
    [
        ("aws-access-key-id", s.aws_access_key_id.as_ref()),
        ("aws-secret-access-key", s.aws_secret_access_key.as_ref()),
        ("aws-session-token", s.aws_session_token.as_ref()),
    ]
}

/// Where the environment file goes: beside the config.
const ENVIRONMENT_FILE: &str = "restate-fleet.env";

/// The environment file `host` gets when the inventory keeps the snapshot credentials out of
/// restate.toml, as Restate's variables (`[worker.snapshots] aws-secret-access-key` is
/// `RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY`, checked with `restate-server
/// --dump-config` 1.7.12).
pub fn environment(fleet: &Fleet, host: &Host) -> Option<Environment> {
    let snapshots = fleet.cluster.snapshots.as_ref()?;
    let inventory::Service::Systemd { unit } = &host.service else {
        return None;
    };
    if snapshots.credentials != CredentialsIn::EnvironmentFile {
        return None;
    }
    let variables = credentials(snapshots)
        .into_iter()
        .filter_map(|(name, value)| {
            let name = format!(
                "RESTATE_WORKER__SNAPSHOTS__{}",
                name.to_ascii_uppercase().replace('-', "_")
            );
            value.map(|v| (name, v.expose().to_string()))
        })
        .collect();
    let dir = Path::new(&host.config_path)
        .parent()
        .unwrap_or(Path::new("/"));
    Some(Environment {
        path: dir.join(ENVIRONMENT_FILE),
        unit: unit.clone(),
        variables,
    })
}

fn config_op(entry: &inventory::ConfigEntry) -> PatchOp {
    let path: Vec<&str> = entry.path.iter().map(String::as_str).collect();
    let op = PatchOp::set(&path, value(&entry.value));
    if entry.secret { op.secret() } else { op }
}

fn value(v: &inventory::ConfigValue) -> ConfigValue {
    use inventory::ConfigValue as In;
    match v {
        In::String(s) | In::Datetime(s) => ConfigValue::String(s.clone()),
        In::Secret(secret) => ConfigValue::String(secret.expose().to_string()),
        In::Integer(i) => ConfigValue::Integer(*i),
        In::Float(f) => ConfigValue::Float(*f),
        In::Bool(b) => ConfigValue::Bool(*b),
        In::Array(items) => ConfigValue::Array(items.iter().map(value).collect()),
        In::Table(entries) => {
            ConfigValue::Table(entries.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        let text = r#"
[cluster]
name = "prod"
[cluster.snapshots]
destination = "s3://bucket/prod"
aws-region = "eu-west-1"
aws-secret-access-key = { env = "SECRET" }
[defaults.config]
rocksdb-total-memory-size = "512 MiB"
[hosts.n1]
address = "10.0.0.1"
[hosts.n2]
address = "10.0.0.2"
[hosts.n3]
address = "10.0.0.3"
roles = ["worker", "log-server"]
"#;
        let env = |name: &str| (name == "SECRET").then(|| "s3cr3t".to_string());
        match inventory::parse("inventory.toml", text, &env) {
            Ok(loaded) => loaded.fleet,
            Err(err) => panic!("{err}"),
        }
    }

    fn find<'a>(ops: &'a [PatchOp], dotted: &str) -> Option<&'a PatchOp> {
        ops.iter().find(|op| op.path().join(".") == dotted)
    }

    #[test]
    fn new_nodes_get_the_guides_keys() {
        let fleet = fleet();
        let ops = patch(&fleet, &fleet.hosts[2], Scope::Full, None, None);
        let set = |dotted: &str| match find(&ops, dotted) {
            Some(PatchOp::Set { value, .. }) => value.clone(),
            other => panic!("{dotted}: {other:?}"),
        };
        assert_eq!(set("cluster-name"), ConfigValue::from("prod"));
        assert_eq!(set("node-name"), ConfigValue::from("n3"));
        assert_eq!(set("auto-provision"), ConfigValue::Bool(false));
        assert_eq!(
            set("advertised-address"),
            ConfigValue::from("http://10.0.0.3:5122/")
        );
        assert_eq!(
            set("roles"),
            ConfigValue::from(vec!["worker", "log-server"])
        );
        // Only n1 and n2 run a metadata server.
        assert_eq!(
            set("metadata-client.addresses"),
            ConfigValue::from(vec!["http://10.0.0.1:5122/", "http://10.0.0.2:5122/"])
        );
        assert_eq!(
            set("worker.snapshots.destination"),
            ConfigValue::from("s3://bucket/prod")
        );
        assert_eq!(
            set("rocksdb-total-memory-size"),
            ConfigValue::from("512 MiB")
        );
        let secret = find(&ops, "worker.snapshots.aws-secret-access-key").expect("secret key");
        assert!(secret.is_secret());
        assert!(find(&ops, "bifrost.default-provider").is_none());
    }

    #[test]
    fn a_metadata_server_the_list_leaves_out_does_not_join_by_itself() {
        let env = |_: &str| None;
        let text = "[cluster]\nname = \"c\"\nmetadata-servers = [\"n1\"]\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\n[hosts.n3]\naddress = \"c\"\nroles = [\"worker\"]\n";
        let fleet = match inventory::parse("inventory.toml", text, &env) {
            Ok(loaded) => loaded.fleet,
            Err(err) => panic!("{err}"),
        };
        // (host, listed, has the role) -> auto-join set to false, or Restate's default.
        for (index, want_false) in [(0, false), (1, true), (2, false)] {
            for scope in [Scope::Full, Scope::KeepMetadataList] {
                let ops = patch(&fleet, &fleet.hosts[index], scope, None, None);
                let op = find(&ops, "metadata-server.auto-join").expect("auto-join op");
                match op {
                    PatchOp::Set { value, .. } => {
                        assert!(want_false, "n{}", index + 1);
                        assert_eq!(*value, ConfigValue::Bool(false));
                    }
                    PatchOp::Remove { .. } => assert!(!want_false, "n{}", index + 1),
                    PatchOp::Rename { .. } => panic!("auto-join is never renamed"),
                }
            }
        }
    }

    #[test]
    fn a_location_is_written_only_when_the_inventory_names_one() {
        let env = |_: &str| None;
        let text = "[cluster]\nname = \"c\"\n[hosts.n1]\naddress = \"a\"\nlocation = \"eu.a\"\n[hosts.n2]\naddress = \"b\"\n";
        let fleet = match inventory::parse("inventory.toml", text, &env) {
            Ok(loaded) => loaded.fleet,
            Err(err) => panic!("{err}"),
        };
        let ops = patch(&fleet, &fleet.hosts[0], Scope::Full, None, None);
        assert!(matches!(
            find(&ops, "location"),
            Some(PatchOp::Set { value, .. }) if *value == ConfigValue::from("eu.a")
        ));
        // Restate never clears a location: without one, the file's own stays.
        let ops = patch(&fleet, &fleet.hosts[1], Scope::Full, None, None);
        assert!(find(&ops, "location").is_none());
    }

    #[test]
    fn members_keep_their_metadata_list_until_asked() {
        let fleet = fleet();
        let ops = patch(&fleet, &fleet.hosts[0], Scope::KeepMetadataList, None, None);
        assert!(find(&ops, "metadata-client.addresses").is_none());
    }

    #[test]
    fn a_local_loglet_pin_is_rewritten_and_a_replicated_one_left_alone() {
        let fleet = fleet();
        let ops = patch(&fleet, &fleet.hosts[0], Scope::Full, Some("local"), None);
        assert!(matches!(
            find(&ops, "bifrost.default-provider"),
            Some(PatchOp::Set { value, .. }) if *value == ConfigValue::from("replicated")
        ));
        let ops = patch(
            &fleet,
            &fleet.hosts[0],
            Scope::Full,
            Some("replicated"),
            None,
        );
        assert!(find(&ops, "bifrost.default-provider").is_none());
    }
}

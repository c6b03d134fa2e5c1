//! `[cluster.tls]`: mutual TLS on the fabric (port 5122), the state `apply` moves the cluster to
//! one mode at a time (docs/fabric-tls.md).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::reader::Reader;
use crate::tree::{self, Entry};

/// Restate's `[tls] mode` (1.7.3+), in the order a running cluster must pass through them: a node
/// two modes ahead of another cannot talk to it (measured: it is isolated without an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    Allow,
    Prefer,
    Require,
}

impl TlsMode {
    pub const ALL: [TlsMode; 4] = [
        TlsMode::Off,
        TlsMode::Allow,
        TlsMode::Prefer,
        TlsMode::Require,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Allow => "allow",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
        }
    }

    pub fn parse(text: &str) -> Option<TlsMode> {
        TlsMode::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// From `prefer` on, nodes advertise (and are dialled at) `https://` addresses.
    pub fn advertises_https(self) -> bool {
        self >= TlsMode::Prefer
    }

    /// From `allow` on, nodes load their certificates and accept TLS.
    pub fn loads_certificates(self) -> bool {
        self >= TlsMode::Allow
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the certificates come from. Either way `dir` is laid out alike (docs/inventory.md):
/// `ca.pem`, the tool's `restate-fleet.pem`/`.key`, and each node's `nodes/<node>.pem`/`.key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum TlsCa {
    /// restate-fleet keeps the CA in `dir` on this machine (never on the hosts) and issues each
    /// node its certificate.
    Managed { dir: PathBuf },
    /// The operator's CA signed every file in `dir`; restate-fleet issues nothing, checks each
    /// certificate before any change and pushes it.
    Own {
        dir: PathBuf,
        /// Restate's `allowed-subject-names`: globs every node's and the tool's certificate match.
        allowed_subject_names: Vec<String>,
        /// The nodes' files are on the hosts already (put there by the operator's own tooling):
        /// restate-fleet checks them and names them in `[tls]`, and pushes nothing.
        on_hosts: Option<HostFiles>,
    },
}

/// Where each host keeps its certificate, key and CA bundle; `{node}` stands for its node name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFiles {
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
}

impl HostFiles {
    /// The three paths on the host of `node`: certificate, key, CA bundle.
    pub fn of(&self, node: &str) -> [String; 3] {
        [&self.cert_file, &self.key_file, &self.ca_file].map(|p| p.replace("{node}", node))
    }
}

impl TlsCa {
    /// Where the hosts keep files of their own, under your own CA with `on-hosts`.
    pub fn host_files(&self) -> Option<&HostFiles> {
        match self {
            TlsCa::Own { on_hosts, .. } => on_hosts.as_ref(),
            TlsCa::Managed { .. } => None,
        }
    }

    pub fn dir(&self) -> &Path {
        match self {
            TlsCa::Managed { dir } | TlsCa::Own { dir, .. } => dir,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FabricTls {
    /// The mode the cluster ends in.
    pub mode: TlsMode,
    pub ca: TlsCa,
    /// Validity of an issued node certificate; renewed when 30 days or fewer are left.
    pub cert_days: u32,
    /// Restate's `refresh-interval`: how often a node re-reads its certificate files.
    pub refresh_interval: String,
}

pub const DEFAULT_CERT_DAYS: u32 = 365;
/// A renewal at 30 days left must not be due again at once.
const MIN_CERT_DAYS: i64 = 45;
const MAX_CERT_DAYS: i64 = 3650;

const KEYS: [&str; 7] = [
    "mode",
    "ca",
    "ca-dir",
    "cert-days",
    "refresh-interval",
    "allowed-subject-names",
    "on-hosts",
];
const HOST_FILE_KEYS: [&str; 3] = ["cert-file", "key-file", "ca-file"];

pub(crate) fn read(reader: &mut Reader, entry: &Entry, base_dir: &Path) -> Option<FabricTls> {
    let table = reader.table(entry)?;
    reader.check_keys(table, "[cluster.tls]", &KEYS, |_| None);
    let mode = match tree::get(table, "mode") {
        Some(e) => {
            let text = reader.string(e)?;
            match TlsMode::parse(&text) {
                Some(mode) => mode,
                None => {
                    reader.report.error(
                        e.node.span.clone(),
                        format!("`mode` is \"off\", \"allow\", \"prefer\" or \"require\", not {text:?}"),
                        Some("\"require\" (the default) refuses every connection without a certificate of the cluster's CA".into()),
                    );
                    return None;
                }
            }
        }
        None => TlsMode::Require,
    };
    let Some(ca_entry) = tree::get(table, "ca") else {
        reader.report.error(
            entry.key_span.clone(),
            "[cluster.tls] has no `ca`",
            Some("add ca = \"managed\" and ca-dir = \"./fleet-ca\" (or ca = \"own\" with your CA's files in ca-dir)".into()),
        );
        return None;
    };
    let kind = reader.string(ca_entry)?;
    if kind != "managed" && kind != "own" {
        reader.report.error(
            ca_entry.node.span.clone(),
            format!("`ca` is \"managed\" or \"own\", not {kind:?}"),
            Some("with \"managed\", restate-fleet keeps a CA in `ca-dir` and issues every node its certificate; with \"own\", `ca-dir` holds your CA's ca.pem and the certificates it signed (docs/inventory.md)".into()),
        );
        return None;
    }
    let Some(dir_entry) = tree::get(table, "ca-dir") else {
        reader.report.error(
            ca_entry.node.span.clone(),
            format!("`ca = \"{kind}\"` needs `ca-dir`, the directory on this machine that keeps the CA"),
            Some(if kind == "managed" {
                "add ca-dir = \"./fleet-ca\" (relative to the inventory; created with mode 0700 on the first apply; keep it out of version control and back it up)".into()
            } else {
                "add ca-dir = \"./pki\" (relative to the inventory) holding ca.pem, restate-fleet.pem and .key, and nodes/<node-name>.pem and .key".into()
            }),
        );
        return None;
    };
    let dir = base_dir.join(reader.string(dir_entry)?);
    let names = tree::get(table, "allowed-subject-names");
    let on_hosts = tree::get(table, "on-hosts");
    // Keys of the other kind of CA: (key, why not, what to do).
    let foreign: &[(&str, &str, &str)] = if kind == "managed" {
        &[
            (
                "on-hosts",
                "`on-hosts` is for ca = \"own\"; a managed CA issues the nodes' files and pushes them",
                "remove it, or use ca = \"own\" with your CA's ca.pem and restate-fleet pair in ca-dir",
            ),
            (
                "allowed-subject-names",
                "`allowed-subject-names` is for ca = \"own\"; a managed CA names the cluster's nodes itself",
                "remove it: every node then admits exactly the names the managed CA gives (restate-fleet/<cluster>/...)",
            ),
        ]
    } else {
        &[(
            "cert-days",
            "`cert-days` is for ca = \"managed\"; your CA sets how long its certificates last",
            "remove it; `check` warns when a certificate in ca-dir has 30 days or fewer left",
        )]
    };
    for (key, why, fix) in foreign {
        if let Some(e) = tree::get(table, key) {
            reader
                .report
                .error(e.node.span.clone(), *why, Some(fix.to_string()));
            return None;
        }
    }
    let ca = if kind == "managed" {
        TlsCa::Managed { dir }
    } else {
        let allowed_subject_names = subject_names(reader, names, ca_entry)?;
        let on_hosts = match on_hosts {
            Some(e) => Some(host_files(reader, e)?),
            None => None,
        };
        TlsCa::Own {
            dir,
            allowed_subject_names,
            on_hosts,
        }
    };
    let cert_days = match tree::get(table, "cert-days") {
        Some(e) => {
            let days = reader.integer(e)?;
            if !(MIN_CERT_DAYS..=MAX_CERT_DAYS).contains(&days) {
                reader.report.error(
                    e.node.span.clone(),
                    format!("`cert-days` is {days}, outside {MIN_CERT_DAYS}..={MAX_CERT_DAYS}"),
                    Some(format!("leave it out for {DEFAULT_CERT_DAYS} days; certificates are renewed when 30 days are left")),
                );
                return None;
            }
            u32::try_from(days).ok()?
        }
        None => DEFAULT_CERT_DAYS,
    };
    let refresh_interval = match tree::get(table, "refresh-interval") {
        Some(e) => reader.string(e)?,
        None => "1h".to_string(),
    };
    Some(FabricTls {
        mode,
        ca,
        cert_days,
        refresh_interval,
    })
}

/// `on-hosts = { cert-file, key-file, ca-file }`: absolute paths on every host.
fn host_files(reader: &mut Reader, entry: &Entry) -> Option<HostFiles> {
    let table = reader.table(entry)?;
    reader.check_keys(table, "[cluster.tls] on-hosts", &HOST_FILE_KEYS, |_| None);
    let mut paths = Vec::new();
    for key in HOST_FILE_KEYS {
        let Some(e) = tree::get(table, key) else {
            reader.report.error(
                entry.node.span.clone(),
                format!("`on-hosts` has no `{key}`"),
                Some("name all three files on the hosts: on-hosts = { cert-file = \"/etc/pki/restate/{node}.pem\", key-file = \"/etc/pki/restate/{node}.key\", ca-file = \"/etc/pki/restate/ca.pem\" } ({node} is each host's node name)".into()),
            );
            return None;
        };
        let path = reader.string(e)?;
        if !path.starts_with('/') {
            reader.report.error(
                e.node.span.clone(),
                format!("`{key}` is {path:?}, not an absolute path on the hosts"),
                Some(
                    "write the full path on the host, e.g. \"/etc/pki/restate/{node}.pem\"".into(),
                ),
            );
            return None;
        }
        paths.push(path);
    }
    let [cert_file, key_file, ca_file] = <[String; 3]>::try_from(paths).ok()?;
    Some(HostFiles {
        cert_file,
        key_file,
        ca_file,
    })
}

/// With your own CA the inventory says which names the nodes admit: a guess from the
/// certificates would lock out the next node whose name follows another scheme.
fn subject_names(reader: &mut Reader, names: Option<&Entry>, ca: &Entry) -> Option<Vec<String>> {
    let help = "list the names your certificates carry (CN or DNS/URI SAN), `*` matching any run of characters: allowed-subject-names = [\"*.nodes.example.com\", \"restate-fleet.example.com\"]";
    let Some(entry) = names else {
        reader.report.error(
            ca.node.span.clone(),
            "`ca = \"own\"` needs `allowed-subject-names`, the names each node admits on its fabric port",
            Some(help.into()),
        );
        return None;
    };
    let names = reader.string_list(entry)?;
    let empty = names.iter().find(|(n, _)| n.trim().is_empty());
    if names.is_empty() || empty.is_some() {
        let span = empty.map_or(entry.node.span.clone(), |(_, span)| span.clone());
        reader.report.error(
            span,
            "`allowed-subject-names` needs at least one name, none of them empty",
            Some(help.into()),
        );
        return None;
    }
    Some(names.into_iter().map(|(n, _)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_ordered_as_a_cluster_passes_them() {
        assert!(TlsMode::Off < TlsMode::Allow && TlsMode::Prefer < TlsMode::Require);
        for mode in TlsMode::ALL {
            assert_eq!(TlsMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(TlsMode::parse("enabled"), None);
        assert!(!TlsMode::Allow.advertises_https() && TlsMode::Prefer.advertises_https());
        assert!(!TlsMode::Off.loads_certificates() && TlsMode::Allow.loads_certificates());
    }

    fn parse(tls: &str, host_config: &str) -> Result<crate::Fleet, String> {
        let text = format!(
            "[cluster]\nname = \"c\"\n[cluster.tls]\n{tls}\n[hosts.n1]\naddress = \"10.0.0.1\"\n{host_config}"
        );
        crate::parse("/inv/inventory.toml", &text, &|_| None)
            .map(|l| l.fleet)
            .map_err(|d| d.to_string())
    }

    #[test]
    fn a_managed_ca_defaults_to_require_for_a_year() {
        let fleet = parse("ca = \"managed\"\nca-dir = \"ca\"", "").unwrap();
        let tls = fleet.cluster.tls.unwrap();
        assert_eq!(tls.mode, TlsMode::Require);
        assert_eq!(
            tls.ca,
            TlsCa::Managed {
                dir: PathBuf::from("/inv/ca")
            }
        );
        assert_eq!((tls.cert_days, tls.refresh_interval.as_str()), (365, "1h"));
    }

    #[test]
    fn an_own_ca_names_the_subjects_its_nodes_admit() {
        let fleet = parse(
            "ca = \"own\"\nca-dir = \"pki\"\nmode = \"prefer\"\nallowed-subject-names = [\"*.nodes.example\", \"fleet.example\"]",
            "",
        )
        .unwrap();
        let tls = fleet.cluster.tls.unwrap();
        assert_eq!(tls.mode, TlsMode::Prefer);
        assert_eq!(
            tls.ca,
            TlsCa::Own {
                dir: PathBuf::from("/inv/pki"),
                allowed_subject_names: vec!["*.nodes.example".into(), "fleet.example".into()],
                on_hosts: None,
            }
        );
        assert_eq!(tls.ca.dir(), Path::new("/inv/pki"));
        let fleet = parse(
            "ca = \"own\"\nca-dir = \"pki\"\nallowed-subject-names = [\"*\"]\non-hosts = { cert-file = \"/pki/{node}.pem\", key-file = \"/pki/{node}.key\", ca-file = \"/pki/ca.pem\" }",
            "",
        )
        .unwrap();
        let Some(TlsCa::Own {
            on_hosts: Some(files),
            ..
        }) = fleet.cluster.tls.map(|t| t.ca)
        else {
            panic!("no on-hosts files");
        };
        assert_eq!(
            files.of("n2"),
            ["/pki/n2.pem", "/pki/n2.key", "/pki/ca.pem"]
        );
    }

    #[test]
    fn a_managed_ca_refuses_a_cluster_name_that_is_a_glob() {
        let text = "[cluster]\nname = \"c*\"\n[cluster.tls]\nca = \"managed\"\nca-dir = \"ca\"\n[hosts.n1]\naddress = \"10.0.0.1\"\n";
        let err = crate::parse("/inv/inventory.toml", text, &|_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("has a `*`"), "{err}");
    }

    #[test]
    fn bad_tls_settings_say_which_key_and_what_to_write() {
        for (tls, host, says) in [
            ("ca = \"managed\"", "", "needs `ca-dir`"),
            ("ca = \"./ca.pem\"", "", "`ca` is \"managed\""),
            (
                "mode = \"on\"\nca = \"managed\"\nca-dir = \"x\"",
                "",
                "not \"on\"",
            ),
            (
                "ca = \"managed\"\nca-dir = \"x\"\ncert-days = 7",
                "",
                "cert-days",
            ),
            ("mode = \"allow\"", "", "has no `ca`"),
            ("ca = \"own\"", "", "needs `ca-dir`"),
            (
                "ca = \"own\"\nca-dir = \"pki\"",
                "",
                "needs `allowed-subject-names`",
            ),
            (
                "ca = \"own\"\nca-dir = \"pki\"\nallowed-subject-names = []",
                "",
                "at least one name",
            ),
            (
                "ca = \"own\"\nca-dir = \"pki\"\nallowed-subject-names = [\"*.x\"]\ncert-days = 90",
                "",
                "your CA sets how long",
            ),
            (
                "ca = \"managed\"\nca-dir = \"x\"\nallowed-subject-names = [\"*\"]",
                "",
                "is for ca = \"own\"",
            ),
            (
                "ca = \"own\"\nca-dir = \"p\"\nallowed-subject-names = [\"*\"]\non-hosts = { cert-file = \"/a.pem\", key-file = \"/a.key\" }",
                "",
                "`on-hosts` has no `ca-file`",
            ),
            (
                "ca = \"own\"\nca-dir = \"p\"\nallowed-subject-names = [\"*\"]\non-hosts = { cert-file = \"a.pem\", key-file = \"/a.key\", ca-file = \"/ca.pem\" }",
                "",
                "not an absolute path on the hosts",
            ),
            (
                "ca = \"managed\"\nca-dir = \"x\"\non-hosts = { cert-file = \"/a\" }",
                "",
                "`on-hosts` is for ca = \"own\"",
            ),
            ("ca = \"managed\"\nca-dir = \"x\"\nkey = 1", "", "key"),
            (
                "ca = \"managed\"\nca-dir = \"x\"",
                "[hosts.n1.config.tls]\nmode = \"off\"",
                "the `config` of n1 sets `tls` keys",
            ),
        ] {
            let err = parse(tls, host).unwrap_err();
            assert!(err.contains(says), "{tls}: {err}");
        }
    }
}

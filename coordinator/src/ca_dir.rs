//! The directory `[cluster.tls] ca-dir` names on this machine: the managed CA, the tool's own
//! client certificate, and the certificate issued to each node (kept, so that a re-run pushes the
//! same files and changes nothing). Never copied to a host but for each node's own pair and the
//! CA's certificate.

use std::path::{Path, PathBuf};

use restate_fleet_inventory::{Fleet, HostFiles, TlsCa};

use crate::admin::{ClientIdentity, IdentityFiles};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaDir {
    pub dir: PathBuf,
    /// The tool keeps the CA's key here and issues; else the operator's CA signed every file.
    pub managed: bool,
    /// Under your own CA, the nodes' files are on the hosts already: none is kept here.
    pub on_hosts: Option<HostFiles>,
}

impl CaDir {
    /// The inventory's CA directory, when it has one.
    pub fn of(fleet: &Fleet) -> Option<CaDir> {
        let tls = fleet.cluster.tls.as_ref()?;
        Some(CaDir {
            dir: tls.ca.dir().to_path_buf(),
            managed: matches!(tls.ca, TlsCa::Managed { .. }),
            on_hosts: tls.ca.host_files().cloned(),
        })
    }

    /// The CA certificate (bundle) the nodes trust, `None` while a managed CA is not made yet.
    pub fn trusted_pem(&self) -> Result<Option<String>, String> {
        if self.managed {
            return restate_fleet_certs::Authority::load(&self.dir)
                .map(|ca| ca.map(|ca| ca.cert_pem().to_string()))
                .map_err(|e| e.to_string());
        }
        let path = self.ca_cert();
        std::fs::read_to_string(&path).map(Some).map_err(|e| {
            format!(
                "{}: {e}; with ca = \"own\" it holds the certificate(s) of the CA that signed the nodes' certificates (PEM)",
                path.display()
            )
        })
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The tool's client certificate (and restatectl's on this machine).
    pub fn client(&self) -> IdentityFiles {
        IdentityFiles {
            ca: self.ca_cert(),
            cert: self.dir.join("restate-fleet.pem"),
            key: self.dir.join("restate-fleet.key"),
        }
    }

    /// Node `node`'s certificate and key as last issued.
    pub fn node(&self, node: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.join("nodes");
        (
            dir.join(format!("{node}.pem")),
            dir.join(format!("{node}.key")),
        )
    }

    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }

    /// The tool's identity, once the CA and its client certificate exist.
    pub fn identity(&self) -> Result<Option<ClientIdentity>, std::io::Error> {
        ClientIdentity::load(self.client())
    }
}

/// Where a node's files go on its host: beside its restate.toml.
pub fn host_tls_dir(config_path: &str) -> PathBuf {
    Path::new(config_path)
        .parent()
        .unwrap_or(Path::new("/"))
        .join("tls")
}

//! The tool's side of fabric TLS: its client certificate, and the `https://` channel beside the
//! plain one, since a cluster moving between modes takes plain text on some nodes and TLS only on
//! others (docs/fabric-tls.md).

use std::fmt;
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::{AdminError, Timeouts, endpoint};

/// The CA the nodes' certificates chain to, and the tool's own client certificate, all PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// Where the three are on this machine, for restatectl's `RESTATECTL_TLS_*`.
    pub files: IdentityFiles,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Never the key.
impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The three files, when all exist; `Ok(None)` when any is missing (no TLS yet).
    pub fn load(files: IdentityFiles) -> Result<Option<Self>, std::io::Error> {
        let read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )),
        };
        let (Some(ca_pem), Some(cert_pem), Some(key_pem)) =
            (read(&files.ca)?, read(&files.cert)?, read(&files.key)?)
        else {
            return Ok(None);
        };
        Ok(Some(ClientIdentity {
            ca_pem,
            cert_pem,
            key_pem,
            files,
        }))
    }

    fn config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .assume_http2(true)
    }
}

/// `address` (`http://host:5122/`) as an `https://` endpoint presenting `identity`. The server's
/// certificate is checked against the host of the address, which the tool's certificates name.
pub fn tls_endpoint(
    address: &str,
    timeouts: Timeouts,
    identity: &ClientIdentity,
) -> Result<Endpoint, AdminError> {
    let https = https_address(address);
    endpoint(&https, timeouts)?
        .tls_config(identity.config())
        .map_err(|e| AdminError::BadAddress {
            address: https.clone(),
            reason: e.to_string(),
        })
}

/// The same address with the `https` scheme, as nodes advertise themselves from `prefer` on.
pub fn https_address(address: &str) -> String {
    match address.split_once("://") {
        Some((_, rest)) => format!("https://{rest}"),
        None => format!("https://{address}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_https() {
        assert_eq!(
            https_address("http://10.0.0.1:5122/"),
            "https://10.0.0.1:5122/"
        );
        assert_eq!(https_address("https://n1:5122/"), "https://n1:5122/");
        assert_eq!(https_address("n1:5122"), "https://n1:5122");
    }
}

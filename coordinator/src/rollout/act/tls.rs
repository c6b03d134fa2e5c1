//! Fabric TLS (docs/fabric-tls.md): the CA made and each node's certificate issued on this
//! machine, the files put on the hosts, one mode at a time on each member, and at `require` the
//! proof that a stranger is refused.

use std::net::IpAddr;
use std::sync::Arc;

use restate_fleet_certs::{Authority, Request, write_private};
use restate_fleet_inventory::TlsMode;
use restate_fleet_proto::agent::{Operation, TlsFilesReport, TlsMaterial};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::executor::{Executor, Restart};
use crate::ca_dir::{CaDir, host_tls_dir};
use crate::rollout::decide::desired::subject_patterns;
use crate::rollout::decide::plan;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::decide::tls::must_issue;
use crate::rollout::error::StepError;
use crate::rollout::observe::certificates::{Judge, address_host, kept_pair};

/// The CA certificate (bundle) the nodes trust; the authority that issues, when it is managed.
pub(super) struct Trust {
    pub ca_pem: String,
    pub authority: Option<Authority>,
}

/// What names a managed CA's certificates carry, under the cluster's `allowed-subject-names`
/// glob (`decide::desired::subject_patterns`).
fn node_name_of(cluster: &str, node: &str) -> String {
    format!("restate-fleet/{cluster}/node/{node}")
}

fn tool_name_of(cluster: &str) -> String {
    format!("restate-fleet/{cluster}/restate-fleet")
}

impl Executor<'_> {
    fn ca_dir(&self) -> Result<CaDir, StepError> {
        CaDir::of(self.fleet)
            .ok_or_else(|| StepError::cluster("fabric TLS: the inventory has no [cluster.tls]"))
    }

    fn days(&self) -> u32 {
        self.fleet
            .cluster
            .tls
            .as_ref()
            .map_or(restate_fleet_inventory::DEFAULT_CERT_DAYS, |t| t.cert_days)
    }

    /// The CA (a managed one made when missing) and the tool's own certificate (a managed CA
    /// issues it when missing); every host's admin client gets its TLS channel with it. Called
    /// before any host needs a file.
    pub(super) fn tls_authority(&self) -> Result<Trust, StepError> {
        let dir = self.ca_dir()?;
        let ca_error =
            |e: restate_fleet_certs::CertError| StepError::cluster(format!("fabric TLS: {e}"));
        let trust = if dir.managed {
            let authority =
                Authority::load_or_create(&dir.dir, &self.fleet.cluster.name).map_err(ca_error)?;
            let files = dir.client();
            if dir.identity().ok().flatten().is_none() {
                let mut request = Request::client(tool_name_of(&self.fleet.cluster.name));
                request.days = self.days();
                let issued = authority.issue(&request).map_err(ca_error)?;
                write_private(&files.key, issued.key_pem.as_bytes(), 0o600).map_err(ca_error)?;
                write_private(&files.cert, issued.cert_pem.as_bytes(), 0o644).map_err(ca_error)?;
            }
            Trust {
                ca_pem: authority.cert_pem().to_string(),
                authority: Some(authority),
            }
        } else {
            let ca_pem = dir
                .trusted_pem()
                .map_err(|e| StepError::cluster(format!("fabric TLS: {e}")))?
                .unwrap_or_default();
            Trust {
                ca_pem,
                authority: None,
            }
        };
        let identity = dir
            .identity()
            .map_err(|e| StepError::cluster(format!("fabric TLS: {e}")))?
            .ok_or_else(|| StepError::cluster("fabric TLS: the tool's certificate is missing"))?;
        for host in &self.survey.hosts {
            if !host.reached.admin.has_tls() {
                let takes = host.tls.is_some_and(TlsMode::loads_certificates);
                host.reached
                    .attach_tls(&identity, takes)
                    .map_err(|e| StepError::host(host.name(), e.to_string()))?;
            }
        }
        Ok(trust)
    }

    /// Whether the hosts that join start with TLS and its files (`Rollout::joining_with_files`;
    /// files of the operator's own on the hosts are not pushed, `put_tls_files`).
    pub(super) fn new_hosts_need_tls(&self) -> bool {
        self.survey
            .tls
            .as_ref()
            .is_some_and(|t| t.rollout.joining_with_files().is_some())
    }

    /// `host`'s certificate as kept beside the CA; a managed CA issues it (again) when missing,
    /// foreign, not naming its address or ending within 30 days (your own CA's pair was judged
    /// before the run began).
    fn material(&self, trust: &Trust, host: &Surveyed) -> Result<TlsMaterial, StepError> {
        let dir = self.ca_dir()?;
        let node = &host.reached.host.node_name;
        let advertised = &host.reached.host.advertised_address;
        let patterns = subject_patterns(self.fleet);
        let judge = Judge {
            ca_pem: Some(&trust.ca_pem),
            patterns: &patterns,
        };
        let kept = kept_pair(&dir, node, &judge, advertised);
        let authority = match (kept, &trust.authority) {
            (Some((_, material)), None) => return Ok(material),
            (Some((seen, material)), Some(_)) if must_issue(Some(&seen)).is_none() => {
                return Ok(material);
            }
            (_, Some(authority)) => authority,
            (None, None) => {
                let (cert, _) = dir.node(node);
                return Err(StepError::host(
                    host.name(),
                    format!(
                        "fabric TLS: {} and its key are missing; with ca = \"own\" put the pair your CA signed there and re-run",
                        cert.display()
                    ),
                ));
            }
        };
        let fail = |e: restate_fleet_certs::CertError| {
            StepError::host(host.name(), format!("fabric TLS: {e}"))
        };
        let mut request = Request::node(node_name_of(&self.fleet.cluster.name, node));
        request.days = self.days();
        let address = address_host(advertised).ok_or_else(|| {
            StepError::host(
                host.name(),
                format!("advertised address {advertised} has no host"),
            )
        })?;
        match address.parse::<IpAddr>() {
            Ok(ip) => request.ips.push(ip),
            Err(_) => request.dns_names.push(address),
        }
        let issued = authority.issue(&request).map_err(fail)?;
        let (cert_path, key_path) = dir.node(node);
        std::fs::create_dir_all(dir.nodes_dir()).map_err(|e| {
            StepError::host(host.name(), format!("{}: {e}", dir.nodes_dir().display()))
        })?;
        write_private(&key_path, issued.key_pem.as_bytes(), 0o600).map_err(fail)?;
        write_private(&cert_path, issued.cert_pem.as_bytes(), 0o644).map_err(fail)?;
        self.progress
            .host(host.name(), "fabric TLS certificate issued by the CA");
        Ok(TlsMaterial {
            ca_pem: trust.ca_pem.clone(),
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        })
    }

    /// The host's certificate, key and CA file in place; the names of the files that changed.
    pub(super) async fn put_tls_files(
        &self,
        trust: &Trust,
        host: &Surveyed,
    ) -> Result<Vec<String>, StepError> {
        if self.survey.tls.as_ref().is_some_and(|t| t.files_in_place) {
            return Ok(Vec::new());
        }
        let material = self.material(trust, host)?;
        let report: TlsFilesReport = host
            .reached
            .ask(Operation::TlsFiles {
                dir: host_tls_dir(&host.reached.host.config_path),
                service_user: host.reached.host.service_user.clone(),
                files: Some(material),
                dry_run: false,
                in_place: None,
            })
            .await?;
        Ok(report.changed)
    }

    pub(super) async fn tls_files(&mut self, names: &[String]) -> Result<(), StepError> {
        let trust = self.tls_authority()?;
        for name in names {
            let host = self.host(name)?;
            let changed = self.put_tls_files(&trust, host).await?;
            if !changed.is_empty() {
                self.recap.changed(
                    name,
                    &format!("fabric TLS files put in place ({})", changed.join(", ")),
                );
            }
        }
        Ok(())
    }

    /// A member at `mode`: its admin client speaks what the node will take, then the usual
    /// handover, restart and gates.
    pub(super) async fn tls_mode(&mut self, name: &str, mode: TlsMode) -> Result<(), StepError> {
        self.tls_authority()?;
        let host = self.host(name)?;
        host.reached.admin.prefer_tls(mode.loads_certificates());
        let patch = plan::tls_patch(self.fleet, host, mode);
        self.restart_member(host, Restart::Patched(patch), &format!("fabric TLS {mode}"))
            .await
    }

    /// At `require`, each node's fabric port, dialled from its own host: plain HTTP gets no
    /// answer, and a TLS client that trusts the CA but shows no certificate is refused.
    pub(super) async fn tls_refusals(&mut self) -> Result<(), StepError> {
        self.settle().await?;
        let trust = self.tls_authority()?;
        let roots = roots(&trust.ca_pem)?;
        let mut failures = Vec::new();
        for host in self.survey.hosts.iter() {
            let address = &host.reached.host.advertised_address;
            let Some((target, port)) = crate::admin::fabric_target(address) else {
                continue;
            };
            let session = self.session_of(host);
            let plain = match session.open_direct_tcpip(&target, port).await {
                Ok(stream) => exchange(stream).await,
                Err(e) => Err(e.to_string()),
            };
            let bare_tls = match session.open_direct_tcpip(&target, port).await {
                Ok(stream) => tls_health(stream, &target, roots.clone()).await,
                Err(e) => Err(e.to_string()),
            };
            match (plain, bare_tls) {
                (Err(_), Err(_)) => self.progress.host(
                    host.name(),
                    "fabric port refuses plain text and TLS without a certificate",
                ),
                (plain, tls) => failures.push(format!(
                    "{}: {}{}",
                    host.name(),
                    plain.map(|_| "answered plain HTTP ").unwrap_or_default(),
                    tls.map(|_| "answered TLS without a client certificate")
                        .unwrap_or_default()
                )),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StepError::cluster(format!(
                "fabric TLS at require, yet {}; check the hosts' [tls] and re-run",
                failures.join("; ")
            )))
        }
    }
}

fn roots(ca_pem: &str) -> Result<Arc<rustls::RootCertStore>, StepError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| StepError::cluster(format!("fabric TLS: the CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| StepError::cluster(format!("fabric TLS: the CA: {e}")))?;
    }
    Ok(Arc::new(roots))
}

const HEALTH_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: restate\r\nConnection: close\r\n\r\n";

/// What a stranger gets back: `Ok` with the status line when the node answered HTTP.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> Result<String, String> {
    stream
        .write_all(HEALTH_REQUEST)
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let head = String::from_utf8_lossy(&answer);
    match read {
        _ if head.starts_with("HTTP/1.1 200") => Ok(head.lines().next().unwrap_or("").to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        _ => Err(format!("no HTTP answer ({} bytes)", answer.len())),
    }
}

async fn tls_health<S>(
    stream: S,
    server: &str,
    roots: Arc<rustls::RootCertStore>,
) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(server.to_string()).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())?;
    exchange(stream).await
}

//! Fabric TLS certificates as they are, changing nothing: the CA and each node's pair kept in
//! `[cluster.tls] ca-dir` on this machine, and each host's own certificate (the agent's dry run of
//! `tls_files`, which also says which of its files a push would change).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use restate_fleet_certs::{inspect, key_matches, signed_by};
use restate_fleet_proto::agent::{KeyAccess, Operation, TlsFilesReport, TlsMaterial, TlsPaths};

use crate::ca_dir::{CaDir, host_tls_dir};
use crate::reach::{ReachError, Reached};

/// A certificate as the run finds it, judged against the CA, the node's address and the names
/// the nodes admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub signed_by_ca: bool,
    pub covers_address: bool,
    /// Its CN or a DNS/URI SAN matches `allowed-subject-names`: the other nodes let it in.
    pub admitted: bool,
    /// Its extended key usage lets it serve (a node) and connect (a node and the tool).
    pub server_auth: bool,
    pub client_auth: bool,
    pub days_left: i64,
}

/// One host's certificates.
#[derive(Debug, Clone)]
pub struct HostCerts {
    pub host: String,
    /// Its node name, which names its pair in `ca-dir` (`nodes/<node>.pem`).
    pub node: String,
    /// The pair kept beside the CA for this node, when there is one whose key matches.
    pub kept: Option<(Seen, TlsMaterial)>,
    /// The host's own certificate, when it has one.
    pub on_host: Option<Seen>,
    /// Under your own CA with the files on the hosts: what the host has.
    pub in_place: Option<InPlace>,
    /// The host's files a push of the kept pair would change (all, when none is kept).
    pub push_changes: bool,
}

#[derive(Debug, Clone)]
pub struct Looked {
    /// The CA, when `ca-dir` has one (a `plan` never makes it).
    pub ca_exists: bool,
    /// The tool's own client pair in `ca-dir`, when there is one whose key matches (judged
    /// against no address: it serves nothing).
    pub tool: Option<Seen>,
    pub hosts: Vec<HostCerts>,
}

/// A host's own files, judged where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlace {
    /// Certificate, key and CA bundle paths on the host.
    pub paths: [String; 3],
    pub cert_found: bool,
    pub key: Option<KeyAccess>,
    pub ca_found: bool,
    /// The other nodes (by host) and `the tool` whose certificate its CA bundle does not verify:
    /// it would refuse them.
    pub untrusted: Vec<String>,
}

/// What a certificate must match to be let in: Restate's `allowed-subject-names` on every node.
pub struct Judge<'a> {
    pub ca_pem: Option<&'a str>,
    pub patterns: &'a [String],
}

/// The host of an advertised address (`http://10.0.0.1:5122/` -> `10.0.0.1`).
pub fn address_host(advertised: &str) -> Option<String> {
    crate::admin::fabric_target(advertised).map(|(host, _)| host)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `cert_pem` judged against the CA, the names and the address it must name; `None` when it
/// does not parse.
pub fn seen(cert_pem: &str, judge: &Judge, advertised: &str) -> Option<Seen> {
    let info = inspect(cert_pem).ok()?;
    let signed = judge
        .ca_pem
        .is_some_and(|ca| signed_by(cert_pem, ca).unwrap_or(false));
    Some(Seen {
        signed_by_ca: signed,
        covers_address: address_host(advertised).is_some_and(|h| info.covers(&h)),
        admitted: info.admitted_by(judge.patterns),
        server_auth: info.server_auth,
        client_auth: info.client_auth,
        days_left: (info.not_after_unix - now_unix()).div_euclid(86_400),
    })
}

/// Every host's certificates; `Err` for a CA directory that cannot be used as it is.
pub async fn look(
    dir: &CaDir,
    patterns: &[String],
    hosts: &[&Reached],
) -> Result<Result<Looked, String>, ReachError> {
    let ca_pem = match dir.trusted_pem() {
        Ok(ca) => ca,
        Err(e) => return Ok(Err(e)),
    };
    let judge = Judge {
        ca_pem: ca_pem.as_deref(),
        patterns,
    };
    let asks = hosts.iter().map(|reached| {
        let host = &reached.host;
        let in_place = dir.on_hosts.as_ref().map(|files| {
            let [cert_file, key_file, ca_file] = files.of(&host.node_name).map(Into::into);
            TlsPaths {
                cert_file,
                key_file,
                ca_file,
            }
        });
        let kept = match in_place {
            Some(_) => None,
            None => kept_pair(dir, &host.node_name, &judge, &host.advertised_address),
        };
        let op = Operation::TlsFiles {
            dir: host_tls_dir(&host.config_path),
            service_user: host.service_user.clone(),
            files: kept.as_ref().map(|(_, m)| m.clone()),
            dry_run: true,
            in_place,
        };
        async move {
            let report: TlsFilesReport = reached.ask(op).await?;
            Ok::<_, ReachError>((kept, report))
        }
    });
    let answers = join_all(asks).await;
    let client = dir.client();
    let tool = pair(&client.cert, &client.key, &judge, "");
    let mut looked = Looked {
        ca_exists: ca_pem.is_some(),
        tool: tool.as_ref().map(|(seen, _, _)| seen.clone()),
        hosts: Vec::new(),
    };
    let mut reports = Vec::new();
    for (reached, answer) in hosts.iter().zip(answers) {
        let (kept, report) = answer?;
        let on_host = report
            .cert_pem
            .as_deref()
            .and_then(|pem| seen(pem, &judge, &reached.host.advertised_address));
        looked.hosts.push(HostCerts {
            host: reached.host.name.clone(),
            node: reached.host.node_name.clone(),
            push_changes: dir.on_hosts.is_none() && (kept.is_none() || !report.changed.is_empty()),
            kept,
            on_host,
            in_place: None,
        });
        reports.push(report);
    }
    if let Some(files) = &dir.on_hosts {
        let tool_pem = tool.as_ref().map(|(_, pem, _)| pem.as_str());
        judge_in_place(files, &mut looked.hosts, &reports, tool_pem);
    }
    Ok(Ok(looked))
}

/// Each host's own files, and whether its bundle verifies every peer it will meet: the other
/// nodes and the tool.
fn judge_in_place(
    files: &restate_fleet_inventory::HostFiles,
    hosts: &mut [HostCerts],
    reports: &[TlsFilesReport],
    tool_pem: Option<&str>,
) {
    let peers: Vec<(String, Option<String>)> = hosts
        .iter()
        .zip(reports)
        .map(|(h, r)| (h.host.clone(), r.cert_pem.clone()))
        .chain([("the tool".to_string(), tool_pem.map(str::to_string))])
        .collect();
    for (certs, report) in hosts.iter_mut().zip(reports) {
        let trusts = |pem: &str| {
            report
                .ca_pem
                .as_deref()
                .is_some_and(|ca| signed_by(pem, ca).unwrap_or(false))
        };
        let untrusted = peers
            .iter()
            .filter(|(name, pem)| *name != certs.host && pem.as_deref().is_some_and(|p| !trusts(p)))
            .map(|(name, _)| name.clone())
            .collect();
        certs.in_place = Some(InPlace {
            paths: files.of(&certs.node),
            cert_found: report.cert_pem.is_some(),
            key: report.key.clone(),
            ca_found: report.ca_pem.is_some(),
            untrusted,
        });
    }
}

/// The pair kept for `node`, when both files are there and the key belongs to the certificate.
pub fn kept_pair(
    dir: &CaDir,
    node: &str,
    judge: &Judge,
    advertised: &str,
) -> Option<(Seen, TlsMaterial)> {
    let ca_pem = judge.ca_pem?;
    let (cert_path, key_path) = dir.node(node);
    let (seen, cert_pem, key_pem) = pair(&cert_path, &key_path, judge, advertised)?;
    Some((
        seen,
        TlsMaterial {
            ca_pem: ca_pem.to_string(),
            cert_pem,
            key_pem,
        },
    ))
}

fn pair(
    cert_path: &Path,
    key_path: &Path,
    judge: &Judge,
    advertised: &str,
) -> Option<(Seen, String, String)> {
    let cert_pem = std::fs::read_to_string(cert_path).ok()?;
    let key_pem = std::fs::read_to_string(key_path).ok()?;
    if !key_matches(&cert_pem, &key_pem).unwrap_or(false) {
        return None;
    }
    let seen = seen(&cert_pem, judge, advertised)?;
    Some((seen, cert_pem, key_pem))
}

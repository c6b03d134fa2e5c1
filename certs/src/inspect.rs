use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::CertError;

/// What a certificate says, for the checks a rollout makes before trusting what it finds on a
/// node: does it cover the node's advertised address, when does it expire, who signed it, may it
/// serve and connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    pub not_after_unix: i64,
    /// Upper-case hex without separators or leading zero bytes, as `openssl x509 -serial`
    /// prints it, so an operator can match it by eye.
    pub serial_hex: String,
    /// Usable as a TLS client certificate. Also true when the certificate has no extended key
    /// usage at all, because webpki then accepts it for any purpose.
    pub client_auth: bool,
    /// Usable as a TLS server certificate; true without an extended key usage, as above.
    pub server_auth: bool,
}

impl CertInfo {
    /// Whether `host` (a DNS name or an IP literal, IPv6 possibly in brackets as in a URL) is
    /// among the SANs, matched the way a TLS client checks the address it dials: an IP only
    /// against IP SANs, a name against DNS SANs case-insensitively, exactly or through a leading
    /// `*.` wildcard standing for one label. The common name is never consulted, as modern
    /// clients (webpki included) ignore it.
    pub fn covers(&self, host: &str) -> bool {
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return self.ips.contains(&ip);
        }
        if host.is_empty() {
            return false;
        }
        self.dns_names.iter().any(|san| dns_matches(san, host))
    }

    /// Whether a node whose `allowed-subject-names` are `patterns` admits this certificate, as
    /// Restate 1.7 decides it: its CN or a DNS or URI SAN (never an IP SAN) matches a pattern in
    /// which only `*` is special, standing for any run of characters; case matters.
    pub fn admitted_by(&self, patterns: &[String]) -> bool {
        let names = self
            .common_name
            .iter()
            .chain(&self.dns_names)
            .chain(&self.uris);
        names
            .into_iter()
            .any(|name| patterns.iter().any(|p| glob_matches(p, name)))
    }
}

/// `*` matches any run of characters (`/` and `.` included), everything else itself.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn dns_matches(san: &str, host: &str) -> bool {
    if san.eq_ignore_ascii_case(host) {
        return true;
    }
    let Some(suffix) = san.strip_prefix("*.") else {
        return false;
    };
    match host.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
        None => false,
    }
}

/// Reads what the first certificate in `cert_pem` says (a chain file starts with the leaf).
pub fn inspect(cert_pem: &str) -> Result<CertInfo, CertError> {
    const WHAT: &str = "the certificate";
    let der = first_cert_der(cert_pem).map_err(|reason| bad_cert(WHAT, reason))?;
    let x509 = parse(&der, WHAT)?;
    let common_name = x509
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);

    let mut info = CertInfo {
        common_name,
        dns_names: Vec::new(),
        ips: Vec::new(),
        uris: Vec::new(),
        not_after_unix: x509.validity().not_after.timestamp(),
        serial_hex: serial_hex(x509.raw_serial()),
        client_auth: true,
        server_auth: true,
    };
    let sans = x509
        .subject_alternative_name()
        .map_err(|e| bad_cert(WHAT, format!("its subject alternative names: {e}")))?;
    for name in sans.iter().flat_map(|ext| &ext.value.general_names) {
        match name {
            GeneralName::DNSName(dns) => info.dns_names.push(dns.to_string()),
            GeneralName::URI(uri) => info.uris.push(uri.to_string()),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    info.ips.push(IpAddr::V4(Ipv4Addr::from(v4)));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    info.ips.push(IpAddr::V6(Ipv6Addr::from(v6)));
                }
            }
            _ => {}
        }
    }
    let eku = x509
        .extended_key_usage()
        .map_err(|e| bad_cert(WHAT, format!("its extended key usage: {e}")))?;
    if let Some(eku) = eku {
        info.client_auth = eku.value.client_auth;
        info.server_auth = eku.value.server_auth;
    }
    Ok(info)
}

/// Whether `cert_pem`'s signature verifies with the public key of a certificate in `ca_pem` (a
/// bundle: any of its certificates) whose subject equals the issuer (byte for byte, as webpki
/// compares them), so a certificate left on a node by an earlier CA is recognised as foreign and
/// reissued. A signature that does not verify is `Ok(false)`; only unreadable input or an
/// algorithm that cannot be checked is an error.
pub fn signed_by(cert_pem: &str, ca_pem: &str) -> Result<bool, CertError> {
    const WHAT: &str = "the certificate";
    const CA: &str = "the CA certificate";
    let cert_der = first_cert_der(cert_pem).map_err(|reason| bad_cert(WHAT, reason))?;
    let cert = parse(&cert_der, WHAT)?;
    let cas = cert_ders(ca_pem).map_err(|reason| bad_cert(CA, reason))?;
    for ca_der in &cas {
        let ca = parse(ca_der, CA)?;
        if cert.issuer().as_raw() != ca.subject().as_raw() {
            continue;
        }
        match cert.verify_signature(Some(ca.public_key())) {
            Ok(()) => return Ok(true),
            Err(X509Error::SignatureVerificationError) => {}
            Err(e) => return Err(bad_cert(WHAT, format!("cannot check its signature: {e}"))),
        }
    }
    Ok(false)
}

/// Whether a private key PEM belongs to the certificate (same public key), so that a leftover
/// certificate and key that do not belong together are reissued instead of being installed as a
/// pair that no TLS handshake can use.
pub fn key_matches(cert_pem: &str, key_pem: &str) -> Result<bool, CertError> {
    const WHAT: &str = "the certificate";
    let der = first_cert_der(cert_pem).map_err(|reason| bad_cert(WHAT, reason))?;
    let cert = parse(&der, WHAT)?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| CertError::BadKey {
        what: "the private key".to_string(),
        reason: e.to_string(),
    })?;
    Ok(key.subject_public_key_info() == cert.public_key().raw)
}

/// The DER of the first `CERTIFICATE` block, skipping any other blocks and text around them.
pub(crate) fn first_cert_der(pem: &str) -> Result<Vec<u8>, String> {
    cert_ders(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| "no BEGIN CERTIFICATE block".to_string())
}

/// The DER of every `CERTIFICATE` block; at least one.
fn cert_ders(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut ders = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| e.to_string())?;
        if block.label == "CERTIFICATE" {
            ders.push(block.contents);
        }
    }
    if ders.is_empty() {
        return Err("no BEGIN CERTIFICATE block".to_string());
    }
    Ok(ders)
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, CertError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| bad_cert(what, e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad_cert(what, "trailing bytes after the certificate"));
    }
    Ok(cert)
}

fn bad_cert(what: &str, reason: impl Into<String>) -> CertError {
    CertError::BadCert {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let digits = &raw[start..];
    if digits.is_empty() {
        return "00".to_string();
    }
    digits.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02X}");
        hex
    })
}

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};

use crate::CertError;
use crate::files::{create_dir, write_new};
use crate::inspect::first_cert_der;

/// A year of validity: long enough that routine rollouts (which reissue what expires soon) keep
/// ahead of it, short enough that a leaked node key does not stay useful for long.
pub const DEFAULT_DAYS: u32 = 365;

/// No leaf may outlive a freshly made CA: a longer validity would only be a promise the CA
/// cannot keep.
pub const MAX_DAYS: u32 = 3650;

/// Ten years: replacing the CA means reissuing every node's certificate and a rolling restart,
/// so it should happen rarely and on purpose, not because it ran out.
const CA_DAYS: u64 = 3652;

/// Certificates start an hour in the past, so a node whose clock is a little behind the
/// operator's machine does not reject a certificate as not yet valid.
const BACKDATE: Duration = Duration::from_secs(3600);

/// 9999-12-31T23:59:59Z, the last instant X.509 can express.
const LATEST_UNIX: u64 = 253_402_300_799;

const CERT_FILE: &str = "ca.pem";
const KEY_FILE: &str = "ca.key";

/// The cluster's CA: its certificate (handed to every node as the trust root) and its key (which
/// never leaves the operator's machine). Debug shows only the subject, so the key cannot end up
/// in a log or a journal by accident.
pub struct Authority {
    cert_pem: String,
    subject: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What a certificate is for. A node's certificate is both its server certificate (other nodes
/// and clients connect to it) and its client certificate (it connects to other nodes with mutual
/// TLS), so it carries both usages; the tool's own certificate only ever connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Node,
    Client,
}

/// One certificate to issue. Names go where Restate looks: `allowed-subject-names` globs match
/// the common name and the DNS and URI SANs, never IP SANs; a client checks the address it dials
/// against the DNS and IP SANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    pub usage: Usage,
    /// Validity from now, 1 to [`MAX_DAYS`].
    pub days: u32,
}

impl Request {
    /// A node's certificate with no SANs yet and the default validity, so callers only add the
    /// node's names and addresses.
    pub fn node(common_name: impl Into<String>) -> Request {
        Request::new(common_name.into(), Usage::Node)
    }

    /// The tool's own client certificate with the default validity.
    pub fn client(common_name: impl Into<String>) -> Request {
        Request::new(common_name.into(), Usage::Client)
    }

    fn new(common_name: String, usage: Usage) -> Request {
        Request {
            common_name,
            dns_names: Vec::new(),
            ips: Vec::new(),
            uris: Vec::new(),
            usage,
            days: DEFAULT_DAYS,
        }
    }
}

/// A freshly issued certificate and its key, both PEM. Debug leaves the key out so an `Issued`
/// can be logged while deciding what to upload.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Authority {
    /// Loads `dir/ca.pem` and `dir/ca.key`, or, when the directory has neither, makes a new CA
    /// there: the directory (created 0700), the key (0600 from the moment the file exists, via a
    /// temporary file in the same directory) and the certificate. Two runs creating the same CA at
    /// once cannot leave one's key beside the other's certificate: the second fails and says to
    /// run again. Only `apply`-like commands should call this; see [`Authority::load`].
    pub fn load_or_create(dir: &Path, cluster_name: &str) -> Result<Authority, CertError> {
        if let Some(authority) = Authority::load(dir)? {
            return Ok(authority);
        }
        let common_name = format!("restate-fleet CA {cluster_name}");
        if cluster_name.trim().is_empty() {
            return Err(CertError::BadRequest {
                common_name,
                reason: "the cluster name is empty".to_string(),
            });
        }
        let key = new_key()?;
        let now = now_unix()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(&common_name);
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, now, CA_DAYS * 86_400)?;
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| CertError::crypto("sign the CA certificate", e))?;

        create_dir(dir, 0o700)?;
        // The key first: an interrupted run then leaves a key without a certificate, which
        // `load` explains, never a certificate whose key is lost.
        write_new(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644)?;
        Authority::from_pems(dir, cert.pem(), key.serialize_pem())
    }

    /// Loads the CA without ever creating anything, so that `plan` and other read-only commands
    /// leave the operator's machine as they found it: `Ok(None)` when the directory or both files
    /// are absent. Refuses a key that group or others may read (someone may already have copied
    /// it), half a CA, and a key that does not belong to the certificate.
    pub fn load(dir: &Path) -> Result<Option<Authority>, CertError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let cert_pem = read_if_present(&cert_path)?;
        let key_file = open_if_present(&key_path)?;
        let (cert_pem, mut key_file) = match (cert_pem, key_file) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(CertError::KeyMissing {
                    dir: dir.to_path_buf(),
                });
            }
            (None, Some(_)) => {
                return Err(CertError::CertMissing {
                    dir: dir.to_path_buf(),
                });
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        // The mode of the file we opened, not of whatever the path names a moment later.
        let mode = key_file
            .metadata()
            .map_err(|e| CertError::io(&key_path, "read the mode of", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CertError::KeyReadableByOthers {
                path: key_path,
                mode: mode & 0o7777,
            });
        }
        let mut key_pem = String::new();
        key_file
            .read_to_string(&mut key_pem)
            .map_err(|e| CertError::io(&key_path, "read", e))?;
        Authority::from_pems(dir, cert_pem, key_pem).map(Some)
    }

    /// The CA certificate, to install on every node as the trust root (Restate's
    /// `trusted-ca-certs`) and to give the tool's own client.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A new key and a certificate for it signed by this CA. The key is new every time, so a
    /// reissue also rotates the key and an old key never outlives its certificate.
    pub fn issue(&self, request: &Request) -> Result<Issued, CertError> {
        let bad = |reason: String| CertError::BadRequest {
            common_name: request.common_name.clone(),
            reason,
        };
        if request.days == 0 || request.days > MAX_DAYS {
            return Err(CertError::BadDays {
                common_name: request.common_name.clone(),
                days: request.days,
                max: MAX_DAYS,
            });
        }
        if request.common_name.trim().is_empty() {
            return Err(bad("the common name is empty".to_string()));
        }
        let mut sans = Vec::new();
        for name in &request.dns_names {
            sans.push(SanType::DnsName(ia5(name, "DNS name").map_err(bad)?));
        }
        sans.extend(request.ips.iter().copied().map(SanType::IpAddress));
        for uri in &request.uris {
            sans.push(SanType::URI(ia5(uri, "URI").map_err(bad)?));
        }
        if request.usage == Usage::Node && request.dns_names.is_empty() && request.ips.is_empty() {
            return Err(bad(
                "a node certificate needs at least one DNS name or IP address, or no peer can verify it as a server"
                    .to_string(),
            ));
        }

        let key = new_key()?;
        let now = now_unix()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(&request.common_name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match request.usage {
            Usage::Node => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        set_validity(&mut params, now, u64::from(request.days) * 86_400)?;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CertError::crypto("sign the certificate", e))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn from_pems(dir: &Path, cert_pem: String, key_pem: String) -> Result<Authority, CertError> {
        let cert_path = dir.join(CERT_FILE);
        let bad_cert = |reason: String| CertError::BadCert {
            what: cert_path.display().to_string(),
            reason,
        };
        let der = first_cert_der(&cert_pem).map_err(bad_cert)?;
        let (_, x509) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| bad_cert(e.to_string()))?;
        if !x509.is_ca() {
            return Err(CertError::NotCa { path: cert_path });
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::BadKey {
            what: dir.join(KEY_FILE).display().to_string(),
            reason: e.to_string(),
        })?;
        if key.subject_public_key_info() != x509.public_key().raw {
            return Err(CertError::KeyMismatch {
                dir: dir.to_path_buf(),
            });
        }
        let subject = x509.subject().to_string();
        // The issuer takes the subject from the parsed certificate, byte for byte, so that every
        // leaf's issuer field equals the CA's subject as webpki requires.
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)
            .map_err(|e| bad_cert(format!("cannot use it to sign: {e}")))?;
        Ok(Authority {
            cert_pem,
            subject,
            issuer,
        })
    }
}

fn new_key() -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError::crypto("generate a P-256 key", e))
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ia5(value: &str, kind: &str) -> Result<Ia5String, String> {
    if value.is_empty() {
        return Err(format!("an empty {kind}"));
    }
    Ia5String::try_from(value).map_err(|_| {
        format!("{kind} `{value}` is not ASCII (write an internationalised name in its xn-- form)")
    })
}

/// 126 random bits, never a number derived from the key: serials must not repeat even if a key
/// were ever reused, and must not be guessable.
fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| CertError::crypto("draw a random serial number", e))?;
    // Positive, and always 16 bytes long (the top byte is never 0).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn now_unix() -> Result<u64, CertError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CertError::Clock {
            reason: "is before 1970",
        })
}

fn set_validity(params: &mut CertificateParams, now: u64, seconds: u64) -> Result<(), CertError> {
    let not_after = now.saturating_add(seconds);
    if not_after > LATEST_UNIX {
        return Err(CertError::Clock {
            reason: "is so far ahead that the certificate would end after the year 9999",
        });
    }
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATE.as_secs()));
    params.not_after = epoch + Duration::from_secs(not_after);
    Ok(())
}

fn read_if_present(path: &Path) -> Result<Option<String>, CertError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(CertError::io(path, "read", e)),
    }
}

fn open_if_present(path: &Path) -> Result<Option<File>, CertError> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(CertError::io(path, "open", e)),
    }
}

/// Only a missing file or directory counts as absent; anything else (permissions, a file where
/// the directory should be) is an error the operator must see.
fn absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

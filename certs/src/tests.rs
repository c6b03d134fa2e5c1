use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::*;

/// A directory under the system temp dir, unique per test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "restate-fleet-certs-{name}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn node_request() -> Request {
    Request {
        common_name: "n1.fabric.example".to_string(),
        dns_names: vec!["n1.fabric.example".to_string(), "*.n1.example".to_string()],
        ips: vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        ],
        uris: vec!["spiffe://demo/node/n1".to_string()],
        usage: Usage::Node,
        days: 30,
    }
}

fn new_ca(tmp: &TempDir, name: &str) -> Authority {
    Authority::load_or_create(&tmp.path().join("ca"), name).unwrap()
}

#[test]
fn create_then_load_gives_the_same_ca() {
    let tmp = TempDir::new("create-load");
    let dir = tmp.path().join("nested").join("ca");
    let created = Authority::load_or_create(&dir, "demo").unwrap();
    let loaded = Authority::load(&dir).unwrap().unwrap();
    assert_eq!(created.cert_pem(), loaded.cert_pem());
    let again = Authority::load_or_create(&dir, "other-name").unwrap();
    assert_eq!(created.cert_pem(), again.cert_pem());

    let info = inspect(created.cert_pem()).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("restate-fleet CA demo"));
    let ten_years = 3652 * 86_400;
    assert!((info.not_after_unix - now() - ten_years).abs() < 120);
    assert!(signed_by(created.cert_pem(), created.cert_pem()).unwrap());

    let key = fs::read_to_string(dir.join("ca.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key:.40}");
    assert!(key_matches(created.cert_pem(), &key).unwrap());
    let debug = format!("{created:?}");
    assert!(debug.contains("restate-fleet CA demo"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn created_key_is_0600_and_dir_0700() {
    let tmp = TempDir::new("modes");
    let dir = tmp.path().join("ca");
    Authority::load_or_create(&dir, "demo").unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.key", "ca.pem"], "no temporary file is left");
}

#[test]
fn load_of_empty_or_missing_dir_is_none_and_creates_nothing() {
    let tmp = TempDir::new("load-empty");
    assert!(Authority::load(tmp.path()).unwrap().is_none());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    let missing = tmp.path().join("missing");
    assert!(Authority::load(&missing).unwrap().is_none());
    assert!(!missing.exists());
}

#[test]
fn load_refuses_a_key_readable_by_others() {
    let tmp = TempDir::new("open-key");
    let dir = tmp.path().join("ca");
    Authority::load_or_create(&dir, "demo").unwrap();
    let key = dir.join("ca.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Authority::load(&dir).unwrap_err();
    assert!(
        matches!(err, CertError::KeyReadableByOthers { mode: 0o644, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} is readable by others (mode 0644): chmod 600 it",
            key.display()
        )
    );
    assert!(Authority::load_or_create(&dir, "demo").is_err());
}

#[test]
fn load_refuses_half_a_ca() {
    let tmp = TempDir::new("half");
    let dir = tmp.path().join("ca");
    Authority::load_or_create(&dir, "demo").unwrap();
    let key = fs::read(dir.join("ca.key")).unwrap();
    fs::remove_file(dir.join("ca.key")).unwrap();
    let err = Authority::load(&dir).unwrap_err();
    assert!(matches!(err, CertError::KeyMissing { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "ca.pem exists but ca.key does not in {}: restore the key",
            dir.display()
        )),
        "{err}"
    );
    // load_or_create must not paper over it with a new CA either.
    assert!(Authority::load_or_create(&dir, "demo").is_err());

    write_private(&dir.join("ca.key"), &key, 0o600).unwrap();
    fs::remove_file(dir.join("ca.pem")).unwrap();
    let err = Authority::load(&dir).unwrap_err();
    assert!(matches!(err, CertError::CertMissing { .. }), "{err:?}");
}

#[test]
fn load_refuses_a_bad_pem_and_a_foreign_key() {
    let tmp = TempDir::new("bad-pem");
    let dir = tmp.path().join("ca");
    Authority::load_or_create(&dir, "demo").unwrap();
    let other = TempDir::new("bad-pem-other");
    Authority::load_or_create(other.path(), "other").unwrap();
    let good_pem = fs::read(dir.join("ca.pem")).unwrap();

    fs::write(dir.join("ca.pem"), "hello\n").unwrap();
    let err = Authority::load(&dir).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: not a PEM certificate: ",
            dir.join("ca.pem").display()
        )),
        "{err}"
    );

    fs::write(dir.join("ca.pem"), good_pem).unwrap();
    fs::copy(other.path().join("ca.key"), dir.join("ca.key")).unwrap();
    let err = Authority::load(&dir).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch { .. }), "{err:?}");
}

#[test]
fn issued_node_cert_says_what_was_asked() {
    let tmp = TempDir::new("node");
    let ca = new_ca(&tmp, "demo");
    let request = node_request();
    let issued = ca.issue(&request).unwrap();
    assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let debug = format!("{issued:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    let info = inspect(&issued.cert_pem).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("n1.fabric.example"));
    assert_eq!(info.dns_names, request.dns_names);
    assert_eq!(info.ips, request.ips);
    assert_eq!(info.uris, request.uris);
    assert!(info.server_auth && info.client_auth);
    assert!((info.not_after_unix - now() - 30 * 86_400).abs() < 120);
    assert_eq!(info.serial_hex.len(), 32, "{}", info.serial_hex);

    let second = inspect(&ca.issue(&request).unwrap().cert_pem).unwrap();
    assert_ne!(info.serial_hex, second.serial_hex);
}

#[test]
fn signed_by_knows_its_ca() {
    let tmp = TempDir::new("signed-by");
    let ca = new_ca(&tmp, "demo");
    let other_dir = TempDir::new("signed-by-other");
    // Same cluster name, so the same subject: only the signature tells them apart.
    let other = new_ca(&other_dir, "demo");
    let issued = ca.issue(&node_request()).unwrap();
    assert!(signed_by(&issued.cert_pem, ca.cert_pem()).unwrap());
    assert!(!signed_by(&issued.cert_pem, other.cert_pem()).unwrap());
    let third_dir = TempDir::new("signed-by-third");
    let third = new_ca(&third_dir, "elsewhere");
    assert!(!signed_by(&issued.cert_pem, third.cert_pem()).unwrap());
    assert!(!signed_by(ca.cert_pem(), &issued.cert_pem).unwrap());
    // An operator's bundle: the signing CA anywhere in it.
    let bundle = format!("{}{}", third.cert_pem(), ca.cert_pem());
    assert!(signed_by(&issued.cert_pem, &bundle).unwrap());
}

#[test]
fn admitted_by_matches_cn_dns_and_uri_never_ip() {
    let tmp = TempDir::new("admitted-by");
    let ca = new_ca(&tmp, "demo");
    let mut request = node_request();
    request.uris.push("spiffe://prod/node/n1".into());
    let info = inspect(&ca.issue(&request).unwrap().cert_pem).unwrap();
    let admits = |patterns: &[&str]| {
        info.admitted_by(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    };
    let cn = info.common_name.clone().unwrap();
    assert!(admits(&[&cn]));
    assert!(admits(&["*"]));
    assert!(admits(&["*.fabric.example"]), "a DNS SAN");
    assert!(admits(&["spiffe://prod/*"]), "a URI SAN, `*` across `/`");
    assert!(admits(&["nomatch", "n1.*.example"]));
    assert!(!admits(&["10.0.0.1"]), "IP SANs are never matched");
    assert!(!admits(&["*.FABRIC.example"]), "case matters");
    assert!(!admits(&["n1.fabric"]), "the whole name");
    assert!(!admits(&["?1.fabric.example"]), "`?` is literal");
    assert!(!admits(&[]));
}

#[test]
fn key_matches_only_its_own_key() {
    let tmp = TempDir::new("key-matches");
    let ca = new_ca(&tmp, "demo");
    let a = ca.issue(&node_request()).unwrap();
    let b = ca.issue(&node_request()).unwrap();
    assert!(key_matches(&a.cert_pem, &a.key_pem).unwrap());
    assert!(!key_matches(&a.cert_pem, &b.key_pem).unwrap());
    let err = key_matches(&a.cert_pem, "not a key").unwrap_err();
    assert!(matches!(err, CertError::BadKey { .. }), "{err:?}");
    let err = err.in_file(Path::new("/x/node.key"));
    assert!(
        err.to_string().starts_with("/x/node.key: not a PKCS#8"),
        "{err}"
    );
}

#[test]
fn covers_dns_ip_and_bracketed_ipv6() {
    let tmp = TempDir::new("covers");
    let ca = new_ca(&tmp, "demo");
    let info = inspect(&ca.issue(&node_request()).unwrap().cert_pem).unwrap();
    assert!(info.covers("n1.fabric.example"));
    assert!(info.covers("N1.Fabric.Example"));
    assert!(info.covers("10.0.0.1"));
    assert!(info.covers("fd00::1"));
    assert!(info.covers("[fd00::1]"));
    assert!(
        info.covers("a.n1.example"),
        "one label through the wildcard"
    );
    assert!(!info.covers("a.b.n1.example"), "not two labels");
    assert!(!info.covers("n1.example"), "not zero labels");
    assert!(!info.covers("n2.fabric.example"));
    assert!(!info.covers("10.0.0.2"));
    assert!(!info.covers("fabric.example"));
    assert!(!info.covers(""));
}

#[test]
fn client_cert_is_client_only() {
    let tmp = TempDir::new("client");
    let ca = new_ca(&tmp, "demo");
    let issued = ca.issue(&Request::client("restate-fleet")).unwrap();
    let info = inspect(&issued.cert_pem).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("restate-fleet"));
    assert!(info.client_auth);
    assert!(!info.server_auth);
    assert!(info.dns_names.is_empty() && info.ips.is_empty());
    assert!((info.not_after_unix - now() - i64::from(DEFAULT_DAYS) * 86_400).abs() < 120);
}

#[test]
fn bad_requests_are_refused() {
    let tmp = TempDir::new("bad-request");
    let ca = new_ca(&tmp, "demo");
    let mut request = node_request();
    request.days = 0;
    assert!(matches!(
        ca.issue(&request),
        Err(CertError::BadDays { days: 0, .. })
    ));
    request.days = MAX_DAYS + 1;
    assert!(matches!(ca.issue(&request), Err(CertError::BadDays { .. })));
    let mut request = node_request();
    request.dns_names.push("nöde.example".to_string());
    assert!(matches!(
        ca.issue(&request),
        Err(CertError::BadRequest { .. })
    ));
    let bare = Request::node("n1");
    assert!(matches!(ca.issue(&bare), Err(CertError::BadRequest { .. })));
}

#[test]
fn write_private_sets_mode_and_replaces() {
    let tmp = TempDir::new("write-private");
    let path = tmp.path().join("node.key");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&path, b"new", 0o600).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn openssl_verifies_node_and_client_certs() {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("openssl is not on PATH: skipping the check against openssl verify");
        return;
    }
    let tmp = TempDir::new("openssl");
    let ca = new_ca(&tmp, "demo");
    let node = ca.issue(&node_request()).unwrap();
    let client = ca.issue(&Request::client("restate-fleet")).unwrap();
    let ca_path = tmp.path().join("ca").join("ca.pem");
    let node_path = tmp.path().join("node.pem");
    let client_path = tmp.path().join("client.pem");
    fs::write(&node_path, &node.cert_pem).unwrap();
    fs::write(&client_path, &client.cert_pem).unwrap();
    let verify = |purpose: &str, cert: &Path| {
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&ca_path)
            .arg("-purpose")
            .arg(purpose)
            .arg(cert)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && text.contains(": OK"), text)
    };
    for purpose in ["sslserver", "sslclient"] {
        let (ok, text) = verify(purpose, &node_path);
        assert!(ok, "node cert, -purpose {purpose}: {text}");
    }
    let (ok, text) = verify("sslclient", &client_path);
    assert!(ok, "client cert, -purpose sslclient: {text}");
    let (ok, text) = verify("sslserver", &client_path);
    assert!(!ok, "client cert must not pass -purpose sslserver: {text}");

    // The key is what openssl (and rustls) read as PKCS#8 P-256.
    let key_path = tmp.path().join("node.key");
    write_private(&key_path, node.key_pem.as_bytes(), 0o600).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(&key_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("prime256v1"),
        "{text}"
    );

    // And the extensions are what Restate's webpki expects.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&node_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "URI:spiffe://demo/node/n1",
        "IP Address:10.0.0.1",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&ca_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "X509v3 Basic Constraints: critical",
        "CA:TRUE",
        "Certificate Sign, CRL Sign",
    ] {
        assert!(text.contains(needle), "missing {needle} in the CA: {text}");
    }
}

/// A real mutual-TLS handshake in memory with the stack Restate 1.7 uses (rustls, webpki,
/// aws-lc-rs): the server requires a client certificate from the CA, as Restate's fabric does
/// with mutual TLS.
mod handshake {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

    use super::*;

    fn handshake(
        ca_pem: &str,
        server: &Issued,
        client: &Issued,
        server_name: &str,
    ) -> Result<(), String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .unwrap();
        let cert =
            |i: &Issued| vec![CertificateDer::from_pem_slice(i.cert_pem.as_bytes()).unwrap()];
        let key = |i: &Issued| PrivateKeyDer::from_pem_slice(i.key_pem.as_bytes()).unwrap();
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(cert(server), key(server))
            .map_err(|e| format!("server config: {e}"))?;
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(cert(client), key(client))
            .map_err(|e| format!("client config: {e}"))?;
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let mut c = ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut s = ServerConnection::new(Arc::new(server_config)).unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                s.read_tls(&mut buf.as_slice()).unwrap();
                s.process_new_packets()
                    .map_err(|e| format!("server rejects: {e}"))?;
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                c.read_tls(&mut buf.as_slice()).unwrap();
                c.process_new_packets()
                    .map_err(|e| format!("client rejects: {e}"))?;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        Err("the handshake did not finish".to_string())
    }

    #[test]
    fn rustls_accepts_node_and_client_certs_for_mutual_tls() {
        let tmp = TempDir::new("rustls");
        let ca = new_ca(&tmp, "demo");
        let n1 = ca.issue(&node_request()).unwrap();
        let mut n2_request = node_request();
        n2_request.common_name = "n2.fabric.example".to_string();
        n2_request.dns_names = vec!["n2.fabric.example".to_string()];
        n2_request.ips = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))];
        let n2 = ca.issue(&n2_request).unwrap();
        let tool = ca.issue(&Request::client("restate-fleet")).unwrap();

        // Node to node, by name and by IP, and the tool to a node.
        handshake(ca.cert_pem(), &n1, &n2, "n1.fabric.example").unwrap();
        handshake(ca.cert_pem(), &n1, &n2, "10.0.0.1").unwrap();
        handshake(ca.cert_pem(), &n1, &n2, "fd00::1").unwrap();
        handshake(ca.cert_pem(), &n2, &n1, "n2.fabric.example").unwrap();
        handshake(ca.cert_pem(), &n1, &tool, "n1.fabric.example").unwrap();

        // A name the certificate does not carry, a client-only certificate as a server, and a
        // certificate from another CA are refused.
        let err = handshake(ca.cert_pem(), &n1, &n2, "10.0.0.9").unwrap_err();
        assert!(
            err.starts_with("client rejects") && err.contains("not valid for name"),
            "{err}"
        );
        let err = handshake(ca.cert_pem(), &tool, &n1, "n1.fabric.example").unwrap_err();
        assert!(
            err.starts_with("client rejects") && err.contains("extended key usage for server"),
            "{err}"
        );
        let other_dir = TempDir::new("rustls-other");
        let other = new_ca(&other_dir, "demo");
        let stranger = other.issue(&n2_request).unwrap();
        let err = handshake(ca.cert_pem(), &n1, &stranger, "n1.fabric.example").unwrap_err();
        assert!(
            err.starts_with("server rejects") && err.contains("BadSignature"),
            "{err}"
        );
    }
}

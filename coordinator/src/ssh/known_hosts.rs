//! Host key verification against an OpenSSH known_hosts file.
//!
//! russh ships helpers, but they miscount line numbers after comments, split on single spaces
//! only, know no wildcards, negations or `@revoked` markers, and fail the whole file on one bad
//! line. This parser follows sshd(8)'s SSH_KNOWN_HOSTS FILE FORMAT instead.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

use super::error::SshError;
use super::pattern::match_list;

/// Serialises check-then-append across every session of this process, so parallel first
/// contacts never interleave or duplicate lines. Appends also use O_APPEND, which keeps single
/// writes whole against other processes (e.g. a concurrent `ssh`).
static RECORD_LOCK: Mutex<()> = Mutex::new(());

/// A known_hosts file and the policy for keys it does not list.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    accept_new: bool,
}

/// What the file says about one host and the key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    /// A key of the same type is recorded for the host on this (1-based) line, and differs.
    Changed {
        line: usize,
    },
    /// The key is marked `@revoked` on this line.
    Revoked {
        line: usize,
    },
}

impl KnownHosts {
    pub fn new(path: impl Into<PathBuf>, accept_new: bool) -> Self {
        Self {
            path: path.into(),
            accept_new,
        }
    }

    /// `~/.ssh/known_hosts`.
    pub fn default_path() -> Option<PathBuf> {
        std::env::home_dir().map(|home| home.join(".ssh").join("known_hosts"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decides whether to trust `key` for `address:port`, recording it when it is new and the
    /// policy allows. `host` is the inventory name, for the error message.
    pub fn verify(
        &self,
        host: &str,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), SshError> {
        match self.check(address, port, key)? {
            Verdict::Known => Ok(()),
            Verdict::Unknown if self.accept_new => self.record(host, address, port, key),
            verdict => Err(self.refusal(verdict, host, address, port, key)),
        }
    }

    /// Reads the file and classifies `key`; a missing file knows no host.
    pub fn check(&self, address: &str, port: u16, key: &PublicKey) -> Result<Verdict, SshError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(SshError::KnownHostsIo {
                    file: self.path.clone(),
                    source,
                });
            }
        };
        Ok(classify(&text, &host_port(address, port), key))
    }

    fn record(
        &self,
        host: &str,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), SshError> {
        let io_err = |source| SshError::KnownHostsIo {
            file: self.path.clone(),
            source,
        };
        let _guard = RECORD_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another session may have recorded this host while we waited for the lock.
        match self.check(address, port, key)? {
            Verdict::Known => return Ok(()),
            Verdict::Unknown => {}
            verdict => return Err(self.refusal(verdict, host, address, port, key)),
        }
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io_err)?;
        let mut line = String::new();
        if file.seek(SeekFrom::End(-1)).is_ok() {
            let mut last = [0u8; 1];
            file.read_exact(&mut last).map_err(io_err)?;
            if last[0] != b'\n' {
                line.push('\n');
            }
        }
        let encoded = key.to_openssh().map_err(|err| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                err.to_string(),
            ))
        })?;
        line.push_str(&format!("{} {encoded}\n", host_port(address, port)));
        // One write call: with O_APPEND the kernel places it whole at the end.
        file.write_all(line.as_bytes()).map_err(io_err)?;
        tracing::info!(
            "{host}: recorded new host key {} for {} in {}",
            key.fingerprint(HashAlg::Sha256),
            host_port(address, port),
            self.path.display()
        );
        Ok(())
    }

    fn refusal(
        &self,
        verdict: Verdict,
        host: &str,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> SshError {
        let host = host.to_owned();
        let host_port = host_port(address, port);
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let file = self.path.clone();
        match verdict {
            Verdict::Changed { line } => SshError::HostKeyChanged {
                host,
                host_port,
                key: format!("{} key {fingerprint}", key.algorithm()),
                file,
                line,
            },
            Verdict::Revoked { line } => SshError::HostKeyRevoked {
                host,
                host_port,
                fingerprint,
                file,
                line,
            },
            Verdict::Known | Verdict::Unknown => SshError::HostKeyUnknown {
                host,
                host_port,
                fingerprint,
                file,
            },
        }
    }
}

/// The name known_hosts files use: `host`, or `[host]:port` off port 22.
pub fn host_port(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

fn classify(text: &str, host_port: &str, key: &PublicKey) -> Verdict {
    let mut known = false;
    let mut changed = None;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some(entry) = Entry::parse(line) else {
            continue;
        };
        if !entry.matches(host_port) {
            continue;
        }
        let Ok(recorded) = PublicKey::from_openssh(&format!("{} {}", entry.key_type, entry.key))
        else {
            tracing::warn!("known_hosts line {line_no}: unreadable key, line skipped");
            continue;
        };
        let same_key = recorded.key_data() == key.key_data();
        match entry.marker {
            Some(Marker::Revoked) if same_key => return Verdict::Revoked { line: line_no },
            // Host certificates are not supported; a CA line neither vouches nor objects.
            Some(_) => {}
            None if same_key => known = true,
            None if recorded.algorithm() == key.algorithm() => {
                changed.get_or_insert(line_no);
            }
            None => {}
        }
    }
    // Like OpenSSH, a match anywhere wins over a stale line of the same type elsewhere.
    match (known, changed) {
        (true, _) => Verdict::Known,
        (false, Some(line)) => Verdict::Changed { line },
        (false, None) => Verdict::Unknown,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Option<Marker>,
    hosts: &'a str,
    key_type: &'a str,
    key: &'a str,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next()?;
        let marker = match first {
            "@revoked" => Some(Marker::Revoked),
            "@cert-authority" => Some(Marker::CertAuthority),
            _ => None,
        };
        if marker.is_some() {
            first = fields.next()?;
        }
        Some(Self {
            marker,
            hosts: first,
            key_type: fields.next()?,
            key: fields.next()?,
        })
    }

    fn matches(&self, host_port: &str) -> bool {
        if let Some(hashed) = self.hosts.strip_prefix("|1|") {
            return hashed_match(hashed, host_port);
        }
        match_list(self.hosts.split(','), host_port)
    }
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`, as written by `ssh-keygen -H`.
fn hashed_match(salt_and_hash: &str, host_port: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host_port.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICz+hmGBNRi1RgCuAd48JpqUAfDbFmTgyRvs/n4nhttU";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6ai/b4aZ+VAsbWYcc19U+68z+p3Pa0gR0xfgfrS6Wz";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    fn hashed(host_port: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(host_port.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(hash))
    }

    #[test]
    fn plain_port_and_wildcard_entries() {
        let text =
            format!("# comment\n\n10.0.0.1,n1 {ED_A}\n[127.0.0.1]:2222\t{ED_A} c\n*.lab {ED_A}\n");
        assert_eq!(classify(&text, "n1", &key(ED_A)), Verdict::Known);
        assert_eq!(
            classify(&text, "[127.0.0.1]:2222", &key(ED_A)),
            Verdict::Known
        );
        assert_eq!(classify(&text, "127.0.0.1", &key(ED_A)), Verdict::Unknown);
        assert_eq!(classify(&text, "x.lab", &key(ED_A)), Verdict::Known);
        assert_eq!(
            classify(&text, "[127.0.0.1]:2222", &key(ED_B)),
            Verdict::Changed { line: 4 },
            "line numbers count comments and blank lines"
        );
    }

    #[test]
    fn hashed_entries() {
        let text = format!(
            "{} {ED_A}\n{} {ED_A}\n",
            hashed("n1", b"0123456789abcdef0123"),
            hashed("[127.0.0.1]:2222", b"saltsaltsaltsaltsalt")
        );
        assert_eq!(classify(&text, "n1", &key(ED_A)), Verdict::Known);
        assert_eq!(
            classify(&text, "[127.0.0.1]:2222", &key(ED_A)),
            Verdict::Known
        );
        assert_eq!(classify(&text, "n2", &key(ED_A)), Verdict::Unknown);
        assert_eq!(
            classify(&text, "n1", &key(ED_B)),
            Verdict::Changed { line: 1 }
        );
    }

    #[test]
    fn negation_revocation_and_garbage() {
        let text = format!(
            "garbage\nn* {ED_B} broken-key-follows\nn*,!n3 AAAA notbase64\nn*,!n3 {ED_A}\n@revoked n9 {ED_A}\n"
        );
        assert_eq!(classify(&text, "n1", &key(ED_A)), Verdict::Known);
        assert_eq!(
            classify(&text, "n3", &key(ED_A)),
            Verdict::Changed { line: 2 }
        );
        assert_eq!(
            classify(&text, "n9", &key(ED_A)),
            Verdict::Revoked { line: 5 }
        );
    }

    #[test]
    fn record_then_known_and_parallel_records_do_not_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("known_hosts");
        let refusing = KnownHosts::new(&path, false);
        let err = refusing
            .verify("n1", "127.0.0.1", 2222, &key(ED_A))
            .unwrap_err();
        assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{err}");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "other {ED_B}").unwrap();
        let accepting = KnownHosts::new(&path, true);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    accepting
                        .verify("n1", "127.0.0.1", 2222, &key(ED_A))
                        .unwrap()
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("[127.0.0.1]:2222").count(), 1, "{text}");
        assert!(
            text.starts_with("other {ED_B}\n"),
            "newline added before append: {text}"
        );
        refusing
            .verify("n1", "127.0.0.1", 2222, &key(ED_A))
            .unwrap();
        let err = accepting
            .verify("n1", "127.0.0.1", 2222, &key(ED_B))
            .unwrap_err();
        let SshError::HostKeyChanged { line, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(line, 2);
    }
}

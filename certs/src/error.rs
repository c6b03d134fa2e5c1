use std::path::{Path, PathBuf};

/// Every failure names the file (or the certificate or request) it is about and says what the
/// operator can do next, because these errors end up in front of someone rolling out a cluster,
/// not in a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("{path}: cannot {what}: {source}; check the path and that you may read and write it")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is readable by others (mode {mode:04o}): chmod 600 it")]
    KeyReadableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "ca.pem exists but ca.key does not in {dir}: restore the key or move the directory aside to make a new CA (every node's certificate is then reissued)"
    )]
    KeyMissing { dir: PathBuf },
    #[error(
        "ca.key exists but ca.pem does not in {dir}: restore ca.pem, or, if no certificate was ever issued from this directory (an interrupted first run), delete ca.key to make a new CA"
    )]
    CertMissing { dir: PathBuf },
    #[error(
        "{dir}/ca.key does not belong to {dir}/ca.pem: restore the matching pair or move the directory aside to make a new CA (every node's certificate is then reissued)"
    )]
    KeyMismatch { dir: PathBuf },
    #[error(
        "{path} is not a CA certificate (no basicConstraints CA:TRUE): restore the CA's ca.pem or move the directory aside to make a new CA"
    )]
    NotCa { path: PathBuf },
    #[error(
        "{path} appeared while this run was creating a new CA (another restate-fleet running on the same directory?): run again, it then loads the CA the other one made"
    )]
    CreatedConcurrently { path: PathBuf },
    /// `what` is a file name when the PEM came from a file, otherwise a description such as
    /// "the certificate"; [`CertError::in_file`] puts the file in.
    #[error(
        "{what}: not a PEM certificate: {reason}; use the PEM file (BEGIN CERTIFICATE) as written by restate-fleet"
    )]
    BadCert { what: String, reason: String },
    #[error(
        "{what}: not a PKCS#8 PEM private key: {reason}; use the PEM file (BEGIN PRIVATE KEY) as written by restate-fleet"
    )]
    BadKey { what: String, reason: String },
    #[error("certificate request for `{common_name}`: {reason}; fix the name in the inventory")]
    BadRequest { common_name: String, reason: String },
    #[error(
        "certificate for `{common_name}` valid for {days} days: the validity must be 1 to {max} days"
    )]
    BadDays {
        common_name: String,
        days: u32,
        max: u32,
    },
    #[error("cannot {what}: {reason}; this is a bug or a broken crypto library, please report it")]
    Crypto { what: &'static str, reason: String },
    #[error("the system clock {reason}: set the clock before issuing certificates")]
    Clock { reason: &'static str },
}

impl CertError {
    /// Names `path` in an error about a PEM that the caller read from that file, since the
    /// string-taking functions ([`crate::inspect`], [`crate::signed_by`],
    /// [`crate::key_matches`]) cannot know where their input came from.
    pub fn in_file(self, path: &Path) -> CertError {
        let what = path.display().to_string();
        match self {
            CertError::BadCert { reason, .. } => CertError::BadCert { what, reason },
            CertError::BadKey { reason, .. } => CertError::BadKey { what, reason },
            other => other,
        }
    }

    pub(crate) fn io(path: &Path, what: &'static str, source: std::io::Error) -> CertError {
        CertError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }

    pub(crate) fn crypto(what: &'static str, reason: impl std::fmt::Display) -> CertError {
        CertError::Crypto {
            what,
            reason: reason.to_string(),
        }
    }
}

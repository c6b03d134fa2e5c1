//! The certificate authority behind a cluster's fabric TLS (Restate's `[tls]` section with mutual
//! TLS): it lives in a directory on the operator's machine, never on a node, so that a node that
//! is lost or compromised cannot mint certificates for others. Each node gets one certificate
//! that serves as both its server and its client certificate (Restate presents the same one in
//! both directions); the tool gets a client-only certificate for its own gRPC client and for
//! `restatectl`.
//!
//! Everything is made the way Restate 1.7 (rustls with aws-lc-rs and webpki) accepts it: ECDSA
//! P-256 keys in unencrypted PKCS#8 PEM, a CA with critical `basicConstraints CA:TRUE`, leaves
//! with `CA:FALSE`, a critical `digitalSignature` key usage and explicit extended key usages.
//! Restate matches `allowed-subject-names` against the common name and the DNS and URI SANs,
//! never against IP SANs, so a node that should be allowed by name needs that name in its CN or
//! in a DNS/URI SAN.

mod authority;
mod error;
mod files;
mod inspect;

pub use authority::{Authority, DEFAULT_DAYS, Issued, MAX_DAYS, Request, Usage};
pub use error::CertError;
pub use files::write_private;
pub use inspect::{CertInfo, inspect, key_matches, signed_by};

#[cfg(test)]
mod tests;

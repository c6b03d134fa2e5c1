//! The `tls_files` operation: a node's fabric TLS certificate, key and CA beside its config. The
//! key is a secret like the S3 credentials: readable by the service's user alone, never in an
//! answer.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use restate_fleet_proto::agent::{
    AgentError, ErrorKind, KeyAccess, TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TlsFilesReport,
    TlsMaterial, TlsPaths,
};

use crate::files;
use crate::host;
use crate::secrecy::Access;

pub fn tls_files(
    dir: &Path,
    service_user: Option<&str>,
    material: Option<&TlsMaterial>,
    dry_run: bool,
) -> Result<TlsFilesReport, AgentError> {
    if !dir.is_absolute() {
        return Err(AgentError::new(
            ErrorKind::BadRequest,
            "the TLS directory must be an absolute path",
        )
        .with_path(dir));
    }
    let mut report = TlsFilesReport {
        dir: dir.to_path_buf(),
        changed: Vec::new(),
        cert_pem: read_text(&dir.join(TLS_CERT_FILE))?,
        dry_run,
        ca_pem: None,
        key: None,
    };
    let Some(material) = material else {
        return Ok(report);
    };
    let owner = match service_user.map(|user| (user, host::account(user))) {
        Some((_, Some(account))) => account,
        // A new host's user is made by the run before it pushes: every file is still to write.
        Some((_, None)) if dry_run => {
            report.changed = [TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE]
                .map(String::from)
                .to_vec();
            return Ok(report);
        }
        Some((user, None)) => {
            return Err(AgentError::new(
                ErrorKind::BadRequest,
                format!("the service user {user:?} does not exist on this host"),
            )
            .with_hint(
                "create it (restate-fleet apply does for new hosts) or fix `user` in the inventory",
            ));
        }
        None => host::Account { uid: 0, gid: 0 },
    };
    let public = |uid: u32, gid: u32| Access {
        mode: 0o644,
        uid,
        gid,
    };
    let wanted = [
        (TLS_CA_FILE, material.ca_pem.as_bytes(), public(0, 0)),
        (TLS_CERT_FILE, material.cert_pem.as_bytes(), public(0, 0)),
        (
            TLS_KEY_FILE,
            material.key_pem.as_bytes(),
            Access {
                mode: 0o600,
                uid: owner.uid,
                gid: owner.gid,
            },
        ),
    ];
    for (name, bytes, access) in wanted {
        let path = dir.join(name);
        let same = read(&path)?.as_deref() == Some(bytes) && access_of(&path) == Some(access);
        if same {
            continue;
        }
        if !dry_run {
            files::write_atomic_as(&path, bytes, access)?;
        }
        report.changed.push(name.to_string());
    }
    Ok(report)
}

/// The operator's own files where they are: the certificate and CA bundle (public) and how the
/// key may be read, never the key itself. Writes nothing.
pub fn in_place(
    paths: &TlsPaths,
    service_user: Option<&str>,
) -> Result<TlsFilesReport, AgentError> {
    for path in [&paths.cert_file, &paths.key_file, &paths.ca_file] {
        if !path.is_absolute() {
            return Err(AgentError::new(
                ErrorKind::BadRequest,
                "the TLS files must be absolute paths",
            )
            .with_path(path));
        }
    }
    let key = fs::metadata(&paths.key_file).ok().map(|meta| {
        let mode = meta.mode() & 0o7777;
        let reads = |account: host::Account| {
            account.uid == 0
                || (account.uid == meta.uid() && mode & 0o400 != 0)
                || (account.gid == meta.gid() && mode & 0o040 != 0)
                || mode & 0o004 != 0
        };
        KeyAccess {
            mode,
            world_readable: mode & 0o004 != 0,
            service_user_reads: match service_user {
                Some(user) => host::account(user).map(reads),
                None => Some(true),
            },
        }
    });
    Ok(TlsFilesReport {
        dir: paths
            .cert_file
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf(),
        changed: Vec::new(),
        cert_pem: read_text(&paths.cert_file)?,
        dry_run: true,
        ca_pem: read_text(&paths.ca_file)?,
        key,
    })
}

fn read_text(path: &Path) -> Result<Option<String>, AgentError> {
    Ok(read(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, AgentError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(files::io_error("read", path, &e)),
    }
}

fn access_of(path: &Path) -> Option<Access> {
    let meta = fs::symlink_metadata(path).ok()?;
    Some(Access {
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(key: &str) -> TlsMaterial {
        TlsMaterial {
            ca_pem: "CA\n".into(),
            cert_pem: "CERT\n".into(),
            key_pem: key.into(),
        }
    }

    #[test]
    fn writes_the_key_private_and_only_what_differs() {
        let dir = std::env::temp_dir().join(format!("tls-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = tls_files(&dir, None, Some(&material("KEY1\n")), true).unwrap();
        assert_eq!(first.changed.len(), 3);
        assert!(!dir.exists(), "a dry run writes nothing");
        let written = tls_files(&dir, None, Some(&material("KEY1\n")), false).unwrap();
        assert_eq!(written.changed, ["ca.pem", "node.pem", "node.key"]);
        assert_eq!(access_of(&dir.join("node.key")).unwrap().mode, 0o600);
        assert_eq!(access_of(&dir.join("node.pem")).unwrap().mode, 0o644);
        let again = tls_files(&dir, None, Some(&material("KEY1\n")), false).unwrap();
        assert!(again.changed.is_empty());
        assert_eq!(again.cert_pem.as_deref(), Some("CERT\n"));
        // A widened key is put back, and a new key replaces the old one.
        fs::set_permissions(
            dir.join("node.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let narrowed = tls_files(&dir, None, Some(&material("KEY1\n")), false).unwrap();
        assert_eq!(narrowed.changed, ["node.key"]);
        let renewed = tls_files(&dir, None, Some(&material("KEY2\n")), false).unwrap();
        assert_eq!(renewed.changed, ["node.key"]);
        assert_eq!(fs::read_to_string(dir.join("node.key")).unwrap(), "KEY2\n");
        // A user the run has yet to make: a dry run says all three would be written, a push
        // refuses.
        let absent = Some("no-such-user-restate-fleet");
        let planned = tls_files(&dir, absent, Some(&material("KEY3\n")), true).unwrap();
        assert_eq!(planned.changed, ["ca.pem", "node.pem", "node.key"]);
        let refused = tls_files(&dir, absent, Some(&material("KEY3\n")), false).unwrap_err();
        assert!(refused.to_string().contains("does not exist"), "{refused}");
        assert_eq!(fs::read_to_string(dir.join("node.key")).unwrap(), "KEY2\n");
        // Files of the operator's own, read in place: the key's access, never its bytes.
        fs::write(dir.join("own.key"), "OWN-SECRET\n").unwrap();
        fs::set_permissions(
            dir.join("own.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let paths = TlsPaths {
            cert_file: dir.join("node.pem"),
            key_file: dir.join("own.key"),
            ca_file: dir.join("ca.pem"),
        };
        let own = in_place(&paths, None).unwrap();
        assert_eq!(own.cert_pem.as_deref(), Some("CERT\n"));
        assert_eq!(own.ca_pem.as_deref(), Some("CA\n"));
        let key = own.key.clone().unwrap();
        assert!(key.world_readable && key.mode == 0o644, "{key:?}");
        assert!(!format!("{own:?}").contains("OWN-SECRET"));
        let unknown = in_place(&paths, Some("no-such-user-restate-fleet")).unwrap();
        assert_eq!(unknown.key.unwrap().service_user_reads, None);
        let missing = TlsPaths {
            key_file: dir.join("none.key"),
            ..paths
        };
        assert_eq!(in_place(&missing, None).unwrap().key, None);
        let report = format!("{:?}", material("SECRET-KEY"));
        assert!(!report.contains("SECRET-KEY"), "{report}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! The restate-server binary: look at binaries (`server_binaries`), put an uploaded one in place
//! keeping the one before (`install_server`), and put that one back (`rollback_server`).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use restate_fleet_proto::agent::{
    AgentError, BinaryFile, ErrorKind, InstallReport, PreviousBinary, ServerBinaries,
    ServerRollbackReport,
};

use crate::digest::{self, HashCache};
use crate::facts::version_of;
use crate::files;

/// `<target>.previous`: the binary `install_server` replaced, one step back.
pub fn previous_path(target: &Path) -> PathBuf {
    let mut name = OsString::from(target.as_os_str());
    name.push(".previous");
    PathBuf::from(name)
}

pub fn inspect(paths: &[PathBuf], cache: &HashCache) -> ServerBinaries {
    ServerBinaries {
        binaries: paths.iter().map(|p| inspect_one(p, cache)).collect(),
    }
}

fn inspect_one(path: &Path, cache: &HashCache) -> BinaryFile {
    let previous = previous_path(path);
    let mut found = BinaryFile {
        path: path.to_path_buf(),
        exists: false,
        link_target: fs::read_link(path).ok(),
        sha256: None,
        version_output: None,
        version: None,
        previous: fs::symlink_metadata(&previous).is_ok().then_some(previous),
        error: None,
    };
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            found.exists = true;
            match cache.sha256(path) {
                Ok(sha) => found.sha256 = Some(sha),
                Err(e) => found.error = Some(e.to_string()),
            }
            let (output, version) = version_of(path);
            found.version_output = Some(output);
            found.version = version;
        }
        Ok(_) => found.error = Some("not a regular file".into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => found.error = Some(e.to_string()),
    }
    found
}

/// What `install_server` is asked to do.
pub struct Install<'a> {
    pub staged: &'a Path,
    pub sha256: &'a str,
    pub target: &'a Path,
    pub version: &'a str,
    pub dry_run: bool,
}

pub fn install(req: &Install<'_>, cache: &HashCache) -> Result<InstallReport, AgentError> {
    let expected = req.sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AgentError::new(
            ErrorKind::BadRequest,
            format!("`{}` is not a sha256 (64 hex digits)", req.sha256),
        ));
    }
    let target = req.target;
    if !target.is_absolute() || target.file_name().is_none() {
        return Err(AgentError::new(
            ErrorKind::BadRequest,
            format!(
                "install target {} is not an absolute file path",
                target.display()
            ),
        ));
    }
    let mut report = InstallReport {
        target: target.to_path_buf(),
        changed: false,
        dry_run: req.dry_run,
        version: req.version.to_string(),
        previous: None,
        actions: Vec::new(),
    };
    let current = match fs::symlink_metadata(target) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(files::io_error("stat the install target", target, &e)),
    };
    if current.is_some()
        && fs::metadata(target).is_ok_and(|m| m.is_file())
        && cache.sha256(target)? == expected
    {
        report.actions.push(format!(
            "{} already has sha256 {expected}",
            target.display()
        ));
        return Ok(report);
    }
    let would = if req.dry_run { "would " } else { "" };
    report.changed = true;
    if let Some(meta) = &current {
        if !meta.is_file() && !meta.file_type().is_symlink() {
            return Err(AgentError::new(
                ErrorKind::Unsupported,
                format!(
                    "{} is neither a file nor a symlink; restate-fleet replaces only those",
                    target.display()
                ),
            )
            .with_path(target)
            .with_hint("remove it by hand, or choose another install-path"));
        }
        let path = previous_path(target);
        report.actions.push(format!(
            "{would}keep the current {} as {}",
            target.display(),
            path.display()
        ));
        report.previous = Some(PreviousBinary {
            version: fs::metadata(target)
                .is_ok_and(|m| m.is_file())
                .then(|| version_of(target).1)
                .flatten(),
            link_target: fs::read_link(target).ok(),
            path,
        });
    }
    report.actions.push(format!(
        "{would}install restate-server {} (sha256 {expected}) from {} at {}",
        req.version,
        req.staged.display(),
        target.display()
    ));
    if req.dry_run {
        // The upload may come later; when it is there, it is checked now already.
        if req.staged.exists() {
            verify_staged(req, &expected, cache)?;
        }
        return Ok(report);
    }

    // The copy is what gets hashed and asked for its version: exactly the bytes that will run.
    let mut source = File::open(req.staged)
        .map_err(|e| files::io_error("open the staged binary", req.staged, &e))?;
    let (tmp, got) = files::temp_file(target, 0o755, None, |out| {
        digest::copy_hashing(&mut source, out)
            .map_err(|e| files::io_error("copy the staged binary", req.staged, &e))
    })?;
    let checked = check_sha(req, &expected, &got).and_then(|()| check_version(req, &tmp));
    if let Err(e) = checked {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(meta) = fs::metadata(req.staged) {
        cache.remember(req.staged, &meta, &got);
    }
    if current.is_some()
        && let Err(e) = keep_previous(target)
    {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    files::rename_into_place(&tmp, target)?;
    // The rename changed the file's ctime: remember it as it is now, so a re-run reads nothing.
    if let Ok(meta) = fs::metadata(target) {
        cache.remember(target, &meta, &got);
    }
    Ok(report)
}

fn verify_staged(req: &Install<'_>, expected: &str, cache: &HashCache) -> Result<(), AgentError> {
    check_sha(req, expected, &cache.sha256(req.staged)?)?;
    check_version(req, req.staged)
}

fn check_sha(req: &Install<'_>, expected: &str, got: &str) -> Result<(), AgentError> {
    if got == expected {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::Verify,
        format!(
            "staged binary {} has sha256 {got}, expected {expected}",
            req.staged.display()
        ),
    )
    .with_path(req.staged)
    .with_hint("the upload is incomplete or was changed: upload it again"))
}

/// `path` is the staged file or its copy; messages name the staged file, which the operator knows.
fn check_version(req: &Install<'_>, path: &Path) -> Result<(), AgentError> {
    let (output, version) = version_of(path);
    if version.as_deref() == Some(req.version) {
        return Ok(());
    }
    Err(AgentError::new(
        ErrorKind::Verify,
        format!(
            "staged binary {} reports version {} (`{output}`), expected {}",
            req.staged.display(),
            version.as_deref().unwrap_or("none"),
            req.version
        ),
    )
    .with_path(req.staged)
    .with_hint("set [cluster] restate-server's version to what the binary reports, or use the binary of that version"))
}

/// Makes `<target>.previous` what `target` is now: the same symlink, or a hard link to the same
/// file (same bytes, owner and mode, no copy), swapped in atomically.
fn keep_previous(target: &Path) -> Result<(), AgentError> {
    let previous = previous_path(target);
    let meta = fs::symlink_metadata(target)
        .map_err(|e| files::io_error("stat the install target", target, &e))?;
    let mut staging = OsString::from(files::parent_dir(target).join(".restate-fleet-previous"));
    staging.push(format!("-{}", std::process::id()));
    let staging = PathBuf::from(staging);
    let _ = fs::remove_file(&staging);
    let made = if meta.file_type().is_symlink() {
        fs::read_link(target).and_then(|link| symlink(link, &staging))
    } else {
        fs::hard_link(target, &staging)
    };
    made.map_err(|e| files::io_error("keep the previous binary as", &staging, &e))?;
    files::rename_into_place(&staging, &previous)
}

pub fn rollback(target: &Path) -> Result<ServerRollbackReport, AgentError> {
    let previous = previous_path(target);
    match fs::symlink_metadata(&previous) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AgentError::new(
                ErrorKind::NoBackup,
                format!(
                    "no previous restate-server to put back at {}: {} does not exist",
                    target.display(),
                    previous.display()
                ),
            )
            .with_path(&previous)
            .with_hint(
                "install_server keeps one step back when it replaces a binary; install the \
                 wanted version instead",
            ));
        }
        Err(e) => return Err(files::io_error("stat", &previous, &e)),
    }
    fs::rename(&previous, target)
        .map_err(|e| files::io_error("put the previous binary back at", target, &e))?;
    files::sync_dir(&files::parent_dir(target))?;
    Ok(ServerRollbackReport {
        target: target.to_path_buf(),
        restored_from: previous,
        version: version_of(target).1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("rfa-install-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("bin")).unwrap();
            Dir(dir)
        }

        fn cache(&self) -> HashCache {
            HashCache::at(self.0.join("cache.json"))
        }

        /// A stand-in restate-server: a script that prints `restate-server <version>`.
        fn server(&self, name: &str, version: &str) -> (PathBuf, String) {
            let path = self.0.join(name);
            let text = format!("#!/bin/sh\necho 'restate-server {version}'\n");
            fs::write(&path, &text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
            let sha = digest::copy_hashing(&mut text.as_bytes(), &mut io::sink()).unwrap();
            (path, sha)
        }

        fn target(&self) -> PathBuf {
            self.0.join("bin/restate-server")
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn req<'a>(
        staged: &'a Path,
        sha256: &'a str,
        target: &'a Path,
        version: &'a str,
    ) -> Install<'a> {
        Install {
            staged,
            sha256,
            target,
            version,
            dry_run: false,
        }
    }

    #[test]
    fn installs_on_a_bare_host_then_leaves_it_alone() {
        let dir = Dir::new("bare");
        let (staged, sha) = dir.server("staged", "1.7.12");
        let target = dir.target();
        let first = install(&req(&staged, &sha, &target, "1.7.12"), &dir.cache()).unwrap();
        assert!(first.changed && first.previous.is_none(), "{first:?}");
        let meta = fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read(&target).unwrap(), fs::read(&staged).unwrap());
        assert!(!previous_path(&target).exists());
        let leftovers: Vec<_> = fs::read_dir(dir.0.join("bin")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");

        // The staged upload may be gone by the next run: an installed target is enough.
        fs::remove_file(&staged).unwrap();
        let again = install(&req(&staged, &sha, &target, "1.7.12"), &dir.cache()).unwrap();
        assert!(!again.changed && again.previous.is_none(), "{again:?}");
        assert_eq!(fs::metadata(&target).unwrap().ino(), meta.ino());
    }

    #[test]
    fn an_upgrade_keeps_a_symlinked_binary_as_a_symlink_and_rollback_restores_it() {
        let dir = Dir::new("upgrade");
        let (old, _) = dir.server("old-1.6.2", "1.6.2");
        let target = dir.target();
        symlink(&old, &target).unwrap();
        let (staged, sha) = dir.server("staged", "1.7.12");

        let plan = Install {
            dry_run: true,
            ..req(&staged, &sha, &target, "1.7.12")
        };
        let dry = install(&plan, &dir.cache()).unwrap();
        assert!(dry.changed && dry.dry_run);
        assert!(
            dry.actions.iter().all(|a| a.starts_with("would ")),
            "{dry:?}"
        );
        assert_eq!(
            fs::read_link(&target).unwrap(),
            old,
            "a dry run changes nothing"
        );
        assert!(!previous_path(&target).exists());

        let done = install(&req(&staged, &sha, &target, "1.7.12"), &dir.cache()).unwrap();
        let previous = done.previous.clone().unwrap();
        assert_eq!(previous.path, previous_path(&target));
        assert_eq!(previous.version.as_deref(), Some("1.6.2"));
        assert_eq!(previous.link_target.as_deref(), Some(old.as_path()));
        assert_eq!(fs::read_link(&previous.path).unwrap(), old);
        assert!(
            !fs::symlink_metadata(&target)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(version_of(&target).1.as_deref(), Some("1.7.12"));

        let back = rollback(&target).unwrap();
        assert_eq!(back.version.as_deref(), Some("1.6.2"));
        assert_eq!(fs::read_link(&target).unwrap(), old, "link for link");
        assert!(!previous.path.exists());
        let err = rollback(&target).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NoBackup);
        assert!(
            err.message.contains("restate-server.previous"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_replaced_regular_file_is_kept_byte_for_byte() {
        let dir = Dir::new("regular");
        let (old, _) = dir.server("old", "1.7.11");
        let target = dir.target();
        fs::copy(&old, &target).unwrap();
        let before = fs::metadata(&target).unwrap();
        let (staged, sha) = dir.server("staged", "1.7.12");
        install(&req(&staged, &sha, &target, "1.7.12"), &dir.cache()).unwrap();
        let kept = fs::metadata(previous_path(&target)).unwrap();
        assert_eq!(kept.ino(), before.ino());
        assert_eq!(
            fs::read(previous_path(&target)).unwrap(),
            fs::read(&old).unwrap()
        );
        rollback(&target).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().ino(), before.ino());
    }

    #[test]
    fn a_wrong_version_is_refused_before_anything_changes() {
        let dir = Dir::new("version");
        let (old, _) = dir.server("old", "1.6.2");
        let target = dir.target();
        symlink(&old, &target).unwrap();
        let (staged, sha) = dir.server("staged", "1.7.11");
        for dry_run in [true, false] {
            let request = Install {
                dry_run,
                ..req(&staged, &sha, &target, "1.7.12")
            };
            let err = install(&request, &dir.cache()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Verify);
            assert!(
                err.message.contains(&staged.display().to_string())
                    && err.message.contains("1.7.11")
                    && err.message.contains("expected 1.7.12"),
                "{}",
                err.message
            );
            assert_eq!(fs::read_link(&target).unwrap(), old);
            assert!(!previous_path(&target).exists());
            assert_eq!(fs::read_dir(dir.0.join("bin")).unwrap().count(), 1);
        }
    }

    #[test]
    fn a_wrong_sha256_is_refused_and_a_malformed_one_is_a_bad_request() {
        let dir = Dir::new("sha");
        let (staged, sha) = dir.server("staged", "1.7.12");
        let target = dir.target();
        let other = "0".repeat(64);
        let err = install(&req(&staged, &other, &target, "1.7.12"), &dir.cache()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Verify);
        assert!(err.message.contains(&sha) && err.message.contains(&other));
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.0.join("bin")).unwrap().count(), 0);

        let err = install(&req(&staged, "abc", &target, "1.7.12"), &dir.cache()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        let err = install(
            &req(&staged, &sha, Path::new("restate-server"), "1.7.12"),
            &dir.cache(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        let missing = dir.0.join("not-uploaded");
        let err = install(&req(&missing, &sha, &target, "1.7.12"), &dir.cache()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Io);
        // A dry run before the upload still says what would happen.
        let dry = Install {
            dry_run: true,
            ..req(&missing, &sha, &target, "1.7.12")
        };
        assert!(install(&dry, &dir.cache()).unwrap().changed);
    }

    #[test]
    fn inspect_reports_files_links_hashes_versions_and_previous() {
        let dir = Dir::new("inspect");
        let (real, sha) = dir.server("real", "1.7.12");
        let target = dir.target();
        symlink(&real, &target).unwrap();
        fs::write(previous_path(&target), b"old").unwrap();
        let missing = dir.0.join("missing");
        let found = inspect(
            &[target.clone(), missing.clone(), dir.0.clone()],
            &dir.cache(),
        );
        let [link, absent, directory] = found.binaries.as_slice() else {
            panic!("{found:?}")
        };
        assert!(link.exists);
        assert_eq!(link.link_target.as_deref(), Some(real.as_path()));
        assert_eq!(link.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(link.version.as_deref(), Some("1.7.12"));
        assert_eq!(link.previous, Some(previous_path(&target)));
        assert!(!absent.exists && absent.sha256.is_none() && absent.error.is_none());
        assert_eq!(absent.path, missing);
        assert!(!directory.exists && directory.error.is_some());
    }
}

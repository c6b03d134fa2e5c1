//! Where a restatectl is and what its `--version` says: the inventory's (uploaded to the member
//! when this machine cannot run it), one on this machine's PATH, one installed on the member.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::reach::Reached;
use crate::rollout::error::StepError;
use crate::server_binary;
use crate::ssh::{Encoding, RemoteFile};

/// Where an uploaded restatectl lives on the member that runs it.
const RESTATECTL_DIR: &str = "/var/lib/restate-fleet/bin";

/// Where operators usually have restatectl on a member; prints the path and its version.
const RESTATECTL_FIND: &str = "p=$(command -v restatectl) || for p in /usr/local/bin/restatectl /usr/bin/restatectl /opt/restate/bin/restatectl; do [ -x \"$p\" ] && break; p=; done; [ -n \"$p\" ] || exit 3; echo \"$p\"; \"$p\" --version";

/// `name` in this machine's PATH, as a shell would find it.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `path --version` run here.
pub async fn local_version(path: &Path) -> std::io::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(path)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| std::io::Error::other("`--version` did not answer within 10 s"))??;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "`--version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The inventory's restatectl's version: run here, or on the member it is for when this machine
/// cannot run it (a Linux binary named on a macOS laptop).
pub async fn inventory_version(on: &Reached, path: &Path) -> Result<String, String> {
    const EXEC_FORMAT_ERROR: i32 = 8;
    match local_version(path).await {
        Ok(version) => Ok(version),
        Err(err) if err.raw_os_error() == Some(EXEC_FORMAT_ERROR) => {
            let remote = upload(&on.session, on.name(), path)
                .await
                .map_err(|e| e.to_string())?;
            let out = on
                .session
                .exec_checked(&[remote.as_str(), "--version"], b"")
                .await
                .map_err(|e| format!("on {}: {e}", on.name()))?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// A restatectl installed on `on`: its path and what its `--version` said.
pub async fn member_restatectl(on: &Reached) -> Option<(String, Result<String, String>)> {
    let out = on
        .session
        .exec(&["sh", "-c", RESTATECTL_FIND], b"")
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (path, version) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    if path.trim().is_empty() {
        return None;
    }
    let version = if out.success() {
        Ok(version.to_string())
    } else {
        Err(format!(
            "`--version` failed on {}: {}",
            on.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    };
    Some((path.trim().to_string(), version))
}

/// The inventory's restatectl on `on` (content-addressed: uploaded once per version); its path
/// there.
pub async fn upload(
    session: &crate::ssh::Session,
    on: &str,
    local: &Path,
) -> Result<String, StepError> {
    let sha256 = server_binary::sha256_of(local).map_err(|e| StepError::host("(local)", e))?;
    let remote = RemoteFile {
        dir: RESTATECTL_DIR,
        name: "restatectl",
        sha256: &sha256,
    };
    let path = remote.path();
    let present = session
        .exec(&["test", "-x", path.as_str()], b"")
        .await
        .is_ok_and(|o| o.success());
    if !present {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| StepError::host("(local)", format!("{}: {e}", local.display())))?;
        session
            .upload(&remote, file, Encoding::Plain)
            .await
            .map_err(|e| StepError::host(on, format!("uploading restatectl: {e}")))?;
    }
    Ok(path)
}

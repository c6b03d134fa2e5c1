use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::CertError;

/// Writes a key (or any file beside the CA) so that it is never, even for an instant, readable
/// with a wider mode than `mode` (e.g. `0o600`), and never half-written: the mode is given when
/// the file is created (not chmod-ed afterwards, which would leave a window), the bytes go to a
/// temporary file in the same directory, and a rename puts it in place, replacing any older
/// file. The process umask can only narrow `mode`.
pub fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let temp = write_temp(path, contents, mode)?;
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(CertError::io(path, "move the new file into place", e));
    }
    sync_dir(path)
}

/// Like [`write_private`], but fails with [`CertError::CreatedConcurrently`] instead of replacing
/// a file that appeared meanwhile: a CA's key and certificate written by two runs at once must
/// never end up as one run's key beside the other's certificate. A hard link publishes the
/// temporary file atomically and, unlike a rename, refuses an existing target.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let temp = write_temp(path, contents, mode)?;
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CertError::CreatedConcurrently {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(CertError::io(path, "create", e)),
    }
}

/// Creates the directory with mode `mode` (the CA directory: 0700, so that nobody else can even
/// list what was issued), including missing parents.
pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<(), CertError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| CertError::io(dir, "create the directory", e))
}

fn write_temp(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, CertError> {
    // One counter per process and the pid keep concurrent writers (threads or processes) of the
    // same file off each other's temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| {
            CertError::io(
                path,
                "write",
                io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
            )
        })?
        .to_string_lossy();
    let temp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|e| CertError::io(&temp, "create", e))?;
    match file.write_all(contents).and_then(|()| file.sync_all()) {
        Ok(()) => Ok(temp),
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&temp);
            Err(CertError::io(&temp, "write", e))
        }
    }
}

/// Makes the rename or link itself durable, so that a crash right after a successful return does
/// not bring back the old file (or none).
fn sync_dir(path: &Path) -> Result<(), CertError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CertError::io(dir, "sync the directory", e))
}

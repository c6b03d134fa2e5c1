//! Crash-safe config writes and the backups kept next to the config.

use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use restate_fleet_proto::agent::{AgentError, ErrorKind};

use crate::clock;
use crate::secrecy::Access;

/// Backups of `<dir>/<name>` live in `<dir>/.restate-fleet-backups/<name>.<UTC stamp>.<kind>`.
pub const BACKUP_DIR: &str = ".restate-fleet-backups";

/// How many copies of each kind are kept.
pub const KEEP_BACKUPS: usize = 5;

/// Why a backup was taken: before a change (restored by `rollback`), or the file a rollback
/// replaced (kept so a hand edit is never lost, never restored automatically).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    BeforeChange,
    Replaced,
}

impl BackupKind {
    fn suffix(self) -> &'static str {
        match self {
            BackupKind::BeforeChange => "bak",
            BackupKind::Replaced => "replaced",
        }
    }
}

pub fn io_error(what: &str, path: &Path, e: &io::Error) -> AgentError {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => "run the agent as root (become = true in the inventory)",
        io::ErrorKind::NotFound => "check the path in the inventory",
        _ => "check the disk and the file's permissions on the host",
    };
    AgentError::new(ErrorKind::Io, format!("cannot {what}: {e}"))
        .with_path(path)
        .with_hint(hint)
}

/// The file's text and metadata, or `None` when it does not exist.
pub fn read_config(path: &Path) -> Result<Option<(String, Metadata)>, AgentError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read the config file", path, &e)),
    };
    let meta = fs::metadata(path).map_err(|e| io_error("stat the config file", path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = crate::patch::line_col(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        AgentError::new(ErrorKind::ConfigParse, "the config file is not UTF-8 text")
            .with_path(path)
            .with_location(line, column)
            .with_hint("fix the file by hand; TOML files must be UTF-8")
    })?;
    Ok(Some((text, meta)))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file: temp file in
/// the same directory, fsync, rename, fsync of the directory. Owner, group and mode come from the
/// existing file, else from `like`, else 0600 and the agent's user. Missing parents are made 0755.
pub fn write_atomic(path: &Path, bytes: &[u8], like: Option<&Metadata>) -> Result<(), AgentError> {
    let existing = fs::metadata(path).ok();
    write_atomic_as(path, bytes, access_for(existing.as_ref().or(like)))
}

/// Owner, group and mode of a file like `existing`, or 0600 and the agent's own user.
pub fn access_for(existing: Option<&Metadata>) -> Access {
    match existing {
        Some(meta) => Access {
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        },
        // SAFETY: geteuid and getegid only read this process's ids.
        None => Access {
            mode: 0o600,
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
        },
    }
}

/// [`write_atomic`] with the owner, group and mode given.
pub fn write_atomic_as(path: &Path, bytes: &[u8], access: Access) -> Result<(), AgentError> {
    // A symlinked config (e.g. into a config-management checkout) stays a symlink: write its target.
    let resolved = fs::canonicalize(path).ok();
    let path = resolved.as_deref().unwrap_or(path);
    let owner = Some((access.uid, access.gid));
    let (tmp, ()) = temp_file(path, access.mode, owner, |file| {
        file.write_all(bytes)
            .map_err(|e| io_error("write", path, &e))
    })?;
    rename_into_place(&tmp, path)
}

/// The first half of an atomic replacement of `path`: a temp file in its directory (made, with
/// missing parents 0755, when needed), given `owner` (uid, gid) and `mode`, filled by `fill`,
/// fsynced. Returns its path and what `fill` returned; removed again on any error. It is made
/// 0600 and gets its final owner and mode before `fill` writes anything into it.
pub fn temp_file<T>(
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    fill: impl FnOnce(&mut File) -> Result<T, AgentError>,
) -> Result<(PathBuf, T), AgentError> {
    let dir = parent_dir(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(|e| io_error("create the directory", &dir, &e))?;
    let file_name = path
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = write_new_file(&tmp, mode, owner, fill);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|value| (tmp, value))
}

/// The second half: renames `tmp` (from [`temp_file`]) over `path` and fsyncs the directory.
/// `tmp` is removed when the rename fails.
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<(), AgentError> {
    let result = fs::rename(tmp, path)
        .map_err(|e| io_error("rename into place", path, &e))
        .and_then(|()| sync_dir(&parent_dir(path)));
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

fn write_new_file<T>(
    tmp: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    fill: impl FnOnce(&mut File) -> Result<T, AgentError>,
) -> Result<T, AgentError> {
    // A temp file left by a crashed run of the same pid is ours to replace.
    let _ = fs::remove_file(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| io_error("create a temporary file", tmp, &e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| io_error("set owner and group of", tmp, &e))?;
    }
    // After chown, which clears set-id bits.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_error("set the mode of", tmp, &e))?;
    let value = fill(&mut file)?;
    file.sync_all().map_err(|e| io_error("write", tmp, &e))?;
    Ok(value)
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), AgentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync the directory", dir, &e))
}

pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn backup_dir(config: &Path) -> PathBuf {
    parent_dir(config).join(BACKUP_DIR)
}

/// Saves `bytes` (the content of `config`, with its owner and mode) as a new backup of that kind,
/// then drops the oldest beyond [`KEEP_BACKUPS`].
pub fn save_backup(
    config: &Path,
    bytes: &[u8],
    meta: &Metadata,
    kind: BackupKind,
) -> Result<PathBuf, AgentError> {
    let dir = backup_dir(config);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io_error("create the backup directory", &dir, &e))?;
    // Backups hold what the config held, secrets included: only root enters, also where an
    // older run or a person made the directory wider.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error("set the mode of", &dir, &e))?;
    let name = file_name(config);
    // Bump the stamp by a millisecond on a clash, and while it would sort at or before the newest
    // backup (an earlier clash can have put that ahead of the clock): rotation goes by name, so
    // names must stay unique and in the order the backups were made. A clock set back by more
    // than MAX_BUMPS ms only keeps them unique.
    let newest = list_backups(config, kind)?.pop();
    let mut at = SystemTime::now();
    let mut bumps = 0;
    let path = loop {
        let candidate = dir.join(format!(
            "{name}.{}.{}",
            clock::file_stamp(at),
            kind.suffix()
        ));
        let behind = bumps < MAX_BUMPS && newest.as_ref().is_some_and(|n| candidate <= *n);
        if !candidate.exists() && !behind {
            break candidate;
        }
        at += Duration::from_millis(1);
        bumps += 1;
    };
    write_atomic(&path, bytes, Some(meta))?;
    for old in list_backups(config, kind)?.iter().rev().skip(KEEP_BACKUPS) {
        fs::remove_file(old).map_err(|e| io_error("remove an old backup", old, &e))?;
    }
    Ok(path)
}

/// How far (in ms) a backup's stamp may be moved past the clock to keep names in order.
const MAX_BUMPS: u32 = 10_000;

/// Backups of that kind, oldest first.
pub fn list_backups(config: &Path, kind: BackupKind) -> Result<Vec<PathBuf>, AgentError> {
    let dir = backup_dir(config);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list the backups in", &dir, &e)),
    };
    let prefix = format!("{}.", file_name(config));
    let suffix = format!(".{}", kind.suffix());
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(&suffix)
        })
        .map(|e| e.path())
        .collect();
    // The UTC stamps sort lexicographically in time order.
    found.sort();
    Ok(found)
}

fn file_name(config: &Path) -> String {
    config
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "restate-fleet-agent-files-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn new_file_gets_0600_and_parents_0755() {
        let dir = tempdir("new");
        let path = dir.join("etc/restate/restate.toml");
        write_atomic(&path, b"a = 1\n", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"a = 1\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let parent = fs::metadata(dir.join("etc/restate")).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o755);
        let leftovers: Vec<_> = fs::read_dir(dir.join("etc/restate"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("restate.toml")]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rewrite_keeps_mode_and_owner() {
        let dir = tempdir("keep");
        let path = dir.join("restate.toml");
        fs::write(&path, "a = 1\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        // As root (CI and the lab), also prove the owner survives: give the file to another uid.
        let is_root = unsafe { libc::geteuid() } == 0;
        if is_root {
            std::os::unix::fs::chown(&path, Some(4242), Some(4343)).unwrap();
        }
        write_atomic(&path, b"a = 2\n", None).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        if is_root {
            assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_symlinked_config_stays_a_symlink() {
        let dir = tempdir("symlink");
        let target = dir.join("real.toml");
        let link = dir.join("restate.toml");
        fs::write(&target, "a = 1\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"a = 2\n", None).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "a = 2\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn backups_rotate_and_keep_the_newest_five() {
        let dir = tempdir("rotate");
        let path = dir.join("restate.toml");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let mut made = Vec::new();
        for i in 0..8 {
            made.push(
                save_backup(
                    &path,
                    format!("v{i}").as_bytes(),
                    &meta,
                    BackupKind::BeforeChange,
                )
                .unwrap(),
            );
        }
        save_backup(&path, b"replaced", &meta, BackupKind::Replaced).unwrap();
        let kept = list_backups(&path, BackupKind::BeforeChange).unwrap();
        assert_eq!(kept, made[3..].to_vec());
        let contents: Vec<String> = kept
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(contents, vec!["v3", "v4", "v5", "v6", "v7"]);
        assert_eq!(
            fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(list_backups(&path, BackupKind::Replaced).unwrap().len(), 1);
        let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("restate.toml.20") && name.ends_with("Z.bak"),
            "{name}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn non_utf8_config_is_a_parse_error_with_location() {
        let dir = tempdir("utf8");
        let path = dir.join("restate.toml");
        fs::write(&path, b"a = 1\nb = \"\xff\"\n").unwrap();
        let err = read_config(&path).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ConfigParse);
        assert_eq!((err.line, err.column), (Some(2), Some(6)));
        assert!(read_config(&dir.join("missing.toml")).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}

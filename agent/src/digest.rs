//! sha256 of restate-server binaries, remembered on the host: the binary is 200+ MB and every run
//! asks whether it changed, so an unchanged file is not read again.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use restate_fleet_proto::agent::AgentError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files;

/// Where the agent remembers hashes on a node (next to the agent itself).
pub const HOST_CACHE: &str = "/var/lib/restate-fleet/sha256-cache.json";

/// The first line of each binary's `--version`, remembered the same way: running a 200+ MB binary
/// costs every host 15 ms of CPU on every run.
pub const HOST_VERSION_CACHE: &str = "/var/lib/restate-fleet/version-cache.json";

/// Entries kept: a few binaries (in use, previous, staged uploads) per node.
const KEEP: usize = 16;

/// What identifies an unchanged file: same path leading to the same inode with the same size and
/// times. `ctime` cannot be set from user space, so a rewrite that restores `mtime` still counts
/// as a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    sha256: String,
}

impl Entry {
    fn new(path: &Path, meta: &Metadata, sha256: String) -> Self {
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Entry {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            sha256,
        }
    }

    fn same_file(&self, other: &Entry) -> bool {
        Entry {
            sha256: String::new(),
            ..self.clone()
        } == Entry {
            sha256: String::new(),
            ..other.clone()
        }
    }
}

/// The hash cache file; a missing or unreadable one is an empty cache, and failing to save it only
/// costs a re-hash next time.
pub struct HashCache {
    file: PathBuf,
}

impl HashCache {
    pub fn at(file: impl Into<PathBuf>) -> Self {
        HashCache { file: file.into() }
    }

    pub fn host() -> Self {
        Self::at(HOST_CACHE)
    }

    /// The sha256 of the file `path` leads to, from the cache when that file is unchanged.
    pub fn sha256(&self, path: &Path) -> Result<String, AgentError> {
        let meta = fs::metadata(path).map_err(|e| files::io_error("stat", path, &e))?;
        let probe = Entry::new(path, &meta, String::new());
        if let Some(hit) = self.load().into_iter().find(|e| e.same_file(&probe)) {
            return Ok(hit.sha256);
        }
        let mut file = File::open(path).map_err(|e| files::io_error("open", path, &e))?;
        let sha256 = copy_hashing(&mut file, &mut io::sink())
            .map_err(|e| files::io_error("read", path, &e))?;
        self.remember(path, &meta, &sha256);
        Ok(sha256)
    }

    /// What was remembered for the file `path` leads to, when that file is unchanged.
    pub fn lookup(&self, path: &Path) -> Option<String> {
        let meta = fs::metadata(path).ok()?;
        let probe = Entry::new(path, &meta, String::new());
        self.load()
            .into_iter()
            .find(|e| e.same_file(&probe))
            .map(|e| e.sha256)
    }

    /// Records `value` for the file `path` leads to now.
    pub fn remember_current(&self, path: &Path, value: &str) {
        if let Ok(meta) = fs::metadata(path) {
            self.remember(path, &meta, value);
        }
    }

    /// Records that the file at `path`, as `meta` describes it, has `sha256`.
    pub fn remember(&self, path: &Path, meta: &Metadata, sha256: &str) {
        let entry = Entry::new(path, meta, sha256.to_string());
        let mut entries: Vec<Entry> = self
            .load()
            .into_iter()
            .filter(|e| e.path != entry.path)
            .collect();
        entries.push(entry);
        let skip = entries.len().saturating_sub(KEEP);
        let kept = &entries[skip..];
        if let Ok(json) = serde_json::to_vec(kept) {
            let _ = files::write_atomic(&self.file, &json, None);
        }
    }

    fn load(&self) -> Vec<Entry> {
        fs::read(&self.file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }
}

/// Copies `from` into `to` and returns the lowercase hex sha256 of what went through.
pub fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rfa-digest-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn known_digests() {
        let hash = |bytes: &[u8]| copy_hashing(&mut &bytes[..], &mut io::sink()).unwrap();
        assert_eq!(
            hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Across the copy buffer's boundary.
        let big = vec![b'a'; (1 << 20) + 7];
        let mut copy = Vec::new();
        let sha = copy_hashing(&mut &big[..], &mut copy).unwrap();
        assert_eq!(copy, big);
        assert_eq!(sha, hash(&big));
    }

    #[test]
    fn a_remembered_value_holds_until_the_file_changes() {
        let dir = tempdir("lookup");
        let cache = HashCache::at(dir.join("versions.json"));
        let bin = dir.join("restate-server");
        fs::write(&bin, b"one").unwrap();
        assert_eq!(cache.lookup(&bin), None);
        cache.remember_current(&bin, "restate-server 1.7.12");
        assert_eq!(cache.lookup(&bin).as_deref(), Some("restate-server 1.7.12"));
        // A new binary under the same name (a new inode, as an install makes) is asked again.
        fs::remove_file(&bin).unwrap();
        fs::write(&bin, b"two").unwrap();
        assert_eq!(cache.lookup(&bin), None);
        assert_eq!(cache.lookup(&dir.join("missing")), None);
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let dir = tempdir("cache");
        let cache = HashCache::at(dir.join("state/cache.json"));
        let bin = dir.join("restate-server");
        fs::write(&bin, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(cache.sha256(&bin).unwrap(), abc);
        // Prove the second answer comes from the cache: plant a different hash for the same file.
        let meta = fs::metadata(&bin).unwrap();
        cache.remember(&bin, &meta, "planted");
        assert_eq!(cache.sha256(&bin).unwrap(), "planted");
        // Same size, new content: the times (at least ctime) change, so it is hashed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&bin, b"abd").unwrap();
        assert_ne!(cache.sha256(&bin).unwrap(), "planted");
        assert_ne!(cache.sha256(&bin).unwrap(), abc);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_broken_cache_file_is_an_empty_cache_and_the_cache_stays_small() {
        let dir = tempdir("broken");
        let file = dir.join("cache.json");
        fs::write(&file, "not json").unwrap();
        let cache = HashCache::at(&file);
        let bin = dir.join("b");
        fs::write(&bin, b"").unwrap();
        assert!(cache.sha256(&bin).unwrap().starts_with("e3b0c442"));
        for i in 0..(KEEP + 5) {
            let path = dir.join(format!("f{i}"));
            fs::write(&path, b"x").unwrap();
            cache.sha256(&path).unwrap();
        }
        assert_eq!(cache.load().len(), KEEP);
        assert!(
            cache
                .load()
                .iter()
                .any(|e| e.path == dir.join(format!("f{}", KEEP + 4)))
        );
        fs::remove_dir_all(dir).unwrap();
    }
}

//! The restate-server binary the inventory deploys, on this machine: its architecture and the
//! version it reports are checked before anything is uploaded; its sha256 and a gzip copy for the
//! wire are made once and kept in `~/.cache/restate-fleet`, so a second run does not read the
//! 200+ MB again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use restate_fleet_inventory::{Arch, RestateServer, ServerBinary};
use restate_fleet_version::Version;
use sha2::{Digest, Sha256};

use crate::elf::{elf_machine_for, read_elf_machine};

/// Where an uploaded restate-server waits on a host until it is installed.
pub const REMOTE_DIR: &str = "/var/lib/restate-fleet/binaries";
pub const REMOTE_NAME: &str = "restate-server";
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// One binary of the inventory's, checked. (`Default` only for a report read back, which
/// carries no local file.)
#[derive(Debug, Clone, Default)]
pub struct LocalServer {
    /// As `uname -m` prints it.
    pub arch: &'static str,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Whether this machine ran it to read its version (it cannot run another architecture's;
    /// the agent then checks the version on the host before installing).
    pub version_checked: bool,
}

/// Every binary of the inventory's `[cluster] restate-server`.
#[derive(Debug, Clone)]
pub struct LocalServers {
    pub version: String,
    pub install_path: Option<PathBuf>,
    pub binaries: Vec<LocalServer>,
}

impl LocalServers {
    /// Checks every binary; an error names the file and says what to fix. Nothing is uploaded
    /// anywhere before this passed.
    pub fn prepare(wanted: &RestateServer) -> Result<Self, String> {
        let declared: Vec<(Option<Arch>, &Path)> = match &wanted.binary {
            ServerBinary::Any(path) => vec![(None, path.as_path())],
            ServerBinary::PerArch(paths) => paths
                .iter()
                .map(|(arch, path)| (Some(*arch), path.as_path()))
                .collect(),
        };
        let binaries = declared
            .into_iter()
            .map(|(arch, path)| check(arch, path, &wanted.version))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version: wanted.version.clone(),
            install_path: wanted.install_path.clone(),
            binaries,
        })
    }

    /// The binary for a host whose `uname -m` is `arch`.
    pub fn for_arch(&self, arch: &str) -> Option<&LocalServer> {
        let machine = elf_machine_for(arch)?;
        self.binaries
            .iter()
            .find(|b| elf_machine_for(b.arch) == Some(machine))
    }
}

fn check(arch: Option<Arch>, path: &Path, version: &str) -> Result<LocalServer, String> {
    let name = path.display();
    let machine = read_elf_machine(path).map_err(|e| {
        format!("restate-server {name}: {e}; fix `[cluster] restate-server.path` in the inventory")
    })?;
    let arch = match arch {
        Some(arch) if elf_machine_for(arch.as_str()) == Some(machine) => arch.as_str(),
        Some(arch) => {
            return Err(format!(
                "restate-server {name} is not built for {} (ELF machine {machine}); fix `[cluster] restate-server.path.{}`",
                arch.as_str(),
                arch.as_str()
            ));
        }
        None => Arch::ALL
            .into_iter()
            .map(Arch::as_str)
            .find(|a| elf_machine_for(a) == Some(machine))
            .ok_or_else(|| {
                format!("restate-server {name} is built for ELF machine {machine}, which restate-fleet does not deploy")
            })?,
    };
    let runs_here = elf_machine_for(std::env::consts::ARCH) == Some(machine);
    if runs_here {
        let reported = reported_version(path)?;
        if reported.parse::<Version>().ok() != version.parse::<Version>().ok() {
            return Err(format!(
                "restate-server {name} reports version {reported}, the inventory says {version}; nothing was uploaded. Point `[cluster] restate-server.path` at a {version} binary or set version = \"{reported}\""
            ));
        }
    }
    let size = std::fs::metadata(path)
        .map_err(|e| format!("restate-server {name}: {e}"))?
        .len();
    Ok(LocalServer {
        arch,
        path: path.to_path_buf(),
        sha256: HashCache::open().sha256(path)?,
        size,
        version_checked: runs_here,
    })
}

/// The version `path --version` prints (`restate-server 1.7.12` -> `1.7.12`).
fn reported_version(path: &Path) -> Result<String, String> {
    let name = path.display();
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {name} --version: {e}"))?;
    let deadline = std::time::Instant::now() + VERSION_TIMEOUT;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{name} --version did not finish within {VERSION_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    out.lines()
        .next()
        .and_then(|line| line.split_whitespace().last())
        .map(str::to_owned)
        .ok_or_else(|| format!("{name} --version printed no version"))
}

/// sha256 of a file this machine deploys, remembered across runs (see [`HashCache`]).
pub fn sha256_of(path: &Path) -> Result<String, String> {
    HashCache::open().sha256(path)
}

/// `~/.cache/restate-fleet` (or `$XDG_CACHE_HOME/restate-fleet`).
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("restate-fleet"))
}

/// sha256 of large files, remembered by path, inode, size and modification time. The cache is an
/// optimisation only: when it cannot be read or written, the file is hashed again.
struct HashCache {
    file: Option<PathBuf>,
    entries: BTreeMap<String, String>,
}

impl HashCache {
    fn open() -> Self {
        let file = cache_dir().map(|d| d.join("sha256.json"));
        let entries = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { file, entries }
    }

    fn sha256(mut self, path: &Path) -> Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = format!(
            "{}:{}:{}:{}.{}",
            path.canonicalize()
                .unwrap_or_else(|_| path.to_path_buf())
                .display(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        if let Some(sum) = self.entries.get(&key) {
            return Ok(sum.clone());
        }
        let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut hasher = Hashing(Sha256::new());
        std::io::copy(&mut file, &mut hasher).map_err(|e| format!("{}: {e}", path.display()))?;
        let sum = hex(&hasher.0.finalize());
        self.entries.insert(key, sum.clone());
        if let (Some(file), Ok(json)) = (&self.file, serde_json::to_vec(&self.entries)) {
            let _ = write_atomically(file, &json);
        }
        Ok(sum)
    }
}

/// sha2 0.11 (russh's, the one this workspace uses) is no `io::Write` itself.
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl LocalServer {
    /// The gzip copy for the wire, made on first use and kept in the cache directory (or a
    /// temporary directory when there is none); fast compression: the wire, not the ratio, is
    /// what it saves.
    pub fn compressed(&self) -> Result<PathBuf, String> {
        let dir = cache_dir().unwrap_or_else(std::env::temp_dir);
        let gz = dir.join(format!("restate-server-{}.gz", self.sha256));
        if gz.is_file() {
            return Ok(gz);
        }
        let fail = |e: std::io::Error| {
            format!(
                "compressing {} into {}: {e}",
                self.path.display(),
                gz.display()
            )
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let tmp = dir.join(format!(
            ".restate-server-{}.gz.{}",
            self.sha256,
            std::process::id()
        ));
        let result = (|| {
            let mut input = std::fs::File::open(&self.path)?;
            let output = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::fast());
            std::io::copy(&mut input, &mut encoder)?;
            encoder.finish()?.flush()?;
            std::fs::rename(&tmp, &gz)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(fail)?;
        Ok(gz)
    }
}

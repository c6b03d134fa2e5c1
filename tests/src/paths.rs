//! Where the lab finds what `scripts/install-deps` installed, and where it keeps its files.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The project's root: `RESTATE_LAB_ROOT` when set, else the checkout this crate was built from.
pub fn project_root() -> PathBuf {
    match std::env::var_os("RESTATE_LAB_ROOT") {
        Some(root) => PathBuf::from(root),
        None => {
            let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            here.canonicalize().unwrap_or(here)
        }
    }
}

/// `.lab/`: everything installed or created for labs lives here, git-ignored.
pub fn lab_home() -> PathBuf {
    project_root().join(".lab")
}

pub fn labs_dir() -> PathBuf {
    lab_home().join("labs")
}

fn installed(relative: &str, what: &str) -> Result<PathBuf> {
    let path = lab_home().join(relative);
    if !path.is_file() {
        bail!(
            "{what} not found at {}: run scripts/install-deps first",
            path.display()
        );
    }
    Ok(path)
}

pub fn restate_server() -> Result<PathBuf> {
    installed(
        "npm/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server",
        "restate-server",
    )
}

/// The older restate-server a lab host can start on, to be upgraded (`scripts/install-deps` pins
/// it in `tests/deps/restate-1.6.2/package.json`).
pub const OLD_SERVER_VERSION: &str = "1.6.2";

pub fn old_restate_server() -> Result<PathBuf> {
    installed(
        "npm-1.6.2/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server",
        "restate-server 1.6.2",
    )
}

pub fn restatectl() -> Result<PathBuf> {
    installed(
        "npm/node_modules/@restatedev/restatectl-linux-x64/bin/restatectl",
        "restatectl",
    )
}

pub fn moto_server() -> Result<PathBuf> {
    installed("venv/bin/moto_server", "moto_server (S3 store)")
}

/// The workspace's built binaries (`restate-fleet`, `restate-fleet-agent`): next to the running test
/// binary's profile directory, or `CARGO_TARGET_DIR`.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/e2e-hash or target/<profile>/restate-lab
        for dir in exe.ancestors().skip(1).take(2) {
            candidates.push(dir.join(name));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    candidates.push(target.join("debug").join(name));
    candidates.push(target.join("release").join(name));
    match candidates.into_iter().find(|c| c.is_file()) {
        Some(found) => Ok(found),
        None => bail!("{name} is not built: run `cargo build --workspace --bins` first"),
    }
}

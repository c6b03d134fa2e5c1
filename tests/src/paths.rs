//! Where the lab finds what `scripts/install-deps` installed, and where it keeps its files.

use std::path::{Path, PathBuf};

use std::fs;

use anyhow::{Context, Result, bail};

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

/// `.lab/`: what `scripts/install-deps` installed for labs (npm packages, the S3 store), git-ignored.
pub fn lab_home() -> PathBuf {
    project_root().join(".lab")
}

/// Where running labs keep their files: machine-wide (`RESTATE_LAB_STATE`, default
/// `/var/lib/restate-lab`), not in the checkout. A lab host's sshd reads a test user's authorized
/// keys with that user's rights, which a checkout under `/root` (0700) would deny; and labs of
/// every checkout share one subnet allocator, so two checkouts never pick the same /24.
pub fn state_home() -> PathBuf {
    std::env::var_os("RESTATE_LAB_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/restate-lab"))
}

pub fn labs_dir() -> PathBuf {
    state_home().join("labs")
}

/// Creates `dir` under [`state_home`] with every level from the state home down root-owned and
/// 0755, whatever the umask, so that non-root users on lab hosts can reach files meant for them.
pub fn create_world_readable_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let home = state_home();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for level in dir.ancestors().take_while(|level| level.starts_with(&home)) {
        fs::set_permissions(level, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} traversable", level.display()))?;
    }
    Ok(())
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

/// The workload's scripts (`service.js`, `driver.js`), in the checkout.
pub fn workload_script(name: &str) -> Result<PathBuf> {
    let path = project_root().join("tests/workload").join(name);
    if !path.is_file() {
        bail!("workload script {} not found", path.display());
    }
    Ok(path)
}

/// The node modules the workload's service needs (its `NODE_PATH`).
pub fn workload_modules() -> Result<PathBuf> {
    installed(
        "workload/node_modules/@restatedev/restate-sdk/package.json",
        "the workload's Restate SDK",
    )?;
    Ok(lab_home().join("workload/node_modules"))
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

//! Builds the x86_64 agent and embeds it, so that `restate-fleet` is the one file a user needs.
//!
//! The agent is linked statically (glibc's `crt-static`, non-PIE): no shared library and no
//! symbol version to match, so it runs on any x86_64 Linux, old glibc or none. It is built by a
//! nested cargo into a target directory of its own (the outer build holds the lock of its own),
//! with the `agent` profile. Only a build host that can make an x86_64 Linux binary does this;
//! elsewhere (a Mac) nothing is embedded and `--agent` or a file beside the coordinator is used.
//! `RESTATE_FLEET_AGENT_EMBED=PATH` embeds a prebuilt agent instead, `=none` nothing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest
        .parent()
        .expect("the coordinator is in the workspace");
    for input in [
        "agent",
        "proto",
        "clock",
        "version",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=RESTATE_FLEET_AGENT_EMBED");
    println!("cargo::rustc-check-cfg=cfg(embedded_agent)");

    let embedded = out.join("restate-fleet-agent-x86_64");
    let source = match env::var("RESTATE_FLEET_AGENT_EMBED").ok().as_deref() {
        Some("none") => return,
        Some(path) => PathBuf::from(path),
        None if env::var("HOST").as_deref() == Ok(TARGET) => build(workspace, &out),
        None => return,
    };
    std::fs::copy(&source, &embedded).unwrap_or_else(|e| {
        panic!("embedding the agent {}: {e}", source.display());
    });
    println!("cargo:rustc-cfg=embedded_agent");
}

/// The static agent, built with the workspace's lock file and the crates already fetched.
fn build(workspace: &Path, out: &Path) -> PathBuf {
    // <target>/<profile>/build/<package>-<hash>/out: shared by every profile of this target dir.
    let target_dir = out.ancestors().nth(4).unwrap_or(out).join("embedded-agent");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--locked", "--offline", "--profile", "agent"])
        .args(["-p", "restate-fleet-agent", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // Nothing of the outer build's flags or wrappers (clippy's, a coverage tool's) applies.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    command.env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-Ctarget-feature=+crt-static\u{1f}-Crelocation-model=static",
    );
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build the agent: {e}"));
    assert!(
        status.success(),
        "building the static agent failed ({status}); set RESTATE_FLEET_AGENT_EMBED=none to build without it"
    );
    target_dir
        .join(TARGET)
        .join("agent")
        .join("restate-fleet-agent")
}

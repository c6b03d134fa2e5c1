//! Running the system tools the lab is built from (ip, ssh-keygen, nsenter): every failure names the
//! command and what it printed, so a broken lab says why.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// Runs a command to completion and fails unless it exits 0.
pub fn run<I, S>(program: &str, args: I) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    checked(&mut command)
}

/// A new ed25519 key without passphrase at `path` (and `path.pub`).
pub fn ssh_keygen(path: &std::path::Path, comment: &str) -> Result<()> {
    run(
        "ssh-keygen",
        [
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            &path.to_string_lossy(),
        ],
    )
    .map(drop)
}

/// Like [`run`] for an already built command.
pub fn checked(command: &mut Command) -> Result<Output> {
    let shown = describe(command);
    let output = command.output().with_context(|| {
        format!("cannot run `{shown}` (is it installed? run scripts/install-deps)")
    })?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}

/// Runs a command for its side effect during teardown: failures are reported, not raised, so that one
/// missing piece never stops the rest of the cleanup.
pub fn best_effort<I, S>(program: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = describe(&command);
    match command.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "lab teardown: `{shown}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => eprintln!("lab teardown: `{shown}`: {err}"),
    }
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

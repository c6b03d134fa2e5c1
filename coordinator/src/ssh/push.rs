//! Uploading the agent: one binary per architecture, stored on the host under a name that
//! contains its sha256, uploaded only when the host lacks that exact file, and checked again
//! before every run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::SshError;
use super::session::Session;

/// Root-owned home of uploaded agents on every host.
pub const AGENT_REMOTE_DIR: &str = "/var/lib/restate-fleet/agent";
const AGENT_NAME: &str = "restate-fleet-agent";

/// Exit status the run wrapper uses when the agent's hash does not match.
const MISMATCH_STATUS: u32 = 125;

/// Receives the binary on stdin. `$1` the directory, `$2` the expected sha256. Writes to a
/// temporary file in the same directory and renames only after the hash matched, so a broken
/// upload never leaves a file under the final name.
const UPLOAD_SCRIPT: &str = r#"set -eu
umask 077
dir=$1 sum=$2
if [ "$(id -u)" != 0 ]; then
  echo "the agent directory must be root-owned: connect as root or set become = true" >&2; exit 3
fi
mkdir -p -- "$dir"
chmod 0700 -- "$dir"
if [ "$(stat -c %u -- "$dir")" != 0 ]; then echo "$dir is not owned by root" >&2; exit 3; fi
tmp=$(mktemp "$dir/.upload.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
got=$(sha256sum < "$tmp"); got=${got%% *}
if [ "$got" != "$sum" ]; then echo "upload damaged: sha256 $got, expected $sum" >&2; exit 3; fi
chmod 0700 -- "$tmp"
mv -f -- "$tmp" "$dir/restate-fleet-agent-$sum"
trap - EXIT
"#;

/// Prints the sha256 of `$1`, or nothing when it is not a regular file.
const HASH_SCRIPT: &str =
    r#"if [ -f "$1" ]; then sum=$(sha256sum < "$1") && echo "${sum%% *}"; fi"#;

/// Checks `$1` against `$2`, then execs it with the remaining arguments: the check and the run
/// are one command, so nothing can swap the file between them.
const RUN_SCRIPT: &str = r#"sum=$(sha256sum < "$1") || exit 125
if [ "${sum%% *}" != "$2" ]; then
  echo "restate-fleet: agent checksum mismatch: $1 has ${sum%% *}, expected $2" >&2; exit 125
fi
agent=$1; shift 2; exec "$agent" "$@"
"#;

/// Where to find agent binaries on the coordinator's machine.
#[derive(Debug, Clone)]
pub struct AgentLocator {
    /// `--agent PATH`: a binary, or a directory holding `restate-fleet-agent-<arch>` files.
    explicit: Option<PathBuf>,
    /// The coordinator binary's directory, searched when there is no `--agent`.
    beside_coordinator: Option<PathBuf>,
}

impl AgentLocator {
    pub fn new(explicit: Option<PathBuf>) -> Self {
        let beside_coordinator = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        Self {
            explicit,
            beside_coordinator,
        }
    }

    /// The local agent binary built for `arch` (as `uname -m` prints it); checks the ELF header
    /// so an agent for another architecture is never uploaded.
    pub fn locate(&self, host: &str, arch: &str) -> Result<PathBuf, SshError> {
        let fail = |message: String| SshError::AgentPush {
            host: host.to_owned(),
            message,
        };
        let machine = elf_machine_for(arch).ok_or_else(|| {
            fail(format!(
                "architecture {arch:?} is not supported by restate-fleet-agent"
            ))
        })?;
        let candidates: Vec<PathBuf> = match &self.explicit {
            Some(path) if !path.is_dir() => vec![path.clone()],
            Some(dir) => named_in(dir, arch),
            None => self
                .beside_coordinator
                .iter()
                .flat_map(|dir| named_in(dir, arch))
                .collect(),
        };
        let mut notes = Vec::new();
        for candidate in &candidates {
            match read_elf_machine(candidate) {
                Ok(found) if found == machine => return Ok(candidate.clone()),
                Ok(found) => notes.push(format!(
                    "{} is built for ELF machine {found}, not {arch}",
                    candidate.display()
                )),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    notes.push(format!("{} does not exist", candidate.display()));
                }
                Err(err) => notes.push(format!("{}: {err}", candidate.display())),
            }
        }
        Err(fail(format!(
            "no restate-fleet-agent binary for {arch} ({}); build one for {arch} and pass it with --agent PATH",
            notes.join("; ")
        )))
    }
}

fn named_in(dir: &Path, arch: &str) -> Vec<PathBuf> {
    vec![
        dir.join(format!("{AGENT_NAME}-{arch}")),
        dir.join(AGENT_NAME),
    ]
}

/// ELF `e_machine` values for `uname -m` names.
fn elf_machine_for(arch: &str) -> Option<u16> {
    Some(match arch {
        "x86_64" | "amd64" => 62,
        "aarch64" | "arm64" => 183,
        "armv7l" | "armv6l" | "armhf" => 40,
        "riscv64" => 243,
        "i386" | "i686" => 3,
        "ppc64le" | "ppc64" => 21,
        "s390x" => 22,
        _ => return None,
    })
}

fn read_elf_machine(path: &Path) -> std::io::Result<u16> {
    use std::io::Read;
    let mut header = [0u8; 20];
    let mut file = std::fs::File::open(path)?;
    let complete = match file.read_exact(&mut header) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(err) => return Err(err),
    };
    if !complete || &header[..4] != b"\x7fELF" {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an ELF executable",
        ));
    }
    let bytes = [header[18], header[19]];
    Ok(match header[5] {
        2 => u16::from_be_bytes(bytes),
        _ => u16::from_le_bytes(bytes),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An agent present on a host with a known hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedAgent {
    pub arch: String,
    pub remote_path: String,
    pub sha256: String,
    /// 0 when the host already had this exact binary.
    pub bytes_uploaded: u64,
}

impl Session {
    /// `uname -m` on the host.
    pub async fn arch(&self) -> Result<String, SshError> {
        let output = self.exec_checked(&["uname", "-m"], b"").await?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Makes sure the host has the agent for its architecture in `remote_dir` (normally
    /// [`AGENT_REMOTE_DIR`]), uploading it only when missing or different.
    pub async fn push_agent(
        &self,
        locator: &AgentLocator,
        remote_dir: &str,
    ) -> Result<PushedAgent, SshError> {
        if !remote_dir.starts_with('/') {
            return Err(SshError::AgentPush {
                host: self.host().to_owned(),
                message: format!("the agent directory {remote_dir:?} must be an absolute path"),
            });
        }
        let arch = self.arch().await?;
        let local = locator.locate(self.host(), &arch)?;
        let binary = tokio::fs::read(&local)
            .await
            .map_err(|err| SshError::AgentPush {
                host: self.host().to_owned(),
                message: format!("cannot read {}: {err}", local.display()),
            })?;
        let sha256 = sha256_hex(&binary);
        let remote_path = format!("{remote_dir}/{AGENT_NAME}-{sha256}");
        let mut agent = PushedAgent {
            arch,
            remote_path,
            sha256,
            bytes_uploaded: 0,
        };
        if self.remote_sha256(&agent.remote_path).await?.as_deref() != Some(&agent.sha256) {
            self.exec_checked(
                &[
                    "sh",
                    "-c",
                    UPLOAD_SCRIPT,
                    "sh",
                    remote_dir,
                    agent.sha256.as_str(),
                ],
                &binary,
            )
            .await?;
            agent.bytes_uploaded = binary.len() as u64;
            tracing::info!(
                "{}: uploaded {} ({} bytes) to {}",
                self.host(),
                local.display(),
                binary.len(),
                agent.remote_path
            );
        }
        Ok(agent)
    }

    async fn remote_sha256(&self, path: &str) -> Result<Option<String>, SshError> {
        let output = self
            .exec_checked(&["sh", "-c", HASH_SCRIPT, "sh", path], b"")
            .await?;
        let sum = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok((!sum.is_empty()).then_some(sum))
    }
}

impl PushedAgent {
    /// Hashes the uploaded file on the host; refuses when it is missing or differs.
    pub async fn verify(&self, session: &Session) -> Result<(), SshError> {
        match session.remote_sha256(&self.remote_path).await? {
            Some(found) if found == self.sha256 => Ok(()),
            found => Err(SshError::AgentHashMismatch {
                host: session.host().to_owned(),
                path: self.remote_path.clone(),
                expected: self.sha256.clone(),
                found: found.unwrap_or_else(|| "nothing (file missing)".into()),
            }),
        }
    }

    /// The argv that runs the agent with `args`, after the host verified its hash in the same
    /// command. On mismatch it exits with status 125 and a message on stderr; see
    /// [`PushedAgent::mismatch`].
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        [
            "sh",
            "-c",
            RUN_SCRIPT,
            "sh",
            self.remote_path.as_str(),
            self.sha256.as_str(),
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(args.iter().map(|arg| arg.as_ref().to_owned()))
        .collect()
    }

    /// Whether a finished [`PushedAgent::command`] was refused for a hash mismatch.
    pub fn mismatch(output: &super::ExecOutput) -> bool {
        output.status == super::ExitStatus::Code(MISMATCH_STATUS)
            && String::from_utf8_lossy(&output.stderr).contains("agent checksum mismatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_checks_the_architecture() {
        let current = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&current, dir.path().join("restate-fleet-agent-x86_64")).unwrap();
        std::fs::write(dir.path().join("restate-fleet-agent"), b"#!/bin/sh\n").unwrap();
        let locator = AgentLocator::new(Some(dir.path().to_owned()));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                locator.locate("n1", "x86_64").unwrap(),
                dir.path().join("restate-fleet-agent-x86_64")
            );
        }
        let err = locator.locate("n1", "aarch64").unwrap_err().to_string();
        assert!(err.contains("n1") && err.contains("not an ELF"), "{err}");
        assert!(locator.locate("n1", "vax").is_err());
        let explicit = AgentLocator::new(Some(dir.path().join("missing")));
        let err = explicit.locate("n1", "x86_64").unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn sha256_matches_coreutils() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

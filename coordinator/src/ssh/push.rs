//! Uploading the agent: one binary per architecture, stored on the host under a name that
//! contains its sha256, uploaded only when the host lacks that exact file, and checked again
//! before every run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::SshError;
use super::exec::ExecStream;
use super::session::Session;
use super::upload::{Encoding, RemoteFile};
use crate::elf::{elf_machine_for, read_elf_machine};

/// Root-owned home of uploaded agents on every host.
pub const AGENT_REMOTE_DIR: &str = "/var/lib/restate-fleet/agent";
const AGENT_NAME: &str = "restate-fleet-agent";

/// Starts the agent in one command when the host has it: `$1` the agent directory, then
/// `<arch>=<sha256>` for every agent the coordinator holds, `--`, and the agent's arguments. The
/// first stdout line says what happened; after `ready` the agent itself speaks. The hash check and
/// the exec are one command, so nothing can swap the file between them, and a file whose hash is
/// wrong is never run.
const LAUNCH_SCRIPT: &str = r#"dir=$1; shift
arch=$(uname -m) sum=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case $1 in "$arch="*) sum=${1#*=} ;; esac
  shift
done
shift
if [ -z "$sum" ]; then echo "restate-fleet-launch unsupported $arch"; exit 0; fi
agent=$dir/restate-fleet-agent-$sum
if [ ! -f "$agent" ]; then echo "restate-fleet-launch missing $arch"; exit 0; fi
got=$(sha256sum < "$agent") || exit 125
if [ "${got%% *}" != "$sum" ]; then echo "restate-fleet-launch damaged $arch ${got%% *}"; exit 0; fi
echo "restate-fleet-launch ready $arch"
exec "$agent" "$@"
"#;
const LAUNCH_PREFIX: &str = "restate-fleet-launch ";

/// The x86_64 agent built into this binary by `build.rs` (statically linked), when the build
/// host could make one.
#[cfg(embedded_agent)]
pub const EMBEDDED_AGENT: Option<&[u8]> = Some(include_bytes!(concat!(
    env!("OUT_DIR"),
    "/restate-fleet-agent-x86_64"
)));
#[cfg(not(embedded_agent))]
pub const EMBEDDED_AGENT: Option<&[u8]> = None;
/// The `uname -m` names the embedded agent serves.
const EMBEDDED_ARCHES: [&str; 2] = ["x86_64", "amd64"];

/// `uname -m` names the launch script may see, for the architectures the ELF check knows.
const UNAME_NAMES: [&str; 13] = [
    "x86_64", "amd64", "aarch64", "arm64", "armv7l", "armv6l", "armhf", "riscv64", "i386", "i686",
    "ppc64le", "ppc64", "s390x",
];

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

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An agent binary on this machine, read once per run and shared by every host's upload.
#[derive(Debug)]
struct LocalAgent {
    arch: &'static str,
    sha256: String,
    bytes: std::sync::Arc<[u8]>,
}

/// Every agent binary the coordinator can push, one per architecture it found.
#[derive(Debug)]
pub struct AgentCatalog {
    locator: AgentLocator,
    agents: Vec<LocalAgent>,
}

impl AgentCatalog {
    /// Looks for an agent for every known architecture; each file is read and hashed once.
    /// `--agent` comes first, then the agent embedded in this binary, then files beside it.
    pub fn load(locator: AgentLocator) -> Self {
        let mut read: Vec<(PathBuf, std::sync::Arc<[u8]>, String)> = Vec::new();
        let mut agents = Vec::new();
        let embedded = EMBEDDED_AGENT.filter(|_| locator.explicit.is_none());
        if let Some(bytes) = embedded {
            let bytes: std::sync::Arc<[u8]> = bytes.into();
            let sha256 = sha256_hex(&bytes);
            for arch in EMBEDDED_ARCHES {
                agents.push(LocalAgent {
                    arch,
                    sha256: sha256.clone(),
                    bytes: bytes.clone(),
                });
            }
        }
        for arch in UNAME_NAMES {
            if embedded.is_some() && EMBEDDED_ARCHES.contains(&arch) {
                continue;
            }
            let Ok(path) = locator.locate("", arch) else {
                continue;
            };
            // The same file can serve several names (`x86_64` and `amd64`, or the plain name).
            let index = match read.iter().position(|(p, _, _)| *p == path) {
                Some(index) => index,
                None => {
                    let Ok(bytes) = std::fs::read(&path) else {
                        continue;
                    };
                    let sha256 = sha256_hex(&bytes);
                    read.push((path, bytes.into(), sha256));
                    read.len() - 1
                }
            };
            let (_, bytes, sha256) = &read[index];
            agents.push(LocalAgent {
                arch,
                sha256: sha256.clone(),
                bytes: bytes.clone(),
            });
        }
        Self { locator, agents }
    }

    fn for_arch(&self, host: &str, arch: &str) -> Result<&LocalAgent, SshError> {
        if let Some(agent) = self.agents.iter().find(|a| a.arch == arch) {
            return Ok(agent);
        }
        // Not found when the run started: the locator says why, naming the files it tried.
        self.locator.locate(host, arch)?;
        Err(SshError::AgentPush {
            host: host.to_owned(),
            message: format!("the agent for {arch} appeared after the run started; run again"),
        })
    }
}

/// The agent running on a host, its stdin and stdout open for requests.
pub struct LaunchedAgent {
    pub arch: String,
    pub remote_path: String,
    pub sha256: String,
    /// 0 when the host already had this exact binary.
    pub bytes_uploaded: u64,
    pub stream: ExecStream,
}

impl Session {
    /// Starts the agent with `args` (normally `serve`) from `remote_dir` (normally
    /// [`AGENT_REMOTE_DIR`]): one command when the host has it, else an upload and a second try.
    pub async fn launch_agent(
        &self,
        catalog: &AgentCatalog,
        remote_dir: &str,
        args: &[&str],
    ) -> Result<LaunchedAgent, SshError> {
        if !remote_dir.starts_with('/') {
            return Err(SshError::AgentPush {
                host: self.host().to_owned(),
                message: format!("the agent directory {remote_dir:?} must be an absolute path"),
            });
        }
        let mut bytes_uploaded = 0;
        loop {
            let (stream, answer) = self.launch(catalog, remote_dir, args).await?;
            let mut words = answer.split_whitespace();
            let (state, arch) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            // `unsupported` (no agent for the host's architecture) fails here, with the files tried.
            let agent = catalog.for_arch(self.host(), arch)?;
            match state {
                "ready" => {
                    return Ok(LaunchedAgent {
                        arch: arch.to_owned(),
                        remote_path: format!("{remote_dir}/{AGENT_NAME}-{}", agent.sha256),
                        sha256: agent.sha256.clone(),
                        bytes_uploaded,
                        stream,
                    });
                }
                // A second try that still finds no good file means the upload did not stick.
                "missing" | "damaged" if bytes_uploaded == 0 => {
                    stream.finish().await?;
                    self.upload_agent(agent, remote_dir).await?;
                    bytes_uploaded = agent.bytes.len() as u64;
                }
                _ => {
                    return Err(SshError::AgentHashMismatch {
                        host: self.host().to_owned(),
                        path: format!("{remote_dir}/{AGENT_NAME}-{}", agent.sha256),
                        expected: agent.sha256.clone(),
                        found: format!("{state} right after the upload ({answer})"),
                    });
                }
            }
        }
    }

    /// Runs the launch script; returns the stream and its first line without the prefix.
    async fn launch(
        &self,
        catalog: &AgentCatalog,
        remote_dir: &str,
        args: &[&str],
    ) -> Result<(ExecStream, String), SshError> {
        let mut argv: Vec<String> = ["sh", "-c", LAUNCH_SCRIPT, "sh", remote_dir]
            .into_iter()
            .map(str::to_owned)
            .collect();
        argv.extend(
            catalog
                .agents
                .iter()
                .map(|a| format!("{}={}", a.arch, a.sha256)),
        );
        argv.push("--".to_owned());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut stream = self.exec_streaming(&argv).await?;
        let line = stream.recv_line().await?;
        match line.as_deref().and_then(|l| l.strip_prefix(LAUNCH_PREFIX)) {
            Some(answer) => Ok((stream, answer.to_owned())),
            None => {
                let output = stream.finish().await?;
                Err(SshError::AgentPush {
                    host: self.host().to_owned(),
                    message: format!(
                        "the agent's launch script answered {:?} instead of `{LAUNCH_PREFIX}...` and ended with {}{}; re-run with -v to see what the host printed",
                        line.unwrap_or_default(),
                        output.status,
                        match String::from_utf8_lossy(&output.stderr).trim() {
                            "" => String::new(),
                            stderr => format!(" (stderr: {stderr})"),
                        }
                    ),
                })
            }
        }
    }

    async fn upload_agent(&self, agent: &LocalAgent, remote_dir: &str) -> Result<(), SshError> {
        let file = RemoteFile {
            dir: remote_dir,
            name: AGENT_NAME,
            sha256: &agent.sha256,
        };
        self.upload(&file, &agent.bytes[..], Encoding::Plain)
            .await?;
        tracing::info!(
            "{}: uploaded the {} agent ({} bytes) to {remote_dir}",
            self.host(),
            agent.arch,
            agent.bytes.len()
        );
        Ok(())
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

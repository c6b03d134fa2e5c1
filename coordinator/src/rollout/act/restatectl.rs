//! restatectl run for the steps that need it (see `decide/restatectl.rs` for which one and why):
//! on the member it was found for, or here through that member's SSH session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;

use super::executor::Executor;
use crate::admin::fabric_target;
use crate::admin::{IdentityFiles, https_address};
use crate::rollout::decide::restatectl::{Source, transient};
use crate::rollout::error::StepError;
use crate::rollout::observe::restatectl::upload;
use crate::ssh::Forward;

/// A restatectl call that has not answered by then is taken for hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a call the cluster answers as unavailable is tried again.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(45);

/// restatectl as the survey found it, ready to run against the member it was found for.
pub(super) struct Restatectl {
    on: On,
    runs: Runs,
    /// `RESTATECTL_TLS_CA`, `_CERT`, `_KEY` when the member speaks fabric TLS: the tool's own
    /// files here, the node's own on the member.
    tls: Option<IdentityFiles>,
}

/// The member restatectl runs on, or through: its session now (a new one after its reboot).
struct On {
    name: String,
    address: String,
    session: crate::ssh::Session,
}

enum Runs {
    /// On the member, pointed at its own fabric address.
    There { binary: String },
    /// Here, pointed at a forwarded port that reaches the member's fabric address.
    Here { binary: PathBuf, forward: Forward },
}

impl Restatectl {
    /// Runs one call, once: the handover before a restart is best effort and must not wait.
    pub(super) async fn run(&self, args: &[&str]) -> Result<String, StepError> {
        self.run_once(args).await
    }

    /// Runs one call of a removal; a call the cluster answers as unavailable for now (a
    /// metadata leader that just died, measured: the member proxies the write to it) is tried
    /// again for a while.
    pub(super) async fn run_patiently(&self, args: &[&str]) -> Result<String, StepError> {
        let deadline = std::time::Instant::now() + RETRY_UNAVAILABLE;
        loop {
            match self.run_once(args).await {
                Err(err) if transient(&err.to_string()) && std::time::Instant::now() < deadline => {
                    tracing::debug!(%err, "restatectl: the cluster is unavailable for now; again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    async fn run_once(&self, args: &[&str]) -> Result<String, StepError> {
        match &self.runs {
            Runs::There { binary } => {
                let env = self.tls_env();
                let mut argv: Vec<&str> = Vec::new();
                if !env.is_empty() {
                    argv.push("env");
                    argv.extend(env.iter().map(String::as_str));
                }
                argv.push(binary.as_str());
                argv.extend_from_slice(args);
                let address = self.address();
                argv.extend_from_slice(&["--address", &address, "--yes"]);
                Ok(self.exec(&argv).await?.trim().to_string())
            }
            Runs::Here { binary, forward } => run_here(binary, forward, args, self.tls.as_ref())
                .await
                .map(|out| out.trim().to_string())
                .map_err(|why| self.failed_here(binary, &why)),
        }
    }

    /// The member's fabric address, `https://` when it speaks TLS.
    fn address(&self) -> String {
        match self.tls {
            Some(_) => https_address(&self.on.address),
            None => self.on.address.clone(),
        }
    }

    /// `NAME=value` words for `env`.
    fn tls_env(&self) -> Vec<String> {
        self.tls.as_ref().map_or_else(Vec::new, |files| {
            tls_variables(files)
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect()
        })
    }

    fn failed_here(&self, binary: &Path, why: &str) -> StepError {
        StepError::host(
            &self.on.name,
            format!(
                "restatectl ({}, through its SSH session): {why}",
                binary.display()
            ),
        )
    }

    /// `argv` on the member; its standard output.
    async fn exec(&self, argv: &[&str]) -> Result<String, StepError> {
        let out = self
            .on
            .session
            .exec_checked(argv, b"")
            .await
            .map_err(|e| StepError::host(&self.on.name, format!("restatectl: {e}")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs every call at once (one restatectl each, as processes, so that many calls cost about
    /// one); returns the calls that failed, with restatectl's last line. On the member they run
    /// in one exec, so an argument must be one word without glob characters: the script splits
    /// each call on spaces with globbing off.
    pub(super) async fn run_all(
        &self,
        calls: &[Vec<String>],
    ) -> Result<Vec<(usize, String)>, StepError> {
        let word = |a: &String| {
            !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || "*?[]".contains(c))
        };
        if let Some(bad) = calls.iter().flatten().find(|a| !word(a)) {
            return Err(StepError::host(
                &self.on.name,
                format!("restatectl argument {bad:?} is not a single word"),
            ));
        }
        match &self.runs {
            Runs::There { binary } => self.run_all_there(binary, calls).await,
            Runs::Here { binary, forward } => {
                let runs = calls.iter().map(|call| {
                    let args: Vec<&str> = call.iter().map(String::as_str).collect();
                    async move { run_here(binary, forward, &args, self.tls.as_ref()).await }
                });
                Ok(join_all(runs)
                    .await
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, result)| result.err().map(|why| (i, why)))
                    .collect())
            }
        }
    }

    async fn run_all_there(
        &self,
        binary: &str,
        calls: &[Vec<String>],
    ) -> Result<Vec<(usize, String)>, StepError> {
        const SCRIPT: &str = r#"bin=$1; address=$2; shift 2; set -f; i=0
for call in "$@"; do
  (out=$("$bin" $call --address "$address" --yes 2>&1) || echo "$i $(printf '%s\n' "$out" | tail -n 1)") &
  i=$((i + 1))
done
wait"#;
        let env = self.tls_env();
        let address = self.address();
        let mut argv: Vec<&str> = Vec::new();
        if !env.is_empty() {
            argv.push("env");
            argv.extend(env.iter().map(String::as_str));
        }
        argv.extend(["sh", "-c", SCRIPT, "sh", binary, &address]);
        let joined: Vec<String> = calls.iter().map(|c| c.join(" ")).collect();
        argv.extend(joined.iter().map(String::as_str));
        Ok(self
            .exec(&argv)
            .await?
            .lines()
            .filter_map(|line| {
                let (index, why) = line.split_once(' ').unwrap_or((line, ""));
                Some((index.parse().ok()?, why.to_string()))
            })
            .collect())
    }
}

/// One restatectl call on this machine against the forwarded port: `--single-address`, so it
/// never dials the nodes' advertised addresses itself (they may not be reachable from here).
/// Its standard output, or its last line of output when it failed.
async fn run_here(
    binary: &Path,
    forward: &Forward,
    args: &[&str],
    tls: Option<&IdentityFiles>,
) -> Result<String, String> {
    // restatectl checks a node's certificate against the CA alone (not the address it dials),
    // so the forwarded port speaks TLS as the node does.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let address = format!("{scheme}://{}/", forward.local());
    // restatectl 1.7.12's `sql` takes the host of `--single-address` but dials port 5122 (seen
    // with strace); with `--address` it asks the given address alone too.
    let flag = if args.first() == Some(&"sql") {
        "--address"
    } else {
        "--single-address"
    };
    let run = tokio::process::Command::new(binary)
        .envs(tls.map(tls_variables).unwrap_or_default())
        .args(args)
        .args([flag, address.as_str(), "--yes"])
        // `--single-address` conflicts with an address from the environment.
        .env_remove("RESTATECTL_ADDRESS")
        // Its errors go into messages: no terminal colours in them.
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CALL_TIMEOUT, run)
        .await
        .map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .chain(stdout.lines())
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Err(format!("{} ({})", last.trim(), out.status))
}

/// restatectl's TLS options as its environment variables.
fn tls_variables(files: &IdentityFiles) -> Vec<(&'static str, String)> {
    [
        ("RESTATECTL_TLS_CA", &files.ca),
        ("RESTATECTL_TLS_CERT", &files.cert),
        ("RESTATECTL_TLS_KEY", &files.key),
    ]
    .into_iter()
    .map(|(name, path)| (name, path.display().to_string()))
    .collect()
}

impl<'a> Executor<'a> {
    /// The restatectl the survey found, ready to run; an error names why there is none.
    pub(super) async fn restatectl(&self) -> Result<Restatectl, StepError> {
        let finding = self.survey.restatectl.as_ref();
        let found = finding
            .and_then(|f| f.chosen.as_ref())
            .ok_or_else(|| {
                StepError::cluster(format!(
                    "no restatectl found ({}); put restatectl of the cluster's release on this machine's PATH, or name one with [cluster] restatectl = \"path/to/restatectl\"",
                    finding.map(|f| f.passed_over.join("; ")).unwrap_or_default()
                ))
            })?;
        let surveyed = self
            .survey
            .host(&found.on)
            .ok_or_else(|| StepError::host(&found.on, "not among the surveyed hosts"))?;
        let on = On {
            name: surveyed.name().to_string(),
            address: surveyed.reached.host.advertised_address.clone(),
            session: self.session_of(surveyed),
        };
        let speaks_tls = surveyed.reached.admin.speaks_tls();
        let here = matches!(found.source, Source::Path { .. });
        let tls = match (speaks_tls, here, crate::ca_dir::CaDir::of(self.fleet)) {
            (false, _, _) | (true, true, None) => None,
            (true, true, Some(dir)) => Some(dir.client()),
            (true, false, _) => {
                let dir = crate::ca_dir::host_tls_dir(&surveyed.reached.host.config_path);
                use restate_fleet_proto::agent::{TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE};
                Some(IdentityFiles {
                    ca: dir.join(TLS_CA_FILE),
                    cert: dir.join(TLS_CERT_FILE),
                    key: dir.join(TLS_KEY_FILE),
                })
            }
        };
        let runs = match &found.source {
            Source::Inventory { path } => Runs::There {
                binary: upload(&on.session, &on.name, path).await?,
            },
            Source::Member { path } => Runs::There {
                binary: path.clone(),
            },
            Source::Path { path } => {
                let (host, port) = fabric_target(&on.address).ok_or_else(|| {
                    StepError::host(
                        &on.name,
                        format!(
                            "advertised address {:?} has no host to forward restatectl to",
                            on.address
                        ),
                    )
                })?;
                let forward = on
                    .session
                    .forward_local(&host, port)
                    .await
                    .map_err(|e| StepError::host(&on.name, e.to_string()))?;
                Runs::Here {
                    binary: path.clone(),
                    forward,
                }
            }
        };
        Ok(Restatectl { on, runs, tls })
    }
}

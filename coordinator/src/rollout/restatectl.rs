//! restatectl, for what Restate offers through it only: a node's worker and storage states and
//! its removal (read-modify-writes of the nodes configuration; restatedev/restate#5195 asks for
//! an RPC) and a log's new sequencer. See docs/scale-down.md.
//!
//! Found where operators keep it, in this order: the inventory's `[cluster] restatectl`
//! (uploaded to the member it runs on), `restatectl` on this machine's PATH (run here, against a
//! member through that member's SSH session: a forwarded local port, so nothing new has to be
//! reachable or installed), one installed on the member. The survey finds it ([`locate`], its
//! version checked against the cluster's release by [`judge`]); the plan's steps are held
//! against what was found before anything changes ([`needs`]); steps run it ([`Restatectl`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;
use restate_fleet_inventory::Fleet;
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::error::StepError;
use super::execute::Executor;
use super::plan::Step;
use super::survey::{Survey, Surveyed};
use crate::server_binary;
use crate::ssh::{Encoding, Forward, RemoteFile};

/// Where an uploaded restatectl lives on the member that runs it.
const RESTATECTL_DIR: &str = "/var/lib/restate-fleet/bin";
/// Where operators usually have restatectl on a member; prints the path and its version.
const RESTATECTL_FIND: &str = "p=$(command -v restatectl) || for p in /usr/local/bin/restatectl /usr/bin/restatectl /opt/restate/bin/restatectl; do [ -x \"$p\" ] && break; p=; done; [ -n \"$p\" ] || exit 3; echo \"$p\"; \"$p\" --version";
/// A restatectl call that has not answered by then is taken for hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a call the cluster answers as unavailable is tried again.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(45);
/// Measured on a 4-node lab (replication 2, 20 calls/s): a rolling change without the handover
/// left clients 5.34 s without a successful call, 0.49 s with it (restate-facts.md, 2026-12-02).
const STALL_WITHOUT_HANDOVER_S: u32 = 5;

/// Where the run's restatectl comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    /// `[cluster] restatectl`: uploaded to the member it runs on.
    Inventory { path: PathBuf },
    /// On this machine's PATH: runs here, through the member's SSH session.
    Path { path: PathBuf },
    /// Installed on the member.
    Member { path: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Inventory { path } => {
                write!(
                    f,
                    "{} (the inventory's [cluster] restatectl)",
                    path.display()
                )
            }
            Source::Path { path } => write!(f, "{} (on this machine's PATH)", path.display()),
            Source::Member { path } => write!(f, "{path} (installed on the member)"),
        }
    }
}

/// The restatectl a run uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub source: Source,
    pub version: String,
    /// The member it runs on, or (from this machine's PATH) the member it talks to.
    pub on: String,
}

/// What the survey found: the restatectl a run uses, and every one looked at and not used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The restate-server release it must fit (same minor).
    #[serde(default)]
    pub release: String,
    pub chosen: Option<Found>,
    /// Why each restatectl looked at was not used, or where none was found.
    pub passed_over: Vec<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.chosen {
            Some(found) => {
                let how = match found.source {
                    Source::Path { .. } => {
                        format!("runs here against {} through its SSH session", found.on)
                    }
                    _ => format!("runs on {}", found.on),
                };
                write!(f, "{} {}, {how}", found.version, found.source)?;
                if !self.passed_over.is_empty() {
                    write!(f, "; passed over: {}", self.passed_over.join("; "))?;
                }
                Ok(())
            }
            None => write!(f, "none found ({})", self.passed_over.join("; ")),
        }
    }
}

/// One restatectl looked at: where, and what `--version` said (or why it did not run).
pub struct Candidate {
    pub source: Source,
    pub version: Result<String, String>,
}

/// Whether `candidate` may talk to a cluster of `release`: it ran, and it is of the same minor
/// release (restatectl reads and writes the cluster's metadata in that release's format). The
/// version it reported, or why not, naming both versions.
pub fn judge(candidate: &Candidate, release: &Version) -> Result<String, String> {
    let said = candidate
        .version
        .as_ref()
        .map_err(|why| format!("{}: {why}", candidate.source))?;
    let version = Version::find_in(said).ok_or_else(|| {
        format!(
            "{}: `--version` printed no version ({:?})",
            candidate.source,
            said.trim()
        )
    })?;
    if version.line() != release.line() {
        let (major, minor) = release.line();
        return Err(format!(
            "{} is restatectl {version}, but the cluster runs restate-server {release}: use restatectl {major}.{minor}.x",
            candidate.source
        ));
    }
    Ok(version.to_string())
}

/// The release restatectl talks to: the inventory's restate-server (members are upgraded to it
/// first), else the newest a member runs. `None`: no member, so nothing needs restatectl.
pub fn cluster_release(fleet: &Fleet, survey: &Survey) -> Option<Version> {
    if let Some(wanted) = fleet.cluster.restate_server.as_ref() {
        return wanted.version.parse().ok();
    }
    survey
        .members()
        .filter_map(|m| {
            m.facts
                .restate_server
                .as_ref()?
                .version
                .as_deref()?
                .parse()
                .ok()
        })
        .max()
}

/// The first member that stays and runs the admin role, alive in the survey's view: restatectl
/// runs on it, or talks to it.
pub fn driver(survey: &Survey) -> Option<&Surveyed> {
    let view = survey.view.as_ref()?;
    survey.members().find(|m| {
        m.reached.host.roles.iter().any(|r| r.as_str() == "admin")
            && view
                .node(&m.reached.host.node_name)
                .is_some_and(|n| n.alive)
    })
}

/// Finds the run's restatectl (see the module comment); `None` when the survey saw no cluster.
/// The inventory's, when it names one, is never passed over for another: a mismatch stops there.
pub async fn locate(fleet: &Fleet, survey: &Survey) -> Option<Finding> {
    let release = cluster_release(fleet, survey)?;
    let mut finding = Finding {
        release: release.to_string(),
        ..Finding::default()
    };
    let Some(on) = driver(survey) else {
        finding.passed_over.push(
            "no member that stays runs the admin role and is alive to run restatectl against"
                .to_string(),
        );
        return Some(finding);
    };
    let mut take = |candidate: Candidate| match judge(&candidate, &release) {
        Ok(version) => {
            finding.chosen = Some(Found {
                source: candidate.source,
                version,
                on: on.name().to_string(),
            });
            true
        }
        Err(why) => {
            finding.passed_over.push(why);
            false
        }
    };
    if let Some(path) = &fleet.cluster.restatectl {
        let version = inventory_version(on, path).await;
        take(Candidate {
            source: Source::Inventory { path: path.clone() },
            version,
        });
        return Some(finding);
    }
    let on_path = find_on_path("restatectl");
    if let Some(path) = &on_path {
        let version = local_version(path).await.map_err(|e| e.to_string());
        if take(Candidate {
            source: Source::Path { path: path.clone() },
            version,
        }) {
            return Some(finding);
        }
    }
    match member_restatectl(on).await {
        Some((path, version)) => {
            take(Candidate {
                source: Source::Member { path },
                version,
            });
        }
        None => {
            if on_path.is_none() {
                finding
                    .passed_over
                    .push("none in the inventory or on this machine's PATH".to_string());
            }
            finding.passed_over.push(format!(
                "none on {} (its PATH, /usr/local/bin, /usr/bin, /opt/restate/bin)",
                on.name()
            ));
        }
    }
    Some(finding)
}

/// `name` in this machine's PATH, as a shell would find it.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `path --version` run here.
async fn local_version(path: &Path) -> std::io::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(path)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| std::io::Error::other("`--version` did not answer within 10 s"))??;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "`--version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The inventory's restatectl's version: run here, or on the member it is for when this machine
/// cannot run it (a Linux binary named on a macOS laptop).
async fn inventory_version(on: &Surveyed, path: &Path) -> Result<String, String> {
    const EXEC_FORMAT_ERROR: i32 = 8;
    match local_version(path).await {
        Ok(version) => Ok(version),
        Err(err) if err.raw_os_error() == Some(EXEC_FORMAT_ERROR) => {
            let remote = upload(&on.reached.session, on.name(), path)
                .await
                .map_err(|e| e.to_string())?;
            let out = on
                .reached
                .session
                .exec_checked(&[remote.as_str(), "--version"], b"")
                .await
                .map_err(|e| format!("on {}: {e}", on.name()))?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// A restatectl installed on `on`: its path and what its `--version` said.
async fn member_restatectl(on: &Surveyed) -> Option<(String, Result<String, String>)> {
    let out = on
        .reached
        .session
        .exec(&["sh", "-c", RESTATECTL_FIND], b"")
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (path, version) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    if path.trim().is_empty() {
        return None;
    }
    let version = if out.success() {
        Ok(version.to_string())
    } else {
        Err(format!(
            "`--version` failed on {}: {}",
            on.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    };
    Some((path.trim().to_string(), version))
}

/// The inventory's restatectl on `on` (content-addressed: uploaded once per version); its path
/// there.
async fn upload(
    session: &crate::ssh::Session,
    on: &str,
    local: &Path,
) -> Result<String, StepError> {
    let sha256 = server_binary::sha256_of(local).map_err(|e| StepError::host("(local)", e))?;
    let remote = RemoteFile {
        dir: RESTATECTL_DIR,
        name: "restatectl",
        sha256: &sha256,
    };
    let path = remote.path();
    let present = session
        .exec(&["test", "-x", path.as_str()], b"")
        .await
        .is_ok_and(|o| o.success());
    if !present {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| StepError::host("(local)", format!("{}: {e}", local.display())))?;
        session
            .upload(&remote, file, Encoding::Plain)
            .await
            .map_err(|e| StepError::host(on, format!("uploading restatectl: {e}")))?;
    }
    Ok(path)
}

/// What the plan's steps need of restatectl, held against what the survey found (`None`: the
/// survey saw no cluster, so no step needs it): problems for steps that cannot run without it
/// (a removal, a worker to activate), warnings for member restarts that lose their handover.
/// `handover_helps(host)`: whether moving that member's leaders first would spare clients a
/// stall (it leads partitions, and others can take them).
pub fn needs(
    steps: &[Step],
    finding: Option<&Finding>,
    handover_helps: impl Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let Some(finding) = finding.filter(|f| f.chosen.is_none()) else {
        return (Vec::new(), Vec::new());
    };
    let minor = finding
        .release
        .parse::<Version>()
        .map(|v| format!("restatectl {}.{}.x", v.line().0, v.line().1))
        .unwrap_or_else(|_| "restatectl of the cluster's release".to_string());
    let fix = format!(
        "put {minor} on this machine's PATH, or name one with [cluster] restatectl = \"path/to/restatectl\""
    );
    let mut problems = Vec::new();
    let mut ungentle = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::RemoveNode { .. } | Step::ActivateWorker { .. } => problems.push(format!(
                "step {} ({step}) needs restatectl, and none was found ({}); {fix}; nothing was changed",
                i + 1,
                finding.passed_over.join("; ")
            )),
            // A live change is verified through restatectl; without it, it restarts.
            Step::FixMember { host, .. }
            | Step::ReloadMember { host, .. }
            | Step::RollMember { host, .. }
            | Step::RestartMember { host, .. }
            | Step::UpgradeMember { host, .. }
                if handover_helps(host) =>
            {
                ungentle.push(host.as_str());
            }
            _ => {}
        }
    }
    let warnings = if ungentle.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{}: restarts without moving partition leaders and log sequencers away first (no restatectl found); clients may wait about {STALL_WITHOUT_HANDOVER_S} s per member; {fix} to hand them over first",
            ungentle.join(", ")
        )]
    };
    (problems, warnings)
}

/// restatectl as the survey found it, ready to run against the member it was found for.
pub(super) struct Restatectl {
    on: On,
    runs: Runs,
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
                let mut argv: Vec<&str> = vec![binary.as_str()];
                argv.extend_from_slice(args);
                argv.extend_from_slice(&["--address", self.address(), "--yes"]);
                Ok(self.exec(&argv).await?.trim().to_string())
            }
            Runs::Here { binary, forward } => run_here(binary, forward, args)
                .await
                .map(|out| out.trim().to_string())
                .map_err(|why| self.failed_here(binary, &why)),
        }
    }

    fn address(&self) -> &str {
        self.on.address.as_str()
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
                    async move { run_here(binary, forward, &args).await }
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
        let mut argv = vec!["sh", "-c", SCRIPT, "sh", binary, self.address()];
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

/// restatectl's words for a failure that a moment may fix (tonic's UNAVAILABLE, which Restate
/// marks `[retryable]`).
/// `restatectl logs reconfigure` for `log`: a new tail segment, on `nodeset` when given (else the
/// same one), sequenced by node `sequencer` when given.
pub fn reconfigure_call(log: u32, nodeset: Option<&[u32]>, sequencer: Option<u32>) -> Vec<String> {
    let mut call: Vec<String> = ["logs", "reconfigure", "--log-id"]
        .into_iter()
        .map(str::to_string)
        .chain([log.to_string()])
        .collect();
    if let Some(nodeset) = nodeset {
        let ids: Vec<String> = nodeset.iter().map(|n| format!("N{n}")).collect();
        call.extend(["--nodeset".to_string(), ids.join(",")]);
    }
    if let Some(sequencer) = sequencer {
        call.extend(["--sequencer".to_string(), format!("N{sequencer}")]);
    }
    call
}

fn transient(said: &str) -> bool {
    said.contains("[retryable]") || said.contains("currently unavailable")
}

/// One restatectl call on this machine against the forwarded port: `--single-address`, so it
/// never dials the nodes' advertised addresses itself (they may not be reachable from here).
/// Its standard output, or its last line of output when it failed.
async fn run_here(binary: &Path, forward: &Forward, args: &[&str]) -> Result<String, String> {
    let address = format!("http://{}/", forward.local());
    // restatectl 1.7.12's `sql` takes the host of `--single-address` but dials port 5122 (seen
    // with strace); with `--address` it asks the given address alone too.
    let flag = if args.first() == Some(&"sql") {
        "--address"
    } else {
        "--single-address"
    };
    let run = tokio::process::Command::new(binary)
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
        Ok(Restatectl { on, runs })
    }
}

/// Host and port of a fabric address (`http://n1.internal:5122/`), as its own host dials it.
fn fabric_target(address: &str) -> Option<(String, u16)> {
    let uri: http::Uri = address.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    Some((
        host.to_string(),
        uri.port_u16().unwrap_or(crate::admin::FABRIC_PORT),
    ))
}

#[cfg(test)]
mod tests;

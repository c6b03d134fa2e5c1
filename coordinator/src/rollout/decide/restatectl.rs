//! restatectl, for what Restate offers through it only: a node's worker and storage states and
//! its removal (read-modify-writes of the nodes configuration; restatedev/restate#5195 asks for
//! an RPC) and a log's new sequencer. See docs/scale-down.md.
//!
//! Found where operators keep it, in this order: the inventory's `[cluster] restatectl`
//! (uploaded to the member it runs on), `restatectl` on this machine's PATH (run here, against a
//! member through that member's SSH session: a forwarded local port, so nothing new has to be
//! reachable or installed), one installed on the member. The survey finds it (`locate` in `rollout/survey.rs`, looking
//! with `observe/restatectl.rs`, each candidate's version checked against the cluster's release by
//! [`judge`]); the plan's steps are held against what was found before anything changes
//! ([`needs`]); steps run it (`act/restatectl.rs`).

use std::fmt;
use std::path::PathBuf;

use restate_fleet_inventory::Fleet;
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::plan::Step;
use super::survey::{Survey, Surveyed};

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

pub fn transient(said: &str) -> bool {
    said.contains("[retryable]") || said.contains("currently unavailable")
}

#[cfg(test)]
mod tests;

//! Guide step 1, per host: the restate-server the inventory names. Keeps, installs or upgrades
//! each host's binary, and says which hosts lack the file (by sha256) and need the upload. A member
//! is upgraded at most one minor version at a time and never downgraded.

use std::path::PathBuf;

use futures_util::future::join_all;
use restate_fleet_inventory::DEFAULT_INSTALL_PATH;
use restate_fleet_proto::agent::{BinaryFile, Operation, Reply};
use serde::Serialize;

use super::survey::{Class, Survey, Surveyed, parse_version};
use crate::reach::{ReachError, Reached};
use crate::server_binary::{LocalServer, LocalServers, REMOTE_DIR, REMOTE_NAME};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The host runs the inventory's version already.
    Keep,
    /// A host that is not a member yet gets the binary (`from`: what it had).
    Install { from: Option<String> },
    /// A member is upgraded: restarted on the new binary behind the health gate.
    Upgrade { from: String },
}

/// What happens to one host's restate-server.
#[derive(Debug, Clone, Serialize)]
pub struct HostServer {
    #[serde(flatten)]
    pub change: Change,
    pub version: String,
    /// Where the binary runs from on the host.
    pub target: PathBuf,
    /// The host lacks a file with this sha256 (neither in place nor uploaded before).
    pub upload: bool,
    /// Where the upload lands.
    pub staged: PathBuf,
    #[serde(skip)]
    pub local: LocalServer,
}

impl HostServer {
    pub fn changes(&self) -> bool {
        self.change != Change::Keep
    }
}

/// Looks at every host's binary (hash cached on the host) and decides; a host that cannot be
/// served (no binary for its architecture, a newer version, a skipped minor) gets a problem.
pub async fn survey(
    local: &LocalServers,
    survey: &mut Survey,
    allow_version_skip: bool,
) -> Result<(), ReachError> {
    let looks = survey.hosts.iter().map(|host| async move {
        let Some(binary) = local.for_arch(&host.facts.arch) else {
            return Ok::<_, ReachError>(Err(format!(
                "{}: the inventory's restate-server has no binary for {}; add one under `[cluster] restate-server.path.{}`",
                host.name(),
                host.facts.arch,
                host.facts.arch
            )));
        };
        let target = local
            .install_path
            .clone()
            .or_else(|| host.facts.restate_server.as_ref().map(|b| b.path.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_INSTALL_PATH));
        let staged = PathBuf::from(format!("{REMOTE_DIR}/{REMOTE_NAME}-{}", binary.sha256));
        let [in_place, uploaded] = inspect(&host.reached, [target.clone(), staged.clone()]).await?;
        Ok(decide(host, local, binary, in_place, uploaded, target, staged, allow_version_skip))
    });
    let results = join_all(looks).await;
    for (host, result) in survey.hosts.iter_mut().zip(results) {
        match result? {
            Ok(server) => host.server = Some(server),
            Err(problem) => survey.problems.push(problem),
        }
    }
    Ok(())
}

async fn inspect(reached: &Reached, paths: [PathBuf; 2]) -> Result<[BinaryFile; 2], ReachError> {
    let op = Operation::ServerBinaries {
        paths: paths.to_vec(),
    };
    let unexpected = |detail: String| ReachError::AgentGone {
        host: reached.name().to_string(),
        detail,
    };
    match reached.call(op).await? {
        Reply::ServerBinaries(found) => <[BinaryFile; 2]>::try_from(found.binaries)
            .map_err(|b| unexpected(format!("answered {} binaries for 2 paths", b.len()))),
        other => Err(unexpected(format!("answered {other:?} to server_binaries"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    host: &Surveyed,
    local: &LocalServers,
    binary: &LocalServer,
    in_place: BinaryFile,
    uploaded: BinaryFile,
    target: PathBuf,
    staged: PathBuf,
    allow_version_skip: bool,
) -> Result<HostServer, String> {
    let name = host.name();
    let wanted = &local.version;
    let has = |file: &BinaryFile| file.sha256.as_deref() == Some(binary.sha256.as_str());
    let change = if has(&in_place) || !in_place.exists && host.class == Class::Member {
        // A member whose binary is elsewhere than the install path keeps what it runs.
        Change::Keep
    } else if !in_place.exists {
        Change::Install { from: None }
    } else {
        let current = in_place.version.clone().unwrap_or_default();
        match (parse_version(&current), parse_version(wanted)) {
            (Some(have), Some(want)) if have == want => Change::Keep,
            (Some(have), Some(want)) if have > want => {
                return Err(format!(
                    "{name}: runs restate-server {current} at {}, newer than the inventory's {wanted}; restate-fleet never downgrades a node. Set `[cluster] restate-server` to {current} or newer",
                    target.display()
                ));
            }
            (Some(have), Some(want)) if host.class == Class::Member => {
                let skips = want.0 != have.0 || want.1 > have.1 + 1;
                if skips && !allow_version_skip {
                    return Err(format!(
                        "{name}: upgrading restate-server {current} to {wanted} skips a minor version; Restate supports upgrades one minor version at a time (its data of {}.{} is read by {}.{}, not necessarily by later ones). Upgrade to {}.{}.x first, or pass --allow-version-skip if its release notes allow the jump",
                        have.0,
                        have.1,
                        have.0,
                        have.1 + 1,
                        have.0,
                        have.1 + 1
                    ));
                }
                Change::Upgrade { from: current }
            }
            (_, _) if host.class == Class::Member => {
                return Err(format!(
                    "{name}: cannot tell the version of {} ({}); check that it runs",
                    target.display(),
                    in_place.version_output.unwrap_or_default()
                ));
            }
            _ => Change::Install {
                from: Some(current).filter(|c| !c.is_empty()),
            },
        }
    };
    Ok(HostServer {
        upload: change != Change::Keep && !has(&uploaded),
        change,
        version: wanted.clone(),
        target,
        staged,
        local: binary.clone(),
    })
}

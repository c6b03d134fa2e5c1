//! Guide step 1, per host: the restate-server the inventory names. Keeps, installs or upgrades
//! each host's binary, and says which hosts lack the file (by sha256) and need the upload. A member
//! is upgraded at most one minor version at a time and never downgraded.

use std::path::PathBuf;

use restate_fleet_proto::agent::BinaryFile;
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use super::survey::{Class, Surveyed};
use crate::rollout::observe::binaries::Looked;
use crate::server_binary::{LocalServer, LocalServers};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// What happens to `host`'s restate-server, given what it has (`None`: the inventory has no
/// binary for its architecture); a host that cannot be served (that, a newer version, a skipped
/// minor) gets a problem instead.
pub fn decide(
    host: &Surveyed,
    local: &LocalServers,
    looked: Option<Looked>,
    allow_version_skip: bool,
) -> Result<HostServer, String> {
    let Some(Looked {
        binary,
        in_place,
        uploaded,
        target,
        staged,
    }) = looked
    else {
        return Err(format!(
            "{}: the inventory's restate-server has no binary for {}; add one under `[cluster] restate-server.path.{}`",
            host.name(),
            host.facts.arch,
            host.facts.arch
        ));
    };
    let has = |file: &BinaryFile| file.sha256.as_deref() == Some(binary.sha256.as_str());
    let found = Found {
        exists: in_place.exists,
        same_file: has(&in_place),
        version: in_place.version.as_deref(),
        version_output: in_place.version_output.as_deref().unwrap_or_default(),
    };
    let change = change_for(&host.class, &found, &local.version, allow_version_skip)
        .map_err(|why| format!("{}: {why} ({})", host.name(), target.display()))?;
    Ok(HostServer {
        upload: change != Change::Keep && !has(&uploaded),
        change,
        version: local.version.clone(),
        target,
        staged,
        local: binary,
    })
}

/// What a host has at the install target.
struct Found<'a> {
    exists: bool,
    /// The very file the inventory names (same sha256).
    same_file: bool,
    version: Option<&'a str>,
    version_output: &'a str,
}

/// Why a host's restate-server cannot become the inventory's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error(
        "runs restate-server {current}, newer than the inventory's {wanted}; restate-fleet never downgrades a node. Set `[cluster] restate-server` to {current} or newer"
    )]
    Downgrade { current: String, wanted: String },
    #[error(
        "upgrading restate-server {current} to {wanted} skips a minor version; Restate supports upgrades one minor version at a time (data written by {major}.{minor} is read by {major}.{next}, not necessarily by later ones). Upgrade to {major}.{next}.x first, or pass --allow-version-skip if the release notes allow the jump"
    )]
    SkipsMinor {
        current: String,
        wanted: String,
        major: u64,
        minor: u64,
        next: u64,
    },
    #[error("cannot tell the version of its restate-server ({output}); check that it runs")]
    UnknownVersion { output: String },
}

fn change_for(
    class: &Class,
    found: &Found<'_>,
    wanted: &str,
    allow_version_skip: bool,
) -> Result<Change, Refusal> {
    let member = *class == Class::Member;
    // A member whose binary is elsewhere than the install path keeps what it runs.
    if found.same_file || !found.exists && member {
        return Ok(Change::Keep);
    }
    if !found.exists {
        return Ok(Change::Install { from: None });
    }
    let current = found.version.unwrap_or_default();
    match (
        current.parse::<Version>().ok(),
        wanted.parse::<Version>().ok(),
    ) {
        // Another build of the same version: nothing to gain from a restart.
        (Some(have), Some(want)) if have == want => Ok(Change::Keep),
        (Some(have), Some(want)) if have > want => Err(Refusal::Downgrade {
            current: current.into(),
            wanted: wanted.into(),
        }),
        (Some(have), Some(want)) if member => {
            let skips = want.major != have.major || want.minor > have.minor + 1;
            if skips && !allow_version_skip {
                let (major, minor) = have.line();
                return Err(Refusal::SkipsMinor {
                    current: current.into(),
                    wanted: wanted.into(),
                    major,
                    minor,
                    next: minor + 1,
                });
            }
            Ok(Change::Upgrade {
                from: current.to_string(),
            })
        }
        _ if member => Err(Refusal::UnknownVersion {
            output: found.version_output.into(),
        }),
        // Not a member yet: no data to carry over, any binary is simply replaced.
        _ => Ok(Change::Install {
            from: Some(current.to_string()).filter(|c| !c.is_empty()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(version: &str) -> Found<'_> {
        Found {
            exists: true,
            same_file: false,
            version: Some(version),
            version_output: "",
        }
    }

    #[test]
    fn members_upgrade_one_minor_at_a_time_and_never_down() {
        let member = Class::Member;
        assert_eq!(
            change_for(&member, &found("1.6.2"), "1.7.12", false),
            Ok(Change::Upgrade {
                from: "1.6.2".into()
            })
        );
        let skip = change_for(&member, &found("1.5.3"), "1.7.12", false).unwrap_err();
        assert!(
            matches!(skip, Refusal::SkipsMinor { next: 6, .. })
                && skip.to_string().contains("Upgrade to 1.6.x first"),
            "{skip}"
        );
        assert!(change_for(&member, &found("1.5.3"), "1.7.12", true).is_ok());
        let major = change_for(&member, &found("1.7.12"), "2.0.0", false).unwrap_err();
        assert!(matches!(major, Refusal::SkipsMinor { .. }), "{major}");
        let down = change_for(&member, &found("1.7.12"), "1.7.10", true).unwrap_err();
        assert!(matches!(down, Refusal::Downgrade { .. }), "{down}");
        assert_eq!(
            change_for(&member, &found("1.7.12"), "1.7.12", false),
            Ok(Change::Keep)
        );
        // A release candidate is not yet its release, and a release is newer than its candidate.
        assert_eq!(
            change_for(&member, &found("1.8.0-rc.1"), "1.8.0", false),
            Ok(Change::Upgrade {
                from: "1.8.0-rc.1".into()
            })
        );
        let down = change_for(&member, &found("1.8.0"), "1.8.0-rc.1", false).unwrap_err();
        assert!(matches!(down, Refusal::Downgrade { .. }), "{down}");
    }

    #[test]
    fn new_hosts_get_the_binary_whatever_they_had() {
        let new = Class::New;
        let missing = Found {
            exists: false,
            same_file: false,
            version: None,
            version_output: "",
        };
        assert_eq!(
            change_for(&new, &missing, "1.7.12", false),
            Ok(Change::Install { from: None })
        );
        assert_eq!(
            change_for(&new, &found("1.5.3"), "1.7.12", false),
            Ok(Change::Install {
                from: Some("1.5.3".into())
            })
        );
        assert!(change_for(&new, &found("1.8.0"), "1.7.12", false).is_err());
        let unreadable = Found {
            version: None,
            version_output: "exec format error",
            ..found("")
        };
        assert!(change_for(&new, &unreadable, "1.7.12", false).is_ok());
        assert!(change_for(&Class::Member, &unreadable, "1.7.12", false).is_err());
    }
}

//! One step of a plan, and the line `plan` and the journal show for it.

use restate_fleet_inventory::{TlsMode, parse_replication};
use serde::{Deserialize, Serialize};

use crate::rollout::decide::desired::METADATA_ADDRESSES;
use crate::rollout::observe::leaving::Holdings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A member whose restate-server stopped (a crash, a reboot with the unit not started)
    /// starts again with its own service manager, behind the health gate, before anything else.
    StartMember { host: String },
    /// Upload the inventory's restate-server to the hosts that lack it (changes no service).
    StageServer {
        hosts: Vec<String>,
        version: String,
        mib: u64,
    },
    /// Guide step 1: a member gets the new binary and restarts, behind the health gate; its old
    /// binary comes back when it does not.
    UpgradeMember {
        host: String,
        from: String,
        to: String,
    },
    /// Hosts that are not members yet get the binary.
    InstallServer { hosts: Vec<String>, version: String },
    /// Guide steps 2-4 on a member: roles, loglet pin, snapshot repository; with
    /// `metadata_list`, guide step 6's full metadata server list too, so that one restart does
    /// what the guide does in two. Restarts it.
    FixMember {
        host: String,
        #[serde(default)]
        metadata_list: bool,
        /// The restate.toml keys that change (see [`keys_text`]).
        #[serde(default)]
        changes: Vec<String>,
    },
    /// Guide step 3: the cluster's log provider to `replicated`, then every log's tail on it.
    ReplicatedLoglet,
    /// Guide step 5: every partition snapshotted with trim, then no `local` segment left.
    Snapshot,
    /// Guide step 6: write the new nodes' files and start them; wait until they joined.
    /// `tls`: the fabric TLS mode they start at, their certificate and key put in place first.
    JoinNew {
        hosts: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<TlsMode>,
    },
    /// No cluster yet: start every node and provision the cluster on the first metadata server.
    /// `replication`: partition and log replication to provision with (`--replication`, else
    /// the inventory's; Restate's default 1 when neither says).
    Provision {
        hosts: Vec<String>,
        on: String,
        #[serde(default)]
        replication: Option<u32>,
        /// The same as Restate's replication property, with zones or regions when the inventory
        /// asks for them (`{node: 3, zone: 2}`).
        #[serde(default)]
        property: Option<String>,
        /// As for [`Step::JoinNew`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<TlsMode>,
    },
    /// A member's change that a running server applies from its file (`decide/reload.rs`):
    /// written, and held until its `config` table shows it; restarted behind the usual gates
    /// when it does not.
    ReloadMember {
        host: String,
        #[serde(default)]
        changes: Vec<String>,
    },
    /// Guide step 6: a member gets the full metadata server list; restarted one at a time.
    RollMember {
        host: String,
        #[serde(default)]
        changes: Vec<String>,
    },
    /// `restate-fleet restart`: a member restarts as it is (same file, same binary), behind the
    /// same handover and gates as a rolling change; with `reboot` (`restart --reboot`), its whole
    /// host reboots and restate-server must come back by itself.
    RestartMember {
        host: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reboot: bool,
    },
    /// A running 1.7+ member's new metadata server list, written without a restart: once
    /// joined, its metadata client drops the configured addresses and follows the members in the
    /// nodes configuration (restate 1.7, `metadata-providers/src/replicated.rs`); the file's
    /// list only counts when it starts again.
    SetMetadataList { host: String },
    /// Guide step 8: raise partition and log replication.
    RaiseReplication { to: u32, property: String },
    /// A member's worker left draining (by a run cut short while it restarted the member, or
    /// by hand) takes partitions again.
    ActivateWorker { host: String },
    /// The logs' nodeset size as `[cluster] nodeset-size` says (0: auto).
    NodesetSize { from: u32, to: u32 },
    /// Lower partition and log replication, before nodes leave.
    LowerReplication { to: u32, property: String },
    /// A node no inventory host names leaves the cluster (docs/scale-down.md): drained, out of
    /// the metadata cluster, out of every nodeset, stopped and disabled, removed, its data kept
    /// aside on its host.
    RemoveNode { node: String, holds: Holdings },
    /// `[cluster] metadata-servers` names a node of the cluster that is no metadata member: it
    /// joins the metadata cluster (membership.rs).
    AddMetadataMember { host: String, id: u32 },
    /// A metadata member the list no longer names leaves the metadata cluster; it stays a
    /// standby metadata server while it keeps the role.
    RemoveMetadataMember { host: String, id: u32 },
    /// Fabric TLS: each member's certificate, key and the CA's certificate put in place beside
    /// its restate.toml (no restart: a node at `allow` or above re-reads them within
    /// `refresh-interval`); `issue`: the hosts whose certificate the CA (made first when `ca`
    /// names its directory) issues now.
    TlsFiles {
        hosts: Vec<String>,
        #[serde(default)]
        issue: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca: Option<String>,
    },
    /// Fabric TLS: a member moves to `mode`, restarted behind the usual handover and gates and
    /// seen alive by the others; every host passes each mode before any goes on.
    TlsMode { host: String, mode: TlsMode },
    /// Fabric TLS at `require`: every node's fabric port refuses plain text and TLS without a
    /// certificate of the cluster's CA.
    TlsRefusals,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::StartMember { host } => write!(
                f,
                "{host}: start restate-server (stopped; a member of the cluster), wait until healthy and alive in the cluster"
            ),
            Step::StageServer {
                hosts,
                version,
                mib,
            } => write!(
                f,
                "{}: upload restate-server {version} ({mib} MiB, gzip on the wire)",
                hosts.join(", ")
            ),
            Step::UpgradeMember { host, from, to } => write!(
                f,
                "{host}: upgrade restate-server {from} -> {to}, restart, wait until healthy and every partition led (the old binary comes back if not)"
            ),
            Step::InstallServer { hosts, version } => {
                write!(f, "{}: install restate-server {version}", hosts.join(", "))
            }
            Step::FixMember { host, changes, .. } => write!(
                f,
                "{host}: set {}, restart, wait until healthy",
                keys_text(changes)
            ),
            Step::ReplicatedLoglet => write!(
                f,
                "cluster: switch the log provider to replicated and wait until every log's tail is replicated"
            ),
            Step::Snapshot => write!(
                f,
                "cluster: snapshot every partition with log trim; check that no log keeps a local segment"
            ),
            Step::JoinNew { hosts, tls } => write!(
                f,
                "{}: write restate.toml (auto-provision = false){}, start, wait until alive and joined",
                hosts.join(", "),
                tls_files_text(*tls)
            ),
            Step::Provision {
                hosts,
                on,
                replication,
                property,
                tls,
            } => {
                write!(
                    f,
                    "{}: write restate.toml{}, start; provision the cluster on {on}",
                    hosts.join(", "),
                    tls_files_text(*tls)
                )?;
                match (replication, property) {
                    (Some(to), Some(p)) if spreads(p) => write!(f, " with replication {to} ({p})"),
                    (Some(to), _) => write!(f, " with replication {to}"),
                    (None, _) => Ok(()),
                }
            }
            Step::RestartMember {
                host,
                reboot: false,
            } => write!(
                f,
                "{host}: restart restate-server (rolling restart), wait until healthy"
            ),
            Step::RestartMember { host, reboot: true } => write!(
                f,
                "{host}: reboot the host (rolling reboot), wait for SSH and for restate-server to start by itself, wait until healthy"
            ),
            Step::ReloadMember { host, changes } => write!(
                f,
                "{host}: set {} live (Restate applies it without a restart), wait until its config table shows it",
                keys_text(changes)
            ),
            Step::RollMember { host, changes } => write!(
                f,
                "{host}: set {}, restart (quorum kept), wait until healthy",
                keys_text(changes)
            ),
            Step::SetMetadataList { host } => write!(
                f,
                "{host}: set {METADATA_ADDRESSES}, no restart (the running server follows the metadata members itself)"
            ),
            Step::RaiseReplication { to, property } if spreads(property) => write!(
                f,
                "cluster: set partition and log replication to {to} copies spread as {property}"
            ),
            Step::RaiseReplication { to, .. } => {
                write!(f, "cluster: raise partition and log replication to {to}")
            }
            Step::ActivateWorker { host } => write!(
                f,
                "{host}: worker draining (no partitions run on it): set it active again"
            ),
            Step::LowerReplication { to, property } if spreads(property) => write!(
                f,
                "cluster: lower partition and log replication to {to} copies spread as {property}"
            ),
            Step::LowerReplication { to, .. } => {
                write!(f, "cluster: lower partition and log replication to {to}")
            }
            Step::NodesetSize { from, to } => write!(
                f,
                "cluster: nodeset size {} -> {}",
                nodeset_size_text(*from),
                nodeset_size_text(*to)
            ),
            Step::AddMetadataMember { host, id } => write!(
                f,
                "{host} (N{id}): joins the metadata cluster (AddNode, as restatectl metadata-server add-node N{id}), quorum kept, wait until it is a member"
            ),
            Step::RemoveMetadataMember { host, id } => write!(
                f,
                "{host} (N{id}): leaves the metadata cluster (RemoveNode, as restatectl metadata-server remove-node N{id}), quorum kept; a standby from then on while it keeps the metadata-server role (auto-join = false)"
            ),
            Step::TlsFiles { hosts, issue, ca } => {
                write!(
                    f,
                    "{}: put the fabric TLS certificate, key (0600, <redacted>) and CA beside restate.toml, no restart",
                    hosts.join(", ")
                )?;
                if let Some(ca) = ca {
                    write!(f, "; make the CA in {ca}")?;
                }
                if !issue.is_empty() {
                    write!(f, "; issue certificates for {}", issue.join(", "))?;
                }
                Ok(())
            }
            Step::TlsMode { host, mode } => write!(
                f,
                "{host}: fabric TLS {mode}{}, restart, wait until healthy and alive to the others",
                match mode {
                    TlsMode::Prefer | TlsMode::Require => " (advertises https://)",
                    TlsMode::Allow | TlsMode::Off => "",
                }
            ),
            Step::TlsRefusals => write!(
                f,
                "cluster: check that every node's fabric port refuses plain text and TLS without a certificate"
            ),
            Step::RemoveNode { node, holds } => {
                write!(
                    f,
                    "{node} ({holds}): leaves the cluster: log storage read-only, worker draining, "
                )?;
                if holds.metadata_member {
                    write!(f, "out of the metadata cluster, ")?;
                }
                write!(f, "snapshots with trim until no log segment names it, ")?;
                match &holds.unreachable {
                    None => write!(
                        f,
                        "restate-server stopped and disabled, removed from the cluster, its data directory kept renamed on its host"
                    ),
                    Some(why) => write!(
                        f,
                        "removed from the cluster; its host is not reachable ({why}): clean it up by hand"
                    ),
                }
            }
        }
    }
}

/// What a new node gets besides its restate.toml when it starts with fabric TLS.
fn tls_files_text(tls: Option<TlsMode>) -> String {
    tls.map(|mode| {
        format!(" with fabric TLS {mode} (certificate, key 0600 <redacted>, CA beside it)")
    })
    .unwrap_or_default()
}
/// The keys a member's restart writes, as its step line names them: three or more under one table
/// read as that table (`worker.snapshots.* (7 keys)`); none is the environment file alone (the
/// snapshot repository's credentials).
pub fn keys_text(keys: &[String]) -> String {
    if keys.is_empty() {
        return "the environment file".to_string();
    }
    let parent = |key: &str| key.rsplit_once('.').map(|(p, _)| p.to_string());
    let mut shown: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let table = parent(key);
        let siblings = keys.iter().filter(|k| parent(k) == table).count();
        match table {
            Some(table) if siblings >= 3 => {
                if !seen.contains(&table) {
                    shown.push(format!("{table}.* ({siblings} keys)"));
                    seen.push(table);
                }
            }
            _ => shown.push(key.clone()),
        }
    }
    shown.join(", ")
}

/// Whether a replication property places copies by zone or region.
fn spreads(property: &str) -> bool {
    parse_replication(property).is_ok_and(|r| r.is_location_aware())
}

/// A nodeset size as operators read it: 0 is Restate's choice.
pub fn nodeset_size_text(size: u32) -> String {
    match size {
        0 => "auto".to_string(),
        n => n.to_string(),
    }
}

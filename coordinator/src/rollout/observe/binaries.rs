//! Each host's restate-server against the inventory's: the file at the install target and the
//! staged upload, hashed on the host (the hash is cached there).

use std::path::PathBuf;

use futures_util::future::join_all;
use restate_fleet_inventory::DEFAULT_INSTALL_PATH;
use restate_fleet_proto::agent::{BinaryFile, Facts, Operation, ServerBinaries};

use crate::reach::{ReachError, Reached};
use crate::server_binary::{LocalServer, LocalServers, REMOTE_DIR, REMOTE_NAME};

/// What one host has where the inventory's restate-server goes.
pub struct Looked {
    /// The inventory's binary for the host's architecture.
    pub binary: LocalServer,
    /// The file at the install target.
    pub in_place: BinaryFile,
    /// The upload of an earlier run, at `staged`.
    pub uploaded: BinaryFile,
    /// Where the binary runs from on the host.
    pub target: PathBuf,
    /// Where the upload lands.
    pub staged: PathBuf,
}

/// Every host's binaries, in the order of `hosts`; `None` where the inventory has no binary for
/// the host's architecture.
pub async fn look(
    local: &LocalServers,
    hosts: &[(&Reached, &Facts)],
) -> Result<Vec<Option<Looked>>, ReachError> {
    let looks = hosts.iter().map(|(reached, facts)| async move {
        let Some(binary) = local.for_arch(&facts.arch) else {
            return Ok(None);
        };
        let target = local
            .install_path
            .clone()
            .or_else(|| facts.restate_server.as_ref().map(|b| b.path.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_INSTALL_PATH));
        let staged = PathBuf::from(format!("{REMOTE_DIR}/{REMOTE_NAME}-{}", binary.sha256));
        let [in_place, uploaded] = inspect(reached, [target.clone(), staged.clone()]).await?;
        Ok(Some(Looked {
            binary: binary.clone(),
            in_place,
            uploaded,
            target,
            staged,
        }))
    });
    join_all(looks).await.into_iter().collect()
}

async fn inspect(reached: &Reached, paths: [PathBuf; 2]) -> Result<[BinaryFile; 2], ReachError> {
    let op = Operation::ServerBinaries {
        paths: paths.to_vec(),
    };
    let unexpected = |detail: String| ReachError::AgentGone {
        host: reached.name().to_string(),
        detail,
    };
    let found: ServerBinaries = reached.ask(op).await?;
    <[BinaryFile; 2]>::try_from(found.binaries)
        .map_err(|b| unexpected(format!("answered {} binaries for 2 paths", b.len())))
}

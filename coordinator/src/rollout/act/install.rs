//! Guide step 1 carried out: the inventory's restate-server uploaded where it is missing, members
//! upgraded one at a time behind the health gate (the old binary put back when the node does not
//! come back), hosts that join given the binary and what their service needs.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::join_all;
use restate_fleet_inventory::DEFAULT_INSTALL_PATH;
use restate_fleet_proto::agent::{
    DEFAULT_NOFILE, DEFAULT_WORKING_DIR, InstallReport, Operation, ServiceSetup, ServiceSetupReport,
};
use tokio::io::{AsyncRead, ReadBuf};

use super::executor::Executor;
use crate::rollout::decide::server::HostServer;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;
use crate::server_binary::{REMOTE_DIR, REMOTE_NAME};
use crate::ssh::{Encoding, RemoteFile};

impl Executor<'_> {
    pub(super) async fn stage_server(&mut self, names: &[String]) -> Result<(), StepError> {
        let hosts = names
            .iter()
            .map(|n| {
                let host = self.host(n)?;
                let server = server_of(host)?;
                Ok((host, server))
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        // One gzip copy per binary, made once and cached on this machine.
        let mut compressed = Vec::new();
        for (_, server) in &hosts {
            if compressed
                .iter()
                .any(|(sha, _)| *sha == server.local.sha256)
            {
                continue;
            }
            self.progress.host(
                "(local)",
                &format!("compressing {} for the upload", server.local.path.display()),
            );
            let local = server.local.clone();
            let gz = tokio::task::spawn_blocking(move || local.compressed())
                .await
                .map_err(|e| format!("compressing restate-server: {e}"))
                .and_then(|gz| gz)
                .map_err(|e| StepError::host("(local)", e))?;
            compressed.push((server.local.sha256.clone(), gz));
        }
        let this = &*self;
        let uploads = hosts.iter().map(|(host, server)| {
            let gz = compressed
                .iter()
                .find(|(sha, _)| *sha == server.local.sha256)
                .map(|(_, gz)| gz.clone());
            async move {
                let gz = gz.ok_or_else(|| StepError::host(host.name(), "no compressed binary"))?;
                this.upload(host, server, &gz).await
            }
        });
        let results = join_all(uploads).await;
        let results = results
            .into_iter()
            .zip(&hosts)
            .map(|(result, (_, server))| {
                result.map(|bytes| {
                    format!(
                        "restate-server {} uploaded ({} MiB on the wire)",
                        server.version,
                        bytes.div_ceil(1 << 20)
                    )
                })
            })
            .collect();
        self.settle_hosts(names, results)
    }

    /// Streams the gzip copy to the host; returns the bytes sent.
    pub(super) async fn upload(
        &self,
        host: &Surveyed,
        server: &HostServer,
        gz: &Path,
    ) -> Result<u64, StepError> {
        let name = host.name();
        let local =
            |e: std::io::Error| StepError::host("(local)", format!("{}: {e}", gz.display()));
        let file = tokio::fs::File::open(gz).await.map_err(local)?;
        let total = file.metadata().await.map_err(local)?.len();
        let report = |sent: u64| {
            self.progress.host(
                name,
                &format!(
                    "uploading restate-server {}: {} of {} MiB",
                    server.version,
                    sent >> 20,
                    total >> 20
                ),
            );
        };
        let mut counting = Counting {
            inner: file,
            sent: 0,
            step: (total / 10).max(1),
            next: 0,
            report: &report,
        };
        let remote = RemoteFile {
            dir: REMOTE_DIR,
            name: REMOTE_NAME,
            sha256: &server.local.sha256,
        };
        host.reached
            .session
            .upload(&remote, &mut counting, Encoding::Gzip)
            .await
            .map_err(crate::reach::ReachError::from)?;
        Ok(counting.sent)
    }

    pub(super) async fn install_server(&mut self, names: &[String]) -> Result<(), StepError> {
        let this = &*self;
        let installs = names.iter().map(|name| async move {
            let host = this.host(name)?;
            let server = server_of(host)?;
            this.progress.host(
                name,
                &format!("installing restate-server {}", server.version),
            );
            this.install(host, server).await?;
            remove_staged(host, server).await;
            Ok::<_, StepError>(format!(
                "restate-server {} installed at {}",
                server.version,
                server.target.display()
            ))
        });
        let results = join_all(installs).await;
        self.settle_hosts(names, results)
    }

    pub(super) async fn install(
        &self,
        host: &Surveyed,
        server: &HostServer,
    ) -> Result<InstallReport, StepError> {
        let op = Operation::InstallServer {
            staged: server.staged.clone(),
            sha256: server.local.sha256.clone(),
            target: server.target.clone(),
            version: server.version.clone(),
            dry_run: false,
        };
        Ok(host.reached.ask(op).await?)
    }

    /// What a joining host's service needs: the user, the data directory, and with systemd a
    /// unit when there is none. Changes nothing that is in place already.
    pub(super) async fn ensure_service(&self, host: &Surveyed) -> Result<(), StepError> {
        let binary = host
            .server
            .as_ref()
            .map(|s| s.target.clone())
            .or_else(|| host.facts.restate_server.as_ref().map(|b| b.path.clone()))
            .unwrap_or_else(|| DEFAULT_INSTALL_PATH.into());
        let setup = ServiceSetup {
            service: host.reached.service_manager(),
            binary,
            config_path: host.reached.host.config_path.clone().into(),
            data_dir: DEFAULT_WORKING_DIR.into(),
            user: host.reached.host.service_user.clone(),
            nofile: DEFAULT_NOFILE,
            dry_run: false,
        };
        let report: ServiceSetupReport = host.reached.ask(Operation::EnsureService(setup)).await?;
        if report.changed {
            self.progress.host(host.name(), &report.actions.join("; "));
        }
        Ok(())
    }
}

pub(super) fn server_of(host: &Surveyed) -> Result<&HostServer, StepError> {
    host.server
        .as_ref()
        .ok_or_else(|| StepError::host(host.name(), "no restate-server planned"))
}

/// The upload is in place now; 200+ MB need not stay twice on the host.
pub(super) async fn remove_staged(host: &Surveyed, server: &HostServer) {
    let staged = server.staged.display().to_string();
    if let Err(err) = host
        .reached
        .session
        .exec(&["rm", "-f", "--", staged.as_str()], b"")
        .await
    {
        tracing::warn!("{}: cannot remove {staged}: {err}", host.name());
    }
}

/// Counts what the upload reads, and reports every `step` bytes.
struct Counting<'a, R> {
    inner: R,
    sent: u64,
    step: u64,
    next: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.sent += read;
        if self.sent >= self.next {
            (self.report)(self.sent);
            self.next = self.sent + self.step;
        }
        poll
    }
}

//! Carrying out a live change (`decide/reload.rs` decides which): the member's file is written
//! with no restart, then its `config` table is read through restatectl until it shows every
//! changed value. A server that does not show them (it rejected the file, or runs a release that
//! does not apply the key) is restarted behind the usual handover and gates, and the recap says
//! why.

use std::time::{Duration, Instant};

use super::executor::{Executor, Restart};
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::decide::{plan, reload};
use crate::rollout::error::StepError;

/// Restate reloads its file about 3 s after a change (docs/config-reload.md): three times that.
const SHOWN_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

impl Executor<'_> {
    pub(super) async fn reload_member(&mut self, host: &Surveyed) -> Result<(), StepError> {
        let name = host.name().to_string();
        let report = self.write_without_restart(host).await?;
        let keys = report.preview.changed_keys.clone();
        if !report.preview.changed {
            self.progress.host(&name, "restate.toml already up to date");
            return Ok(());
        }
        let text = plan::keys_text(&keys);
        self.progress.host(
            &name,
            &format!("{text} written; waiting for restate-server to load it"),
        );
        let started = Instant::now();
        let patch = plan::full_patch(self.fleet, host);
        match self.shown(host, &patch, &keys).await {
            Ok(()) => {
                self.recap.changed(
                    &name,
                    &format!("restate.toml: set {text}, applied live (no restart)"),
                );
                self.progress.host(
                    &name,
                    &format!(
                        "its config table shows it after {:.1} s: applied without a restart",
                        started.elapsed().as_secs_f64()
                    ),
                );
                Ok(())
            }
            Err(why) => {
                self.recap.changed(
                    &name,
                    &format!("restate.toml: set {text}; not shown live ({why}), so restarted"),
                );
                self.progress
                    .warn(&format!("{name}: {why}; restarting it instead"));
                self.restart_member(host, Restart::AsItIs, "live change")
                    .await
            }
        }
    }

    /// Whether the member's `config` table shows every changed key's new value within
    /// [`SHOWN_WITHIN`]; why not, otherwise.
    pub(super) async fn shown(
        &self,
        host: &Surveyed,
        patch: &[restate_fleet_proto::agent::PatchOp],
        keys: &[String],
    ) -> Result<(), String> {
        let expected = reload::expected(patch, keys)
            .ok_or_else(|| "a changed key has no plain value to look for".to_string())?;
        let view = crate::admin::gather(&self.clients())
            .await
            .map_err(|e| format!("no cluster view to find its node id: {e}"))?;
        let node = view
            .node(&host.reached.host.node_name)
            .ok_or_else(|| "not in the cluster".to_string())?;
        let ctl = self
            .restatectl()
            .await
            .map_err(|e| format!("no restatectl to read its config table: {e}"))?;
        let query = reload::query(&format!("N{}", node.id), &expected);
        let deadline = Instant::now() + SHOWN_WITHIN;
        let mut last = String::from("not asked yet");
        while Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            match ctl.run(&["sql", &query, "--json"]).await {
                Ok(json) => match reload::rows(&json) {
                    Ok(rows) => {
                        let missing = reload::not_yet(&expected, &rows);
                        if missing.is_empty() {
                            return Ok(());
                        }
                        last = missing.join("; ");
                    }
                    Err(e) => last = e,
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "after {} s its config table says: {last}",
            SHOWN_WITHIN.as_secs()
        ))
    }
}

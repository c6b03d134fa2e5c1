//! A member's metadata server list written without a restart.

use super::executor::Executor;
use crate::rollout::decide::plan;
use crate::rollout::decide::survey::Surveyed;
use crate::rollout::error::StepError;

impl Executor<'_> {
    /// Writes a member's new metadata server list and leaves the server running
    /// ([`Step::SetMetadataList`] says why that is enough).
    pub(super) async fn set_metadata_list(&mut self, host: &Surveyed) -> Result<(), StepError> {
        let name = host.name();
        let report = self.write_without_restart(host).await?;
        if report.preview.changed {
            self.recap.changed(
                name,
                &format!(
                    "restate.toml: set {}, not restarted (read at its next start)",
                    plan::keys_text(&report.preview.changed_keys)
                ),
            );
        }
        Ok(())
    }
}

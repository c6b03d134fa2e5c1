//! Guide step 7 after a run: the gates once more, then what the cluster must look like.

use std::time::Duration;

use restate_fleet_inventory::Fleet;

use crate::admin::ClusterView;
use crate::rollout::decide::survey::Survey;
use crate::rollout::decide::verify::{VerifyError, check_view};
use crate::rollout::gate;

/// Step 7: every host alive under its node-name, every metadata server a member, every partition
/// led, the loglet replicated and replication as asked. After a run that changed nothing, the
/// survey's view (read moments ago) is checked instead of waiting out the gates again.
pub async fn verify(
    fleet: &Fleet,
    survey: &Survey,
    clients: &[crate::admin::AdminClient],
    replication: Option<u32>,
    changed: bool,
) -> Result<ClusterView, VerifyError> {
    let names: Vec<String> = fleet.hosts.iter().map(|h| h.node_name.clone()).collect();
    if !changed
        && let Some(view) = &survey.view
        && check_view(fleet, view, &names, replication).is_ok()
    {
        return Ok(view.clone());
    }
    let view = gate::healthy(clients, &names, Duration::from_secs(60)).await?;
    let led = gate::partitions_led(clients, Duration::from_secs(60)).await?;
    let view = if led.nodes.len() >= view.nodes.len() {
        led
    } else {
        view
    };
    check_view(fleet, &view, &[], replication).map(|()| view)
}

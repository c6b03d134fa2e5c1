//! One lock per node, held by the agent session for the whole run: a second run refuses, and a
//! killed coordinator's locks go with its SSH sessions. A lock whose holder's run fell silent (a
//! lost link, a laptop asleep) is taken over, once the holder finished its operation, and the
//! report warns of it; a lock held by a live run is a problem of the report. Taken in the run's
//! name: its holder and journal, which each host's audit log names.

use restate_fleet_proto::agent::{LockInfo, Operation};

use crate::reach::{ReachError, Reached};

/// Locks every host's node for the run at once : the lines of the locks
/// taken over, or the first host whose lock is held by a live run.
pub async fn lock_all(
    reached: &[&Reached],
    holder: &str,
    run_id: Option<&str>,
) -> Result<Vec<String>, (String, ReachError)> {
    let locks = reached.iter().map(|host| {
        host.ask::<LockInfo>(Operation::Lock {
            config_path: host.host.config_path.clone().into(),
            holder: Some(holder.to_string()),
            run_id: run_id.map(str::to_string),
        })
    });
    let mut taken_over = Vec::new();
    for (host, result) in reached
        .iter()
        .zip(futures_util::future::join_all(locks).await)
    {
        let info = result.map_err(|err| (host.name().to_string(), err))?;
        taken_over.extend(info.took_over.map(|how| format!("{}: {how}", host.name())));
    }
    Ok(taken_over)
}

//! What the agents report beyond the survey's facts, for `check`'s host checks: clocks, free
//! space, the open-files limit, the processes that hold ports. One quick round trip per host,
//! which brackets its clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use restate_fleet_proto::agent::{Facts, HostChecks, Operation};

use crate::reach::{ReachError, Reached};

/// One host's answer and how its clock compares with this machine's.
#[derive(Debug, Clone)]
pub struct Checked {
    pub name: String,
    pub hostname: Option<String>,
    /// The run starts restate-server here (a new node, or a member that is stopped): a port held
    /// by another process would stop it.
    pub starts_node: bool,
    pub checks: HostChecks,
    /// `[tls] mode` of its restate.toml (`None`: not set, so `off`).
    pub tls_mode: Option<String>,
    /// Host clock minus this machine's at the moment the host answered, in ms.
    pub offset_ms: i64,
    /// Half the round trip: how far off `offset_ms` may be.
    pub uncertainty_ms: i64,
}

/// One host to ask: which of its ports, and whether the run starts restate-server there.
pub struct Ask<'a> {
    pub reached: &'a Reached,
    pub facts: &'a Facts,
    pub starts_node: bool,
    pub ports: Vec<u16>,
}

pub async fn gather(hosts: Vec<Ask<'_>>) -> Result<Vec<Checked>, ReachError> {
    let calls = hosts.into_iter().map(|host| async move {
        let op = Operation::HostChecks {
            node: host.reached.node_target(Duration::from_secs(1)),
            ports: host.ports,
        };
        let sent = Instant::now();
        let sent_at = unix_ms(SystemTime::now());
        let checks: HostChecks = host.reached.ask(op).await?;
        let round_trip = i64::try_from(sent.elapsed().as_millis()).unwrap_or(i64::MAX);
        let midpoint = sent_at + round_trip / 2;
        Ok(Checked {
            name: host.reached.name().to_string(),
            hostname: host.facts.hostname.clone(),
            starts_node: host.starts_node,
            tls_mode: host.facts.config.values.tls_mode.clone(),
            offset_ms: checks.clock_unix_ms - midpoint,
            uncertainty_ms: round_trip / 2,
            checks,
        })
    });
    join_all(calls).await.into_iter().collect()
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

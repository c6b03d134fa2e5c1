//! Whether the workers can reach the snapshot repository's endpoint (`[cluster.snapshots]
//! aws-endpoint-url`), probed from each host through its SSH session during the survey: a run
//! that snapshots (guide step 5, a removal's trim) or joins nodes (they start their partitions
//! from snapshots) must not find out after its first restart that the store is down.

use std::time::Duration;

use futures_util::future::join_all;
use restate_fleet_inventory::{Fleet, Role};
use serde::{Deserialize, Serialize};

use super::plan::Step;
use super::survey::{Class, Survey};

/// How long a host gets to open a TCP connection to the endpoint.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one host saw of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub host: String,
    pub endpoint: String,
    /// Why the host could not connect; `None`: it could.
    pub failed: Option<String>,
}

/// Every worker host (member or new) opens a TCP connection to the endpoint, as its own network
/// sees it. Nothing to probe when the inventory names no endpoint (the cloud's own S3).
pub async fn probe(fleet: &Fleet, survey: &Survey) -> Vec<Probe> {
    let Some(endpoint) = fleet
        .cluster
        .snapshots
        .as_ref()
        .and_then(|s| s.aws_endpoint_url.clone())
    else {
        return Vec::new();
    };
    let Some((host, port)) = host_and_port(&endpoint) else {
        // The inventory check refuses an endpoint that is no URL; nothing to probe here.
        return Vec::new();
    };
    let workers = survey.hosts.iter().filter(|h| {
        matches!(h.class, Class::Member | Class::New) && h.reached.host.has_role(Role::Worker)
    });
    join_all(workers.map(|h| {
        let (target, endpoint) = (host.clone(), endpoint.clone());
        async move {
            let opened =
                tokio::time::timeout(PROBE_TIMEOUT, h.reached.session.can_reach(&target, port))
                    .await;
            let failed = match opened {
                // Reached, or sshd forwards nothing for this login: nothing known against it.
                Ok(Ok(_)) => None,
                Ok(Err(why)) => Some(why),
                Err(_) => Some(format!("no connection within {PROBE_TIMEOUT:?}")),
            };
            Probe {
                host: h.name().to_string(),
                endpoint,
                failed,
            }
        }
    }))
    .await
}

fn host_and_port(endpoint: &str) -> Option<(String, u16)> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Some((host.to_string(), port))
}

/// Problems for a plan that needs the store while a host cannot reach it.
pub fn needs(steps: &[Step], probes: &[Probe]) -> Vec<String> {
    let Some(step) = steps.iter().find(|s| {
        matches!(
            s,
            Step::Snapshot | Step::RemoveNode { .. } | Step::JoinNew { .. }
        )
    }) else {
        return Vec::new();
    };
    probes
        .iter()
        .filter_map(|p| {
            let why = p.failed.as_ref()?;
            Some(format!(
                "{}: cannot reach the snapshot repository at {} ({why}), which the step \"{step}\" needs; start the store, let the host reach it, or fix [cluster.snapshots] aws-endpoint-url; nothing was changed",
                p.host, p.endpoint
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(host: &str, failed: Option<&str>) -> Probe {
        Probe {
            host: host.into(),
            endpoint: "http://198.18.0.1:9000".into(),
            failed: failed.map(str::to_string),
        }
    }

    #[test]
    fn a_store_the_hosts_cannot_reach_stops_only_the_runs_that_need_it() {
        let down = [probe("n1", None), probe("n2", Some("connection refused"))];
        let roll = Step::RollMember {
            host: "n1".into(),
            changes: vec![],
        };
        let join = Step::JoinNew {
            hosts: vec!["n3".into()],
        };
        let cases: [(&str, Vec<Step>, &[Probe], usize); 5] = [
            ("nothing probed", vec![Step::Snapshot], &[], 0),
            ("all reach it", vec![Step::Snapshot], &down[..1], 0),
            ("a rolling change needs no store", vec![roll], &down, 0),
            (
                "snapshots need it",
                vec![Step::Snapshot, join.clone()],
                &down,
                1,
            ),
            ("joining nodes need it", vec![join], &down, 1),
        ];
        for (what, steps, probes, count) in cases {
            let problems = needs(&steps, probes);
            assert_eq!(problems.len(), count, "{what}: {problems:?}");
            for p in &problems {
                assert!(
                    p.starts_with("n2: cannot reach the snapshot repository at http://198.18.0.1:9000 (connection refused)")
                        && p.ends_with("nothing was changed"),
                    "{what}: {p}"
                );
            }
        }
    }

    #[test]
    fn the_endpoint_is_dialled_where_its_url_says() {
        assert_eq!(
            host_and_port("http://198.18.0.1:9000"),
            Some(("198.18.0.1".into(), 9000))
        );
        assert_eq!(
            host_and_port("https://minio.internal"),
            Some(("minio.internal".into(), 443))
        );
        assert_eq!(
            host_and_port("http://s3.local/"),
            Some(("s3.local".into(), 80))
        );
    }
}

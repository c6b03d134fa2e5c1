//! Whether a run may go ahead while a worker cannot reach the snapshot repository's endpoint
//! (probed in `observe/snapshot_store.rs`): a run that snapshots (guide step 5, a removal's
//! trim) or joins nodes (they start their partitions from snapshots) must not find out after
//! its first restart that the store is down.

use super::plan::Step;
use crate::rollout::observe::snapshot_store::Probe;

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
            tls: None,
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
}

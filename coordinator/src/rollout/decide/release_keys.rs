//! Keys a Restate release renamed or removed: an upgrade that keeps the old key loses the
//! setting without a word (restate-server ignores keys it does not know). From Restate's release
//! notes (docs/upgrade.md); pure.

use restate_fleet_proto::agent::PatchOp;
use restate_fleet_version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Under its new name from this release on; the old one is ignored.
    Renamed(&'static str),
    /// Gone, with what to do instead.
    Removed(&'static str),
}

/// One key a release changed. `key` ends with `*` for every key with that prefix.
#[derive(Debug)]
pub struct KeyChange {
    pub release: Version,
    pub key: &'static str,
    pub change: Change,
}

const V1_7: Version = Version::new(1, 7, 0);

/// Restate 1.7.0's release notes, "Breaking changes" and "Configuration changes".
pub const CHANGES: &[KeyChange] = &[
    KeyChange {
        release: V1_7,
        key: "worker.snapshots.experimental-num-retained",
        change: Change::Renamed("worker.snapshots.num-retained"),
    },
    KeyChange {
        release: V1_7,
        key: "rocksdb-bg-threads",
        change: Change::Renamed("rocksdb-low-priority-threads"),
    },
    KeyChange {
        release: V1_7,
        key: "rocksdb-high-priority-bg-threads",
        change: Change::Renamed("rocksdb-high-priority-threads"),
    },
    KeyChange {
        release: V1_7,
        key: "http-proxy",
        change: Change::Renamed("worker.invoker.http-proxy"),
    },
    KeyChange {
        release: V1_7,
        key: "aws-profile",
        change: Change::Renamed("worker.invoker.aws-profile"),
    },
    KeyChange {
        release: V1_7,
        key: "request-identity-private-key-pem-file",
        change: Change::Renamed("worker.invoker.request-identity-private-key-pem-file"),
    },
    KeyChange {
        release: V1_7,
        key: "log-server.rocksdb-max-wal-size",
        change: Change::Removed("remove it: the log-server sizes its write-ahead log itself"),
    },
    KeyChange {
        release: V1_7,
        key: "log-server.rocksdb-max-background-flushes",
        change: Change::Removed(
            "remove it: the log-server's flushes follow rocksdb-high-priority-threads",
        ),
    },
    KeyChange {
        release: V1_7,
        key: "bifrost.replicated-loglet.*-retry-policy*",
        change: Change::Removed(
            "remove it: the replicated loglet's retry policies became rpc-timeout and store-timeout",
        ),
    },
];

/// A key of a file or of the inventory that the upgrade's releases changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub key: String,
    pub release: Version,
    pub change: Change,
}

/// The keys among `keys` that a release after `from` and up to `to` renamed or removed.
pub fn found(from: &Version, to: &Version, keys: &[String]) -> Vec<Found> {
    keys.iter()
        .filter_map(|key| {
            CHANGES
                .iter()
                .find(|c| c.release > *from && c.release <= *to && matches(c.key, key))
                .map(|c| Found {
                    key: key.clone(),
                    release: c.release.clone(),
                    change: c.change,
                })
        })
        .collect()
}

/// `pattern` with `*` for any run of characters (within the key).
fn matches(pattern: &str, key: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return false,
    };
    let Some(mut left) = key.strip_prefix(first) else {
        return false;
    };
    if rest.is_empty() {
        return left.is_empty();
    }
    for (i, part) in rest.iter().enumerate() {
        let last = i == rest.len() - 1;
        if last {
            return part.is_empty() || left.ends_with(part);
        }
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The patch that moves every renamed key to its new name.
pub fn renames(found: &[Found]) -> Vec<PatchOp> {
    found
        .iter()
        .filter_map(|f| match f.change {
            Change::Renamed(to) => Some(PatchOp::Rename {
                path: f.key.split('.').map(str::to_string).collect(),
                to: to.split('.').map(str::to_string).collect(),
            }),
            Change::Removed(_) => None,
        })
        .collect()
}

/// An upgrade's findings for one host: its file's keys and the inventory's for it, held against
/// the releases from `from` to `to`; `None` when either version does not parse.
pub fn of_upgrade(
    from: &str,
    to: &str,
    file_keys: &[String],
    inventory_keys: &[String],
) -> Option<(Vec<Found>, Vec<Found>)> {
    let (from, to) = (from.parse::<Version>().ok()?, to.parse::<Version>().ok()?);
    Some((
        found(&from, &to, file_keys),
        found(&from, &to, inventory_keys),
    ))
}

/// The file's renamed keys, said before the upgrade rewrites them.
pub fn rename_notes(host: &str, in_file: &[Found]) -> Vec<String> {
    in_file
        .iter()
        .filter_map(|f| match f.change {
            Change::Renamed(to) => Some(format!(
                "{host}: restate.toml sets `{}`, which Restate {} renamed to `{to}`: the upgrade rewrites it in the same restart",
                f.key, f.release
            )),
            Change::Removed(_) => None,
        })
        .collect()
}

/// What stops the upgrade of `host`: each removed key, and each renamed key the inventory
/// itself sets (restate-fleet would write it anew at every run), named with the release.
pub fn refusals(host: &str, in_file: &[Found], in_inventory: &[Found]) -> Vec<String> {
    let removed = in_file.iter().chain(in_inventory).filter_map(|f| match f.change {
        Change::Removed(what) => Some(format!(
            "{host}: `{}` was removed in Restate {}, so the upgrade would drop it without a word: {what}; then re-run",
            f.key, f.release
        )),
        Change::Renamed(_) => None,
    });
    let renamed_in_inventory = in_inventory.iter().filter_map(|f| match f.change {
        Change::Renamed(to) => Some(format!(
            "{host}: the inventory sets `{}`, which Restate {} renamed to `{to}` (the old name is ignored): rename it in the inventory; then re-run",
            f.key, f.release
        )),
        Change::Removed(_) => None,
    });
    let mut out: Vec<String> = removed.chain(renamed_in_inventory).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_upgrade_across_1_7_finds_what_it_renamed_and_removed() {
        let v = |s: &str| s.parse::<Version>().expect("version");
        let file = keys(&[
            "cluster-name",
            "worker.snapshots.destination",
            "worker.snapshots.experimental-num-retained",
            "rocksdb-bg-threads",
            "log-server.rocksdb-max-wal-size",
            "bifrost.replicated-loglet.sequencer-retry-policy.max-attempts",
            "bifrost.replicated-loglet.readahead-records",
        ]);
        let across = found(&v("1.6.2"), &v("1.7.12"), &file);
        let named: Vec<(&str, Change)> =
            across.iter().map(|f| (f.key.as_str(), f.change)).collect();
        assert_eq!(
            named,
            [
                (
                    "worker.snapshots.experimental-num-retained",
                    Change::Renamed("worker.snapshots.num-retained")
                ),
                (
                    "rocksdb-bg-threads",
                    Change::Renamed("rocksdb-low-priority-threads")
                ),
                ("log-server.rocksdb-max-wal-size", CHANGES[6].change),
                (
                    "bifrost.replicated-loglet.sequencer-retry-policy.max-attempts",
                    CHANGES[8].change
                ),
            ]
        );
        assert!(
            found(&v("1.7.0"), &v("1.7.12"), &file).is_empty(),
            "within 1.7: nothing"
        );
        assert!(
            found(&v("1.5.0"), &v("1.6.2"), &file).is_empty(),
            "below 1.7: nothing"
        );

        let patch = renames(&across);
        assert_eq!(
            patch,
            [
                PatchOp::rename(
                    &["worker", "snapshots", "experimental-num-retained"],
                    &["worker", "snapshots", "num-retained"]
                ),
                PatchOp::rename(&["rocksdb-bg-threads"], &["rocksdb-low-priority-threads"]),
            ]
        );
        let inventory = found(&v("1.6.2"), &v("1.7.12"), &keys(&["rocksdb-bg-threads"]));
        let refused = refusals("n1", &across, &inventory);
        assert_eq!(refused.len(), 3, "{refused:#?}");
        assert!(
            refused[0]
                .starts_with("n1: `log-server.rocksdb-max-wal-size` was removed in Restate 1.7.0")
        );
        assert!(refused[2].contains("the inventory sets `rocksdb-bg-threads`, which Restate 1.7.0 renamed to `rocksdb-low-priority-threads`"));
    }

    #[test]
    fn patterns_match_whole_keys() {
        for (pattern, key, want) in [
            ("a.b", "a.b", true),
            ("a.b", "a.bc", false),
            ("a.*-retry-policy*", "a.x-retry-policy.max", true),
            ("a.*-retry-policy*", "a.x-retry-policy", true),
            ("a.*-retry-policy*", "a.timeout", false),
        ] {
            assert_eq!(matches(pattern, key), want, "{pattern} {key}");
        }
    }
}

//! `--limit` host selection.

use restate_fleet_inventory::{Fleet, LimitError};

use crate::support::{CLUSTER, ok};

fn fleet() -> Fleet {
    let mut text = String::from(CLUSTER);
    for (name, n) in [
        ("web1", 1),
        ("web2", 2),
        ("db1", 3),
        ("db2", 4),
        ("cache", 5),
    ] {
        text += &format!("[hosts.{name}]\naddress = \"10.0.0.{n}\"\n");
    }
    text += "[groups.web]\nhosts = [\"web1\", \"web2\"]\n[groups.db]\nhosts = [\"db1\", \"db2\"]\n[groups.primary]\nhosts = [\"web1\", \"db1\"]\n";
    ok(&text).fleet
}

fn names(fleet: &Fleet, limit: &str) -> Vec<String> {
    fleet
        .select(limit)
        .unwrap_or_else(|e| panic!("{limit}: {e}"))
        .into_iter()
        .map(|h| h.name.clone())
        .collect()
}

#[test]
fn by_name_group_glob_and_all() {
    let fleet = fleet();
    assert_eq!(names(&fleet, "db2"), ["db2"]);
    assert_eq!(names(&fleet, "web"), ["web1", "web2"]);
    assert_eq!(names(&fleet, "db?"), ["db1", "db2"]);
    assert_eq!(names(&fleet, "*b*"), ["web1", "web2", "db1", "db2"]);
    assert_eq!(names(&fleet, "all").len(), 5);
    assert_eq!(names(&fleet, "*").len(), 5);
}

#[test]
fn union_with_commas_and_colons_in_file_order() {
    let fleet = fleet();
    assert_eq!(names(&fleet, "cache,web1"), ["web1", "cache"]);
    assert_eq!(names(&fleet, "cache:db"), ["db1", "db2", "cache"]);
}

#[test]
fn exclusion_and_intersection_like_ansible() {
    let fleet = fleet();
    assert_eq!(names(&fleet, "all,!db"), ["web1", "web2", "cache"]);
    assert_eq!(names(&fleet, "web:&primary"), ["web1"]);
    assert_eq!(names(&fleet, "web:db:&primary:!web1"), ["db1"]);
    // Only exclusions: everything else.
    assert_eq!(names(&fleet, "!web"), ["db1", "db2", "cache"]);
}

#[test]
fn a_pattern_that_matches_nothing_is_an_error_naming_it() {
    let fleet = fleet();
    let err = fleet.select("web,nope*").unwrap_err();
    assert_eq!(
        err,
        LimitError::NoMatch {
            pattern: "nope*".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "--limit pattern `nope*` matches no host or group"
    );
    assert!(matches!(
        fleet.select("!zz"),
        Err(LimitError::NoMatch { .. })
    ));
    assert!(matches!(fleet.select(" , "), Err(LimitError::Empty { .. })));
}

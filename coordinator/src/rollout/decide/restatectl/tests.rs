//! The restatectl decisions over what the survey found: which one fits the cluster's release,
//! and what the plan's steps need of it.

use std::path::PathBuf;

use super::*;
use crate::admin::fabric_target;
use crate::rollout::observe::leaving::Holdings;

fn on_path() -> Source {
    Source::Path {
        path: PathBuf::from("/usr/local/bin/restatectl"),
    }
}

#[test]
fn a_restatectl_fits_its_own_minor_release_only() {
    let release: Version = "1.7.12".parse().expect("version");
    /// What `--version` said (or why it did not run), and the verdict (or a part of the refusal).
    type Said = Result<&'static str, &'static str>;
    let cases: [(&str, Said, Said); 6] = [
        (
            "same patch",
            Ok("restatectl 1.7.12 (577e032 x86_64-unknown-linux-musl 2026-09-22)\n"),
            Ok("1.7.12"),
        ),
        ("older patch", Ok("restatectl 1.7.3\n"), Ok("1.7.3")),
        (
            "older minor",
            Ok("restatectl 1.6.2 (abc)\n"),
            Err(
                "is restatectl 1.6.2, but the cluster runs restate-server 1.7.12: use restatectl 1.7.x",
            ),
        ),
        (
            "newer minor",
            Ok("restatectl 1.8.0\n"),
            Err("is restatectl 1.8.0, but the cluster runs restate-server 1.7.12"),
        ),
        ("no version", Ok("usage: ...\n"), Err("printed no version")),
        (
            "did not run",
            Err("Permission denied (os error 13)"),
            Err("/usr/local/bin/restatectl (on this machine's PATH): Permission denied"),
        ),
    ];
    for (what, said, expected) in cases {
        let candidate = Candidate {
            source: on_path(),
            version: said.map(str::to_string).map_err(str::to_string),
        };
        match (judge(&candidate, &release), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{what}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{what}: {got}"),
            (got, want) => panic!("{what}: got {got:?}, expected {want:?}"),
        }
    }
}

fn none_found() -> Finding {
    Finding {
        release: "1.7.12".into(),
        chosen: None,
        passed_over: vec![
            "none in the inventory or on this machine's PATH".into(),
            "none on n1 (its PATH, /usr/local/bin, /usr/bin, /opt/restate/bin)".into(),
        ],
    }
}

fn found() -> Finding {
    Finding {
        release: "1.7.12".into(),
        chosen: Some(Found {
            source: on_path(),
            version: "1.7.12".into(),
            on: "n1".into(),
        }),
        passed_over: vec![],
    }
}

fn remove(node: &str) -> Step {
    Step::RemoveNode {
        node: node.into(),
        holds: Holdings {
            id: 3,
            alive: false,
            leads: 0,
            follows: 0,
            in_logs: 0,
            metadata_member: true,
            unreachable: Some("no route to host".into()),
            comes_back: false,
        },
    }
}

fn roll(host: &str) -> Step {
    Step::RollMember {
        host: host.into(),
        changes: vec!["rocksdb-total-memory-size".into()],
    }
}

#[test]
fn steps_that_need_restatectl_are_refused_and_restarts_without_it_are_named() {
    let leads = |host: &str| host != "n4";
    /// What: steps, what the survey found; how many problems, the start of the warning.
    type Case = (
        &'static str,
        Vec<Step>,
        Option<Finding>,
        usize,
        Option<&'static str>,
    );
    let cases: [Case; 7] = [
        (
            "no cluster: nothing needed",
            vec![remove("n3")],
            None,
            0,
            None,
        ),
        (
            "found: nothing to say",
            vec![remove("n3"), roll("n1")],
            Some(found()),
            0,
            None,
        ),
        (
            "a removal without one",
            vec![remove("n3")],
            Some(none_found()),
            1,
            None,
        ),
        (
            "a worker to activate without one",
            vec![Step::ActivateWorker { host: "n2".into() }],
            Some(none_found()),
            1,
            None,
        ),
        (
            "rolling restarts without one",
            vec![roll("n1"), roll("n2"), roll("n4")],
            Some(none_found()),
            0,
            Some("n1, n2: restarts without moving partition leaders"),
        ),
        (
            "a member that leads nothing loses nothing",
            vec![roll("n4")],
            Some(none_found()),
            0,
            None,
        ),
        (
            "the metadata membership needs none (RPCs)",
            vec![
                Step::AddMetadataMember {
                    host: "n2".into(),
                    id: 2,
                },
                Step::RemoveMetadataMember {
                    host: "n3".into(),
                    id: 3,
                },
                Step::SetMetadataList { host: "n1".into() },
            ],
            Some(none_found()),
            0,
            None,
        ),
    ];
    for (what, steps, finding, problems, warning) in cases {
        let (got_problems, got_warnings) = needs(&steps, finding.as_ref(), leads);
        assert_eq!(got_problems.len(), problems, "{what}: {got_problems:?}");
        for problem in &got_problems {
            assert!(
                problem.contains("needs restatectl, and none was found")
                    && problem.contains("none on n1")
                    && problem.contains("put restatectl 1.7.x on this machine's PATH")
                    && problem.ends_with("nothing was changed"),
                "{what}: {problem}"
            );
        }
        match warning {
            Some(start) => {
                assert_eq!(got_warnings.len(), 1, "{what}: {got_warnings:?}");
                assert!(
                    got_warnings[0].starts_with(start)
                        && got_warnings[0].contains("clients may wait about 5 s per member")
                        && got_warnings[0].contains("restatectl 1.7.x"),
                    "{what}: {}",
                    got_warnings[0]
                );
            }
            None => assert!(got_warnings.is_empty(), "{what}: {got_warnings:?}"),
        }
    }
}

#[test]
fn the_finding_says_which_restatectl_and_how_it_reaches_the_cluster() {
    assert_eq!(
        found().to_string(),
        "1.7.12 /usr/local/bin/restatectl (on this machine's PATH), runs here against n1 through its SSH session"
    );
    let member = Finding {
        release: "1.7.12".into(),
        chosen: Some(Found {
            source: Source::Member {
                path: "/usr/bin/restatectl".into(),
            },
            version: "1.7.12".into(),
            on: "n1".into(),
        }),
        passed_over: vec!["/usr/local/bin/restatectl (on this machine's PATH) is restatectl 1.6.2, but the cluster runs restate-server 1.7.12: use restatectl 1.7.x".into()],
    };
    assert_eq!(
        member.to_string(),
        "1.7.12 /usr/bin/restatectl (installed on the member), runs on n1; passed over: /usr/local/bin/restatectl (on this machine's PATH) is restatectl 1.6.2, but the cluster runs restate-server 1.7.12: use restatectl 1.7.x"
    );
    assert!(
        none_found()
            .to_string()
            .starts_with("none found (none in the inventory")
    );
}

#[test]
fn restatectl_here_reaches_the_member_as_the_member_dials_its_own_address() {
    assert_eq!(
        fabric_target("http://198.18.0.2:5122/"),
        Some(("198.18.0.2".into(), 5122))
    );
    assert_eq!(
        fabric_target("http://n1.internal/"),
        Some(("n1.internal".into(), 5122))
    );
    assert_eq!(
        fabric_target("http://[fd00::1]:6000/"),
        Some(("fd00::1".into(), 6000))
    );
    assert_eq!(fabric_target("not an address"), None);
}

#[test]
fn only_an_unavailable_cluster_is_asked_again() {
    let said = "n1: restatectl (restatectl, through its SSH session): Error: http://127.0.0.1:38801/: Unknown error: other error: [retryable] The service is currently unavailable: other error: [retryable] [http://198.18.68.13:5122/] The service is currently unavailable: tcp connect error (exit status: 1)";
    assert!(transient(said));
    assert!(!transient(
        "Error: Node N4 is in state active. It's not safe to change its worker-state to disabled"
    ));
}

#[test]
fn reconfigure_calls_name_what_moves() {
    /// (nodeset, sequencer, the call)
    type Case = (Option<&'static [u32]>, Option<u32>, &'static str);
    let cases: [Case; 3] = [
        (None, Some(2), "logs reconfigure --log-id 7 --sequencer N2"),
        (
            Some(&[1, 4]),
            None,
            "logs reconfigure --log-id 7 --nodeset N1,N4",
        ),
        (
            Some(&[1, 4]),
            Some(4),
            "logs reconfigure --log-id 7 --nodeset N1,N4 --sequencer N4",
        ),
    ];
    for (nodeset, sequencer, want) in cases {
        assert_eq!(reconfigure_call(7, nodeset, sequencer).join(" "), want);
    }
}

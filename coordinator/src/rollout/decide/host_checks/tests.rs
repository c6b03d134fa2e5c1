use std::path::PathBuf;

use restate_fleet_proto::agent::{FreeSpace, HostChecks, Listener, OpenFiles};

use super::{Checked, findings};

const GIB: u64 = 1 << 30;

fn host(name: &str) -> Checked {
    Checked {
        name: name.to_string(),
        hostname: Some(name.to_string()),
        starts_node: false,
        tls_mode: None,
        checks: HostChecks {
            clock_unix_ms: 0,
            machine_id: Some(format!("id-of-{name}")),
            space: Some(FreeSpace {
                path: PathBuf::from("/var/lib/restate"),
                available_bytes: 100 * GIB,
                total_bytes: 200 * GIB,
            }),
            open_files: Some(OpenFiles {
                soft: 1024,
                hard: 524_288,
                source: "LimitNOFILE of restate.service".to_string(),
            }),
            listeners: Vec::new(),
        },
        offset_ms: 0,
        uncertainty_ms: 2,
    }
}

fn with(name: &str, change: impl FnOnce(&mut Checked)) -> Checked {
    let mut h = host(name);
    change(&mut h);
    h
}

fn bound(port: u16) -> Listener {
    Listener {
        port,
        address: "0.0.0.0".to_string(),
        pid: Some(4242),
        process: Some("python3".to_string()),
    }
}

/// A case, its hosts, and how its problems and its warnings start.
type Case = (
    &'static str,
    Vec<Checked>,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn each_finding_names_the_host_the_figure_and_the_fix() {
    let cases: Vec<Case> = vec![
        (
            "a healthy fleet",
            vec![host("n1"), host("n2"), host("n3")],
            vec![],
            vec![],
        ),
        (
            "a clock 45 s ahead of the two others'",
            vec![
                host("n1"),
                with("n2", |h| h.offset_ms = 45_000),
                with("n3", |h| h.offset_ms = 30),
            ],
            vec!["n2: its clock is 45.0 s ahead of the other hosts'"],
            vec![],
        ),
        (
            "a clock 0.8 s behind: a warning",
            vec![host("n1"), with("n2", |h| h.offset_ms = -800), host("n3")],
            vec![],
            vec!["n2: its clock is 0.8 s behind the other hosts'"],
        ),
        (
            "skew within the round trip is no finding",
            vec![
                host("n1"),
                with("n2", |h| {
                    h.offset_ms = 700;
                    h.uncertainty_ms = 400;
                }),
                host("n3"),
            ],
            vec![],
            vec![],
        ),
        (
            "this machine's clock off, the hosts agreeing",
            vec![
                with("n1", |h| h.offset_ms = -60_000),
                with("n2", |h| h.offset_ms = -60_010),
                with("n3", |h| h.offset_ms = -59_990),
            ],
            vec![],
            vec!["this machine's clock is 60.0 s off the hosts'"],
        ),
        (
            "one host: against this machine",
            vec![with("n1", |h| h.offset_ms = 9_000)],
            vec!["n1: its clock is 9.0 s ahead of this machine's"],
            vec![],
        ),
        (
            "a full disk and a nearly full one",
            vec![
                with("n1", |h| {
                    h.checks.space.as_mut().unwrap().available_bytes = 0;
                }),
                with("n2", |h| {
                    h.checks.space.as_mut().unwrap().available_bytes = 3 * GIB;
                }),
                with("n3", |h| {
                    // 8 GiB free, but of a 1 TiB disk: 0.8 %.
                    let space = h.checks.space.as_mut().unwrap();
                    space.available_bytes = 8 * GIB;
                    space.total_bytes = 1024 * GIB;
                }),
            ],
            vec!["n1: 0 B free of 200.0 GiB on the filesystem of /var/lib/restate"],
            vec![
                "n2: 3.0 GiB free of 200.0 GiB",
                "n3: 8.0 GiB free of 1.0 TiB",
            ],
        ),
        (
            "a low open-files limit",
            vec![with("n1", |h| {
                h.checks.open_files.as_mut().unwrap().hard = 4096;
            })],
            vec![],
            vec!["n1: restate-server may open at most 4096 files (LimitNOFILE of restate.service)"],
        ),
        (
            "a bound port where a node is to start",
            vec![
                host("n1"),
                with("n2", |h| {
                    h.starts_node = true;
                    h.checks.listeners = vec![bound(9070)];
                }),
            ],
            vec![
                "n2: port 9070 is already bound by python3 (pid 4242) on 0.0.0.0, and restate-server is to start here: stop that process, or move restate-server's port (admin.bind-address",
            ],
            vec![],
        ),
        (
            "a member's own listeners are its restate-server's: only their exposure counts",
            vec![with("n1", |h| {
                h.checks.listeners = vec![
                    Listener {
                        address: "10.0.0.1".into(),
                        ..bound(5122)
                    },
                    bound(8080),
                ]
            })],
            vec![],
            vec![],
        ),
        (
            "the fabric and the admin API on every interface, without TLS",
            vec![with("n1", |h| {
                h.checks.listeners = vec![bound(5122), bound(9070)]
            })],
            vec![],
            vec![
                "n1: the fabric (port 5122) listens on all interfaces (0.0.0.0) with fabric TLS off",
                "n1: the admin API (port 9070) listens on all interfaces (0.0.0.0) and has no authentication",
            ],
        ),
        (
            "the fabric on every interface behind required TLS",
            vec![with("n1", |h| {
                h.tls_mode = Some("require".into());
                h.checks.listeners = vec![bound(5122)];
            })],
            vec![],
            vec![],
        ),
        (
            "a cloned machine id and a shared hostname",
            vec![
                host("n1"),
                with("n2", |h| h.checks.machine_id = Some("id-of-n1".to_string())),
                with("n3", |h| h.hostname = Some("n1".to_string())),
            ],
            vec!["n1, n2 have the same /etc/machine-id (id-of-n1): a cloned VM"],
            vec!["n1, n3 have the same hostname (n1)"],
        ),
    ];
    for (case, hosts, want_problems, want_warnings) in cases {
        let (problems, warnings) = findings(&hosts);
        let starts = |found: &[String], want: &[&str]| {
            found.len() == want.len() && found.iter().zip(want).all(|(f, w)| f.starts_with(w))
        };
        assert!(
            starts(&problems, &want_problems),
            "{case}: problems {problems:#?}"
        );
        assert!(
            starts(&warnings, &want_warnings),
            "{case}: warnings {warnings:#?}"
        );
    }
}

#[test]
fn the_fabric_port_comes_from_the_advertised_address() {
    assert_eq!(super::ports("http://10.0.0.1:6122/"), [6122, 8080, 9070]);
    assert_eq!(super::ports("http://n1.example"), [5122, 8080, 9070]);
}

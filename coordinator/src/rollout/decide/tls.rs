//! Fabric TLS (`[cluster.tls]`, docs/fabric-tls.md): where the cluster's mode is, the modes it
//! passes through to the inventory's, one at a time on every node, which certificates are issued
//! or pushed, and what refuses the run before any change.

use restate_fleet_inventory::{Fleet, TlsCa, TlsMode};
use restate_fleet_version::Version;
use serde::{Deserialize, Serialize};

use crate::rollout::observe::certificates::{InPlace, Looked, Seen};

/// The oldest restate-server with `[tls]`; older ones ignore the table without a word.
pub const MIN_VERSION: Version = Version::new(1, 7, 3);

/// A certificate with this many days left or fewer is renewed, and `check` warns of it.
pub const RENEW_DAYS: i64 = 30;

/// One host as the TLS rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsHost {
    pub name: String,
    /// Whether it is a member already (else it joins in this run).
    pub member: bool,
    /// The mode its restate.toml says (`None`: no `[tls]`, which is `off`).
    pub mode: Option<TlsMode>,
    /// restate-server's version once this run's upgrades are done.
    pub version: Option<String>,
}

/// What the run does about fabric TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The mode each new host's file starts at, so that it talks to the members as they are
    /// (`None`: no `[tls]` at all).
    pub join_at: Option<TlsMode>,
    /// The modes every host passes through after the rest of the plan, in order, each with the
    /// hosts that still need it.
    pub phases: Vec<(TlsMode, Vec<String>)>,
    /// The mode the cluster ends at.
    pub target: TlsMode,
}

impl Rollout {
    /// The mode new hosts start at when they get certificates before their first start: the
    /// cluster takes TLS now or will by the end of the run.
    pub fn joining_with_files(&self) -> Option<TlsMode> {
        let files = self.target.loads_certificates()
            || self.join_at.is_some_and(TlsMode::loads_certificates);
        self.join_at.filter(|_| files)
    }
}

fn effective(mode: Option<TlsMode>) -> TlsMode {
    mode.unwrap_or(TlsMode::Off)
}

/// The rollout from the members' files to `target`, or why it cannot be done safely. The members
/// are at most one mode apart (a run cut short between two hosts); more is refused, since such
/// nodes cannot talk to each other.
pub fn rollout(hosts: &[TlsHost], target: TlsMode) -> Result<Rollout, String> {
    let members: Vec<&TlsHost> = hosts.iter().filter(|h| h.member).collect();
    let modes = members.iter().map(|h| effective(h.mode));
    let (low, high) = match (modes.clone().min(), modes.max()) {
        (Some(low), Some(high)) => (low, high),
        // A cluster from nothing starts at the inventory's mode.
        _ => {
            return Ok(Rollout {
                join_at: (target != TlsMode::Off).then_some(target),
                phases: Vec::new(),
                target,
            });
        }
    };
    if index(high) - index(low) > 1 {
        let at = |mode: TlsMode| {
            members
                .iter()
                .filter(|h| effective(h.mode) == mode)
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "fabric TLS: {} at {high} and {} at {low} are more than one mode apart and cannot talk to each other; set those at {low} one mode up by hand ([tls] mode in their restate.toml, then a restart) and re-run",
            at(high),
            at(low)
        ));
    }
    let any_table = members.iter().any(|h| h.mode.is_some());
    let join_at = (any_table || low != TlsMode::Off).then_some(low);
    let modes: Vec<TlsMode> = if target >= high {
        TlsMode::ALL
            .into_iter()
            .filter(|m| *m > low && *m <= target)
            .collect()
    } else {
        TlsMode::ALL
            .into_iter()
            .rev()
            .filter(|m| *m < high && *m >= target)
            .collect()
    };
    let phases = modes
        .into_iter()
        .map(|mode| {
            let due = hosts
                .iter()
                .filter(|h| {
                    let now = if h.member {
                        effective(h.mode)
                    } else {
                        effective(join_at)
                    };
                    now != mode
                })
                .map(|h| h.name.clone())
                .collect();
            (mode, due)
        })
        .filter(|(_, due): &(TlsMode, Vec<String>)| !due.is_empty())
        .collect();
    Ok(Rollout {
        join_at,
        phases,
        target,
    })
}

/// What the run does about fabric TLS, decided from the hosts and their certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub rollout: Rollout,
    /// Members whose certificate, key or CA file is put in place before any mode changes; new
    /// hosts get theirs as they join.
    pub push: Vec<String>,
    /// Hosts whose certificate is issued (again) by the CA, each with why.
    pub issue: Vec<(String, String)>,
    /// The CA's directory, and whether the CA is made by this run.
    pub ca_dir: String,
    pub makes_ca: bool,
    /// The nodes' files are the operator's, on the hosts already: none is pushed.
    #[serde(default)]
    pub files_in_place: bool,
}

impl Decided {
    /// The mode new hosts start at when the run puts their certificates in place before their
    /// first start.
    pub fn joining_with_files(&self) -> Option<TlsMode> {
        self.rollout
            .joining_with_files()
            .filter(|_| !self.files_in_place)
    }
}

/// The TLS part of a run, or what refuses it; with the warnings of certificates ending soon.
pub fn decide(
    fleet: &Fleet,
    hosts: &[TlsHost],
    ca_dir: &str,
    looked: Result<&Looked, &str>,
) -> Result<(Decided, Vec<String>), Vec<String>> {
    let target = fleet.cluster.tls.as_ref().map_or(TlsMode::Off, |t| t.mode);
    let mut problems = version_problems(fleet, hosts);
    let rollout = rollout(hosts, target).map_err(|e| vec![e]);
    let looked = looked.map_err(|e| format!("[cluster.tls] ca-dir {ca_dir}: {e}"));
    let (rollout, looked) = match (rollout, looked) {
        (Ok(r), Ok(l)) => (r, l),
        (r, l) => {
            problems.extend(r.err().unwrap_or_default());
            problems.extend(l.err());
            return Err(problems);
        }
    };
    let mut warnings = Vec::new();
    let mut push = Vec::new();
    let mut issue = Vec::new();
    let pushes = target.loads_certificates();
    let own = fleet
        .cluster
        .tls
        .as_ref()
        .is_some_and(|t| matches!(t.ca, TlsCa::Own { .. }));
    if own && pushes {
        match tool_problem(looked.tool.as_ref(), ca_dir) {
            Some(Ok(problem)) => problems.push(problem),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
    }
    for (host, certs) in hosts.iter().zip(&looked.hosts) {
        if host.member
            && let Some(problem) =
                foreign_ca_problem(&host.name, host.mode, certs.on_host.as_ref(), ca_dir)
        {
            problems.push(problem);
        }
        let renewal = match (own, certs.in_place.is_some()) {
            (false, _) => Renewal::Managed,
            (true, false) => Renewal::Pushed,
            (true, true) => Renewal::InPlace,
        };
        let due = expiry_warning(&host.name, certs.on_host.as_ref(), renewal);
        warnings.extend(due);
        if !pushes {
            continue;
        }
        if let Some(in_place) = &certs.in_place {
            problems.extend(in_place_problems(
                &host.name,
                certs.on_host.as_ref(),
                in_place,
            ));
            continue;
        }
        if own {
            let kept = certs.kept.as_ref().map(|(seen, _)| seen);
            match own_problem(&host.name, &certs.node, kept, ca_dir) {
                Some(Ok(problem)) => problems.push(problem),
                // The host's own certificate already warned of when it is the one running.
                Some(Err(warning)) if certs.on_host.is_none() => warnings.push(warning),
                _ => {}
            }
            if host.member && certs.push_changes {
                push.push(host.name.clone());
            }
            continue;
        }
        let why = must_issue(certs.kept.as_ref().map(|(seen, _)| seen));
        if let Some(why) = why {
            issue.push((host.name.clone(), why.to_string()));
        }
        if host.member && (why.is_some() || certs.push_changes) {
            push.push(host.name.clone());
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok((
        Decided {
            rollout,
            push,
            makes_ca: pushes && !looked.ca_exists,
            issue,
            ca_dir: ca_dir.to_string(),
            files_in_place: fleet
                .cluster
                .tls
                .as_ref()
                .is_some_and(|t| t.ca.host_files().is_some()),
        },
        warnings,
    ))
}

fn index(mode: TlsMode) -> usize {
    TlsMode::ALL.iter().position(|m| *m == mode).unwrap_or(0)
}

/// Hosts whose restate-server has no `[tls]` while the inventory asks for it.
pub fn version_problems(fleet: &Fleet, hosts: &[TlsHost]) -> Vec<String> {
    let Some(tls) = &fleet.cluster.tls else {
        return Vec::new();
    };
    if tls.mode == TlsMode::Off {
        return Vec::new();
    }
    hosts
        .iter()
        .filter_map(|h| {
            let version = h.version.as_deref()?;
            let old = version.parse::<Version>().is_ok_and(|v| v < MIN_VERSION);
            old.then(|| {
                format!(
                    "{}: restate-server {version} has no fabric TLS (it came in {MIN_VERSION}) and would ignore [tls]; upgrade it first ([cluster.restate-server] version) or leave [cluster.tls] out; nothing was changed",
                    h.name
                )
            })
        })
        .collect()
}

/// Whether the certificate kept for a node must be issued again: missing, from another CA, not
/// naming the node's address or a name the nodes admit, or close to its end.
pub fn must_issue(kept: Option<&Seen>) -> Option<&'static str> {
    match kept {
        None => Some("none issued yet"),
        Some(s) if !s.signed_by_ca => Some("not signed by the CA"),
        Some(s) if !s.covers_address => Some("does not name its advertised address"),
        Some(s) if !s.admitted => Some("names nothing the nodes admit"),
        Some(s) if s.days_left <= RENEW_DAYS => Some("expires within 30 days"),
        Some(_) => None,
    }
}

/// A host that runs TLS with a certificate the inventory's CA did not sign: pushing the CA's
/// would cut it off from the nodes that still trust the other one.
pub fn foreign_ca_problem(
    host: &str,
    mode: Option<TlsMode>,
    on_host: Option<&Seen>,
    ca_dir: &str,
) -> Option<String> {
    let mode = mode.filter(|m| m.loads_certificates())?;
    match on_host {
        Some(seen) if !seen.signed_by_ca => Some(format!(
            "{host}: runs fabric TLS at {mode} with a certificate the CA in {ca_dir} did not sign; point [cluster.tls] ca-dir at the cluster's own CA (or move the cluster to off with that CA first); nothing was changed"
        )),
        _ => None,
    }
}

/// Who renews a node's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The managed CA, on the next `apply`.
    Managed,
    /// The operator's CA, the pair put in `ca-dir` and pushed by `apply`.
    Pushed,
    /// The operator's tooling, on the host.
    InPlace,
}

/// `check`'s warning for a certificate on a host that ends soon.
pub fn expiry_warning(host: &str, on_host: Option<&Seen>, renewal: Renewal) -> Option<String> {
    let seen = on_host?;
    let renew = match renewal {
        Renewal::Managed => "`restate-fleet apply` renews it",
        Renewal::Pushed => {
            "renew it with your CA, put the pair in [cluster.tls] ca-dir, and `restate-fleet apply` pushes it"
        }
        Renewal::InPlace => "renew it with your CA where it is on the host",
    };
    (seen.days_left <= RENEW_DAYS).then(|| {
        if seen.days_left < 0 {
            format!("{host}: its fabric TLS certificate expired {} day(s) ago; {renew}", -seen.days_left)
        } else {
            format!("{host}: its fabric TLS certificate expires in {} day(s); {renew} (nodes re-read it within [cluster.tls] refresh-interval, no restart)", seen.days_left)
        }
    })
}

/// Why a pair of your own CA cannot be used (`Ok`), or the days it has left when it ends within
/// 30 (`Err`). `node`: a node's pair, which also serves at the node's address; else the tool's,
/// which only connects.
fn own_pair(kept: Option<&Seen>, node: bool) -> Option<Result<&'static str, i64>> {
    let why = match kept {
        None => "missing, or the key does not belong to the certificate",
        Some(s) if !s.signed_by_ca => "not signed by a CA in ca.pem",
        Some(s) if node && !s.covers_address => {
            "not naming the host's advertised address (an IP or DNS SAN)"
        }
        Some(s) if !s.admitted => {
            "naming nothing [cluster.tls] allowed-subject-names admits (CN or DNS/URI SAN), so the nodes would refuse it"
        }
        Some(s) if node && !(s.server_auth && s.client_auth) => {
            "its extended key usage lacks serverAuth or clientAuth, which a node needs to serve and to connect to the others"
        }
        Some(s) if !s.client_auth => "its extended key usage lacks clientAuth",
        Some(s) if s.days_left < 0 => "expired",
        Some(s) if s.days_left <= RENEW_DAYS => return Some(Err(s.days_left)),
        Some(_) => return None,
    };
    Some(Ok(why))
}

/// With your own CA nothing is issued: a node's pair in `ca-dir` that cannot serve refuses the
/// run (`Ok`), one that ends within 30 days is warned of (`Err`).
pub fn own_problem(
    host: &str,
    node: &str,
    kept: Option<&Seen>,
    ca_dir: &str,
) -> Option<Result<String, String>> {
    let files = format!("{ca_dir}/nodes/{node}.pem and {node}.key");
    Some(match own_pair(kept, true)? {
        Ok(why) => Ok(format!(
            "{host}: {files}: {why}; with ca = \"own\" restate-fleet issues nothing: put a pair your CA signed there; nothing was changed"
        )),
        Err(days) => Err(format!(
            "{host}: {files} end in {days} day(s); renew them with your CA and `restate-fleet apply` pushes them (no restart)"
        )),
    })
}

/// What refuses a host's own files, judged where they are: the certificate as a node's pair of
/// your CA is judged, the key readable by the service's user and nobody else, and a CA bundle
/// that verifies every peer.
pub fn in_place_problems(host: &str, cert: Option<&Seen>, files: &InPlace) -> Vec<String> {
    let [cert_file, key_file, ca_file] = &files.paths;
    let fix = "put it right with the tooling that places it and re-run; nothing was changed";
    let mut problems = Vec::new();
    if !files.cert_found {
        problems.push(format!("{host}: {cert_file}: no such file; {fix}"));
    } else if let Some(Ok(why)) = own_pair(cert, true) {
        let why = if cert.is_none() {
            "no certificate in it that can be read (PEM)"
        } else {
            why
        };
        problems.push(format!("{host}: {cert_file}: {why}; {fix}"));
    }
    match &files.key {
        None => problems.push(format!("{host}: {key_file}: no such file; {fix}")),
        Some(key) if key.world_readable => problems.push(format!(
            "{host}: {key_file}: readable by every user on the host (mode {:04o}); chmod 0600 (owned by the service's user) or 0640 (its group), and re-run; nothing was changed",
            key.mode
        )),
        Some(key) if key.service_user_reads == Some(false) => problems.push(format!(
            "{host}: {key_file}: the service's user cannot read it (mode {:04o}); give it to that user or its group, and re-run; nothing was changed",
            key.mode
        )),
        Some(_) => {}
    }
    if !files.ca_found {
        problems.push(format!("{host}: {ca_file}: no such file; {fix}"));
    } else if !files.untrusted.is_empty() {
        problems.push(format!(
            "{host}: {ca_file} does not verify the certificate of {}: it would refuse them; {fix}",
            files.untrusted.join(", ")
        ));
    }
    problems
}

/// The tool's own client pair under your own CA, judged like a node's but for its address.
pub fn tool_problem(tool: Option<&Seen>, ca_dir: &str) -> Option<Result<String, String>> {
    let files = format!("{ca_dir}/restate-fleet.pem and restate-fleet.key");
    Some(match own_pair(tool, false)? {
        Ok(why) => Ok(format!(
            "the tool's client certificate {files}: {why}; with ca = \"own\" put a client certificate (extended key usage clientAuth) of your CA there; nothing was changed"
        )),
        Err(days) => Err(format!(
            "the tool's client certificate {files} ends in {days} day(s); renew it with your CA"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate that passes every check, 300 days from its end.
    fn usable() -> Seen {
        Seen {
            signed_by_ca: true,
            covers_address: true,
            admitted: true,
            server_auth: true,
            client_auth: true,
            days_left: 300,
        }
    }
    use TlsMode::*;

    fn host(name: &str, member: bool, mode: Option<TlsMode>) -> TlsHost {
        TlsHost {
            name: name.into(),
            member,
            mode,
            version: Some("1.7.12".into()),
        }
    }

    fn phases(r: &Rollout) -> Vec<(TlsMode, Vec<&str>)> {
        r.phases
            .iter()
            .map(|(m, h)| (*m, h.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn a_cluster_moves_one_mode_at_a_time_on_every_host() {
        // (hosts, target) -> join_at, phases
        let three = |mode| {
            vec![
                host("n1", true, mode),
                host("n2", true, mode),
                host("n3", true, mode),
            ]
        };
        let all = vec!["n1", "n2", "n3"];
        type Case<'a> = (
            Vec<TlsHost>,
            TlsMode,
            Option<TlsMode>,
            Vec<(TlsMode, Vec<&'a str>)>,
        );
        let cases: Vec<Case> = vec![
            (
                three(None),
                Require,
                None,
                vec![
                    (Allow, all.clone()),
                    (Prefer, all.clone()),
                    (Require, all.clone()),
                ],
            ),
            (three(Some(Require)), Require, Some(Require), vec![]),
            (
                three(Some(Allow)),
                Require,
                Some(Allow),
                vec![(Prefer, all.clone()), (Require, all.clone())],
            ),
            // Down again, one mode at a time.
            (
                three(Some(Require)),
                Off,
                Some(Require),
                vec![
                    (Prefer, all.clone()),
                    (Allow, all.clone()),
                    (Off, all.clone()),
                ],
            ),
            (three(None), Off, None, vec![]),
            // A run cut short after n1 went to prefer: n2 and n3 catch up first.
            (
                vec![
                    host("n1", true, Some(Prefer)),
                    host("n2", true, Some(Allow)),
                    host("n3", true, Some(Allow)),
                ],
                Require,
                Some(Allow),
                vec![(Prefer, vec!["n2", "n3"]), (Require, all.clone())],
            ),
            // A new host joins at the members' mode and then moves with them.
            (
                vec![host("n1", true, Some(Allow)), host("n4", false, None)],
                Require,
                Some(Allow),
                vec![(Prefer, vec!["n1", "n4"]), (Require, vec!["n1", "n4"])],
            ),
            // From nothing, straight at the inventory's mode.
            (
                vec![host("n1", false, None), host("n2", false, None)],
                Require,
                Some(Require),
                vec![],
            ),
        ];
        for (hosts, target, join_at, want) in cases {
            let r = rollout(&hosts, target).unwrap();
            assert_eq!(r.join_at, join_at, "{hosts:?} -> {target}");
            assert_eq!(phases(&r), want, "{hosts:?} -> {target}");
        }
    }

    #[test]
    fn hosts_two_modes_apart_are_refused() {
        let err = rollout(
            &[host("n1", true, Some(Prefer)), host("n2", true, None)],
            Require,
        )
        .unwrap_err();
        assert!(err.contains("n1 at prefer and n2 at off"), "{err}");
    }

    #[test]
    fn certificates_are_issued_when_missing_foreign_misnamed_or_ending() {
        let ok = usable();
        assert_eq!(must_issue(Some(&ok)), None);
        assert!(
            must_issue(Some(&Seen {
                admitted: false,
                ..ok.clone()
            }))
            .is_some()
        );
        assert!(must_issue(None).is_some());
        assert!(
            must_issue(Some(&Seen {
                signed_by_ca: false,
                ..ok.clone()
            }))
            .is_some()
        );
        assert!(
            must_issue(Some(&Seen {
                covers_address: false,
                ..ok.clone()
            }))
            .is_some()
        );
        assert!(
            must_issue(Some(&Seen {
                days_left: 30,
                ..ok.clone()
            }))
            .is_some()
        );
        let foreign = Seen {
            signed_by_ca: false,
            ..ok.clone()
        };
        assert!(foreign_ca_problem("n1", Some(Require), Some(&foreign), "/ca").is_some());
        // At off the files are not read: a new CA's are pushed before the first mode that reads them.
        assert!(foreign_ca_problem("n1", Some(Off), Some(&foreign), "/ca").is_none());
        assert!(foreign_ca_problem("n1", Some(Require), Some(&ok), "/ca").is_none());
        assert!(
            expiry_warning(
                "n1",
                Some(&Seen {
                    days_left: 12,
                    ..ok.clone()
                }),
                Renewal::Managed
            )
            .unwrap()
            .contains("expires in 12 day(s); `restate-fleet apply` renews it")
        );
        assert!(expiry_warning("n1", Some(&ok), Renewal::Managed).is_none());
    }

    #[test]
    fn under_your_own_ca_a_pair_that_cannot_serve_refuses_and_one_ending_warns() {
        let ok = usable();
        let with = |f: fn(&mut Seen)| {
            let mut seen = ok.clone();
            f(&mut seen);
            Some(seen)
        };
        // (node's pair, refused with, warned with)
        let cases: Vec<(Option<Seen>, Option<&str>, Option<&str>)> = vec![
            (Some(ok.clone()), None, None),
            (None, Some("n1.pem and n1.key: missing"), None),
            (with(|s| s.signed_by_ca = false), Some("not signed"), None),
            (
                with(|s| s.covers_address = false),
                Some("advertised address"),
                None,
            ),
            (
                with(|s| s.admitted = false),
                Some("allowed-subject-names admits"),
                None,
            ),
            (
                with(|s| s.client_auth = false),
                Some("lacks serverAuth or clientAuth"),
                None,
            ),
            (
                with(|s| s.server_auth = false),
                Some("lacks serverAuth or clientAuth"),
                None,
            ),
            (with(|s| s.days_left = -1), Some("expired"), None),
            (with(|s| s.days_left = 20), None, Some("end in 20 day(s)")),
        ];
        for (kept, refused, warned) in cases {
            let got = own_problem("h1", "n1", kept.as_ref(), "/pki");
            let (problem, warning) = match &got {
                Some(Ok(p)) => (Some(p.as_str()), None),
                Some(Err(w)) => (None, Some(w.as_str())),
                None => (None, None),
            };
            assert_eq!(problem.is_some(), refused.is_some(), "{kept:?}: {got:?}");
            assert_eq!(warning.is_some(), warned.is_some(), "{kept:?}: {got:?}");
            if let (Some(p), Some(r)) = (problem, refused) {
                assert!(
                    p.starts_with("h1: /pki/nodes/n1.pem") && p.contains(r),
                    "{p}"
                );
                assert!(p.ends_with("nothing was changed"), "{p}");
            }
            if let (Some(w), Some(r)) = (warning, warned) {
                assert!(w.contains(r), "{w}");
            }
        }
        let tool = tool_problem(None, "/pki").unwrap().unwrap();
        assert!(
            tool.contains("/pki/restate-fleet.pem") && tool.contains("clientAuth"),
            "{tool}"
        );
        let unadmitted = with(|s| s.admitted = false);
        assert!(tool_problem(unadmitted.as_ref(), "/pki").unwrap().is_ok());
        let server_only = with(|s| s.client_auth = false);
        assert!(tool_problem(server_only.as_ref(), "/pki").unwrap().is_ok());
        let client_only = with(|s| s.server_auth = false);
        assert!(
            tool_problem(client_only.as_ref(), "/pki").is_none(),
            "the tool serves nothing"
        );
        assert!(tool_problem(Some(&ok), "/pki").is_none());
        let ending =
            expiry_warning("n1", with(|s| s.days_left = 3).as_ref(), Renewal::Pushed).unwrap();
        assert!(ending.contains("renew it with your CA"), "{ending}");
    }

    #[test]
    fn a_hosts_own_files_refuse_the_run_for_what_would_break_it() {
        use restate_fleet_proto::agent::KeyAccess;
        let ok = usable();
        let key = |mode: u32, reads: Option<bool>| KeyAccess {
            mode,
            world_readable: mode & 0o004 != 0,
            service_user_reads: reads,
        };
        let good = InPlace {
            paths: ["/pki/n1.pem", "/pki/n1.key", "/pki/ca.pem"].map(String::from),
            cert_found: true,
            key: Some(key(0o600, Some(true))),
            ca_found: true,
            untrusted: vec![],
        };
        let unaddressed = Seen {
            covers_address: false,
            ..ok.clone()
        };
        // (certificate as judged, files, what the one refusal says)
        let cases: Vec<(Option<&Seen>, InPlace, Option<&str>)> = vec![
            (Some(&ok), good.clone(), None),
            (
                Some(&ok),
                InPlace {
                    key: Some(key(0o640, None)),
                    ..good.clone()
                },
                None,
            ),
            (
                None,
                InPlace {
                    cert_found: false,
                    ..good.clone()
                },
                Some("/pki/n1.pem: no such file"),
            ),
            (
                None,
                good.clone(),
                Some("/pki/n1.pem: no certificate in it that can be read"),
            ),
            (
                Some(&unaddressed),
                good.clone(),
                Some("/pki/n1.pem: not naming the host's advertised address"),
            ),
            (
                Some(&ok),
                InPlace {
                    key: None,
                    ..good.clone()
                },
                Some("/pki/n1.key: no such file"),
            ),
            (
                Some(&ok),
                InPlace {
                    key: Some(key(0o644, Some(true))),
                    ..good.clone()
                },
                Some("readable by every user on the host (mode 0644)"),
            ),
            (
                Some(&ok),
                InPlace {
                    key: Some(key(0o600, Some(false))),
                    ..good.clone()
                },
                Some("the service's user cannot read it"),
            ),
            (
                Some(&ok),
                InPlace {
                    ca_found: false,
                    ..good.clone()
                },
                Some("/pki/ca.pem: no such file"),
            ),
            (
                Some(&ok),
                InPlace {
                    untrusted: vec!["n2".into(), "the tool".into()],
                    ..good.clone()
                },
                Some("/pki/ca.pem does not verify the certificate of n2, the tool"),
            ),
        ];
        for (cert, files, want) in cases {
            let problems = in_place_problems("h1", cert, &files);
            match want {
                None => assert!(problems.is_empty(), "{files:?}: {problems:?}"),
                Some(want) => {
                    assert_eq!(problems.len(), 1, "{files:?}: {problems:?}");
                    assert!(
                        problems[0].starts_with("h1: ") && problems[0].contains(want),
                        "{problems:?}"
                    );
                    assert!(problems[0].ends_with("nothing was changed"), "{problems:?}");
                }
            }
        }
    }
}

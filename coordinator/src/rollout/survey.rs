//! The survey, the first phase of a run: observing and judging, interleaved where what a host is
//! decides what to look at next (which hosts' binaries, whose restatectl, which ports). Each look
//! is `observe`'s and each judgement `decide`'s; this file only calls them in that order.

use futures_util::future::join_all;
use restate_fleet_inventory::{Fleet, Role};

use super::decide;
use super::decide::plan::{self, Gathered, HostState};
use super::decide::preflight::{self, Seen};
use super::decide::restatectl::{self, Candidate, Finding, Found, Source};
use super::decide::survey::{Class, Survey, Surveyed, classify};
use super::observe::{self, cluster, host_checks, restatectl as look};
use crate::reach::{ReachError, Reached, Reacher};
use crate::server_binary::LocalServers;

/// Guide steps 1 and 2, changing nothing: every host's facts and class, the cluster's view, each
/// host's restate-server against the inventory's, the preflight and host checks, restatectl and
/// the snapshot store as the steps will need them.
pub async fn survey(
    fleet: &Fleet,
    reached: Vec<Reached>,
    servers: Option<&LocalServers>,
    allow_version_skip: bool,
) -> Result<Survey, ReachError> {
    let (facts, view) = cluster::facts_and_view(fleet, &reached).await?;
    let hosts = reached
        .into_iter()
        .zip(facts)
        .map(|(reached, facts)| Surveyed {
            class: classify(fleet, &reached.host, &facts, view.as_ref()),
            reached,
            facts,
            server: None,
            tls: None,
        })
        .collect();
    let mut survey = Survey {
        hosts,
        view,
        leaving: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        restatectl: None,
        snapshot_store: Vec::new(),
        tls: None,
    };
    if let Some(servers) = servers {
        binaries(servers, &mut survey, allow_version_skip).await?;
    }
    let seen: Vec<Seen> = survey
        .hosts
        .iter()
        .map(|h| Seen {
            host: &h.reached.host,
            facts: &h.facts,
            class: &h.class,
            server: h.server.as_ref(),
        })
        .collect();
    let (problems, warnings) = preflight::preflight(fleet, &seen, survey.view.as_ref());
    survey.problems.extend(problems);
    survey.warnings.extend(warnings);
    let (problems, warnings) = decide::host_checks::findings(&checked(&survey).await?);
    survey.problems.extend(problems);
    survey.warnings.extend(warnings);
    fabric_tls(fleet, &mut survey).await?;
    let (restatectl, store) = tokio::join!(locate(fleet, &survey), probe_store(fleet, &survey));
    survey.restatectl = restatectl;
    survey.snapshot_store = store;
    Ok(survey)
}

/// With `[cluster.tls]`: where each host's fabric TLS is, what the rollout does, and the
/// certificates it issues or pushes; each host's file is kept at its mode by the other steps.
async fn fabric_tls(fleet: &Fleet, survey: &mut Survey) -> Result<(), ReachError> {
    let Some(dir) = crate::ca_dir::CaDir::of(fleet) else {
        return Ok(());
    };
    let taking_part: Vec<&decide::survey::Surveyed> = survey
        .hosts
        .iter()
        .filter(|h| matches!(h.class, Class::Member | Class::New))
        .collect();
    let mut hosts = Vec::new();
    for h in &taking_part {
        let written = h.facts.config.values.tls_mode.as_deref();
        let mode = written.map(restate_fleet_inventory::TlsMode::parse);
        if let Some(None) = mode {
            survey.problems.push(format!(
                "{}: [tls] mode = {:?} in {} is no mode Restate knows (off, allow, prefer, require); fix the file by hand; nothing was changed",
                h.name(),
                written.unwrap_or_default(),
                h.reached.host.config_path
            ));
            return Ok(());
        }
        hosts.push(decide::tls::TlsHost {
            name: h.name().to_string(),
            member: h.class == Class::Member,
            mode: mode.flatten(),
            version: plan::version_after_upgrades(h).map(str::to_string),
        });
    }
    let reached: Vec<&Reached> = taking_part.iter().map(|h| &h.reached).collect();
    let patterns = decide::desired::subject_patterns(fleet);
    let looked = observe::certificates::look(&dir, &patterns, &reached).await?;
    let shown = dir.dir.display().to_string();
    match decide::tls::decide(
        fleet,
        &hosts,
        &shown,
        looked.as_ref().map_err(String::as_str),
    ) {
        Ok((decided, warnings)) => {
            for host in survey.hosts.iter_mut() {
                host.tls = match hosts.iter().find(|t| t.name == host.name()) {
                    Some(t) if t.member => t.mode,
                    Some(_) => decided.rollout.join_at,
                    None => None,
                };
            }
            survey.warnings.extend(warnings);
            survey.tls = Some(decided);
        }
        Err(problems) => survey.problems.extend(problems),
    }
    Ok(())
}

/// What happens to each host's restate-server; a host that cannot be served is a problem.
async fn binaries(
    servers: &LocalServers,
    survey: &mut Survey,
    allow_version_skip: bool,
) -> Result<(), ReachError> {
    let hosts: Vec<_> = survey
        .hosts
        .iter()
        .map(|h| (&h.reached, &h.facts))
        .collect();
    let looked = observe::binaries::look(servers, &hosts).await?;
    for (host, looked) in survey.hosts.iter_mut().zip(looked) {
        match decide::server::decide(host, servers, looked, allow_version_skip) {
            Ok(server) => host.server = Some(server),
            Err(problem) => survey.problems.push(problem),
        }
    }
    Ok(())
}

/// The host checks' answers; a port is held against a host only where the run starts a node.
async fn checked(survey: &Survey) -> Result<Vec<host_checks::Checked>, ReachError> {
    let asks = survey
        .hosts
        .iter()
        .map(|h| host_checks::Ask {
            reached: &h.reached,
            facts: &h.facts,
            starts_node: h.class == Class::New || decide::survey::stopped(h, survey.view.as_ref()),
            ports: decide::host_checks::ports(&h.reached.host.advertised_address),
        })
        .collect();
    host_checks::gather(asks).await
}

/// Whether every worker host (member or new) reaches the snapshot repository's endpoint; nothing
/// to probe when the inventory names none (the cloud's own S3).
async fn probe_store(fleet: &Fleet, survey: &Survey) -> Vec<observe::snapshot_store::Probe> {
    let Some(endpoint) = fleet
        .cluster
        .snapshots
        .as_ref()
        .and_then(|s| s.aws_endpoint_url.as_deref())
    else {
        return Vec::new();
    };
    let workers: Vec<&Reached> = survey
        .hosts
        .iter()
        .filter(|h| {
            matches!(h.class, Class::Member | Class::New) && h.reached.host.has_role(Role::Worker)
        })
        .map(|h| &h.reached)
        .collect();
    observe::snapshot_store::probe(endpoint, &workers).await
}

/// The nodes that leave the cluster: those no inventory host names (their hosts reached with
/// `reacher`), and the old nodes of hosts that came back without their data.
pub async fn leaving(fleet: &Fleet, survey: &mut Survey, reacher: Option<&Reacher>) {
    if let (Some(view), Some(reacher)) = (&survey.view, reacher) {
        survey.leaving = observe::leaving::gather(fleet, view, reacher).await;
    }
    let coming_back = decide::leaving::coming_back(survey);
    survey.leaving.extend(coming_back);
}

/// Finds the run's restatectl (see `decide/restatectl.rs`); `None` when the survey saw no
/// cluster. The inventory's, when it names one, is never passed over for another: a mismatch
/// stops there.
async fn locate(fleet: &Fleet, survey: &Survey) -> Option<Finding> {
    let release = restatectl::cluster_release(fleet, survey)?;
    let mut finding = Finding {
        release: release.to_string(),
        ..Finding::default()
    };
    let Some(on) = restatectl::driver(survey) else {
        finding.passed_over.push(
            "no member that stays runs the admin role and is alive to run restatectl against"
                .to_string(),
        );
        return Some(finding);
    };
    let mut take = |candidate: Candidate| match restatectl::judge(&candidate, &release) {
        Ok(version) => {
            finding.chosen = Some(Found {
                source: candidate.source,
                version,
                on: on.name().to_string(),
            });
            true
        }
        Err(why) => {
            finding.passed_over.push(why);
            false
        }
    };
    if let Some(path) = &fleet.cluster.restatectl {
        let version = look::inventory_version(&on.reached, path).await;
        take(Candidate {
            source: Source::Inventory { path: path.clone() },
            version,
        });
        return Some(finding);
    }
    let on_path = look::find_on_path("restatectl");
    if let Some(path) = &on_path {
        let version = look::local_version(path).await.map_err(|e| e.to_string());
        if take(Candidate {
            source: Source::Path { path: path.clone() },
            version,
        }) {
            return Some(finding);
        }
    }
    match look::member_restatectl(&on.reached).await {
        Some((path, version)) => {
            take(Candidate {
                source: Source::Member { path },
                version,
            });
        }
        None => {
            if on_path.is_none() {
                finding
                    .passed_over
                    .push("none in the inventory or on this machine's PATH".to_string());
            }
            finding.passed_over.push(format!(
                "none on {} (its PATH, /usr/local/bin, /usr/bin, /opt/restate/bin)",
                on.name()
            ));
        }
    }
    Some(finding)
}

pub async fn previews(fleet: &Fleet, survey: &Survey) -> Result<Gathered, ReachError> {
    let once: Vec<bool> = survey
        .hosts
        .iter()
        .map(|h| plan::one_restart(plan::version_after_upgrades(h)))
        .collect();
    let full = join_all(survey.hosts.iter().map(|host| {
        host.reached
            .ask(plan::preview_op(fleet, host, plan::full_patch(fleet, host)))
    }));
    let fix = join_all(
        survey
            .hosts
            .iter()
            .zip(&once)
            .map(|(host, once)| async move {
                match host.class {
                    Class::Member => {
                        let patch = plan::fix_patch(fleet, host, *once);
                        host.reached
                            .ask(plan::preview_op(fleet, host, patch))
                            .await
                            .map(Some)
                    }
                    _ => Ok(None),
                }
            }),
    );
    let (full, fix) = futures_util::join!(full, fix);
    let mut hosts = Vec::new();
    for (((host, full), fix), once) in survey.hosts.iter().zip(full).zip(fix).zip(once) {
        hosts.push(HostState {
            name: host.name().to_string(),
            node_name: host.reached.host.node_name.clone(),
            class: host.class.clone(),
            server: host.server.clone(),
            once,
            full: full?,
            fix: fix?,
            stopped: decide::survey::stopped(host, survey.view.as_ref()),
            repository: host.facts.config.values.snapshots_destination.is_some(),
        });
    }
    Ok(Gathered {
        hosts,
        tls: survey.tls.clone(),
        view: survey.view.clone(),
        leaving: survey
            .leaving
            .iter()
            .map(|l| (l.node.name.clone(), l.holdings()))
            .collect(),
    })
}

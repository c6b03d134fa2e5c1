//! What `check` looks at beyond the scaling guide, as TiUP's and k0sctl's host checks do: clocks,
//! free space, the open-files limit, ports another process holds, cloned machines. The agents'
//! answers come from `observe/host_checks.rs`; [`findings`] decides, purely, what each figure
//! means: a problem stops the run before any change, a warning does not.

use std::time::Duration;

use crate::rollout::observe::host_checks::Checked;

/// A host whose clock is this far from the others' gets a warning: Restate's timers fire, and
/// its leases run out, by the clock of whichever node leads the partition.
const SKEW_WARNING: Duration = Duration::from_millis(500);
/// This far, and timers and leases move by that much at every leadership change: refused.
const SKEW_PROBLEM: Duration = Duration::from_secs(5);
/// Below this much free space RocksDB cannot compact or flush: refused.
const SPACE_PROBLEM: u64 = 1 << 30;
/// Below this much (or [`SPACE_WARNING_SHARE`] of the filesystem) it is a matter of days.
const SPACE_WARNING: u64 = 5 << 30;
const SPACE_WARNING_SHARE: f64 = 0.05;
/// The open-files limit restate-fleet's own unit sets; RocksDB keeps a descriptor per SST file.
const OPEN_FILES_WANTED: u64 = 65_536;
/// Restate's default ingress and admin ports; the fabric's comes from the advertised address.
const INGRESS_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9070;
const FABRIC_PORT: u16 = 5122;

/// The ports asked about on a host: its fabric's (from the address it advertises), ingress and admin.
pub fn ports(advertised: &str) -> Vec<u16> {
    let fabric = advertised
        .trim_end_matches('/')
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(FABRIC_PORT);
    vec![fabric, INGRESS_PORT, ADMIN_PORT]
}

/// Problems and warnings over every host's answer.
pub fn findings(hosts: &[Checked]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    clocks(hosts, &mut problems, &mut warnings);
    for host in hosts {
        space(host, &mut problems, &mut warnings);
        open_files(host, &mut warnings);
        if host.starts_node {
            ports_held(host, &mut problems);
        } else {
            exposure(host, &mut warnings);
        }
    }
    duplicates(
        hosts,
        |h| h.checks.machine_id.as_deref(),
        "/etc/machine-id",
        "a cloned VM: give each its own with `rm /etc/machine-id && systemd-machine-id-setup` (then reboot it)",
        &mut problems,
    );
    duplicates(
        hosts,
        |h| h.hostname.as_deref(),
        "hostname",
        "logs, metrics and support bundles will not tell them apart: `hostnamectl set-hostname` each one its own",
        &mut warnings,
    );
    (problems, warnings)
}

/// Each host's clock against the others': with three hosts or more, against their median (the
/// laptop's own clock may be the one off); else against this machine's.
fn clocks(hosts: &[Checked], problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    let mut offsets: Vec<i64> = hosts.iter().map(|h| h.offset_ms).collect();
    offsets.sort_unstable();
    let (reference, against) = match offsets.len() {
        0 => return,
        1 | 2 => (0, "this machine's"),
        n if n % 2 == 1 => (offsets[n / 2], "the other hosts'"),
        n => (
            (offsets[n / 2 - 1] + offsets[n / 2]) / 2,
            "the other hosts'",
        ),
    };
    for host in hosts {
        let off = host.offset_ms - reference;
        let sure = off
            .unsigned_abs()
            .saturating_sub(host.uncertainty_ms.unsigned_abs());
        let text = format!(
            "{}: its clock is {} {} {against} (±{} ms); Restate's timers and leases follow the clock of the node that leads a partition: sync it (timedatectl set-ntp true, or chrony)",
            host.name,
            seconds(off.unsigned_abs()),
            if off > 0 { "ahead of" } else { "behind" },
            host.uncertainty_ms
        );
        if sure > SKEW_PROBLEM.as_millis() as u64 {
            problems.push(text);
        } else if sure > SKEW_WARNING.as_millis() as u64 {
            warnings.push(text);
        }
    }
    if against == "the other hosts'" && reference.unsigned_abs() > SKEW_PROBLEM.as_millis() as u64 {
        warnings.push(format!(
            "this machine's clock is {} off the hosts'; the run journal's times will be too: sync it",
            seconds(reference.unsigned_abs())
        ));
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn space(host: &Checked, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    let Some(space) = &host.checks.space else {
        return;
    };
    let text = |risk: &str| {
        format!(
            "{}: {} free of {} on the filesystem of {} (restate-server's data); {risk}",
            host.name,
            bytes(space.available_bytes),
            bytes(space.total_bytes),
            space.path.display()
        )
    };
    let share = space.available_bytes as f64 / space.total_bytes.max(1) as f64;
    if space.available_bytes < SPACE_PROBLEM {
        problems.push(text(
            "RocksDB cannot flush or compact with less than 1 GiB: free space there first",
        ));
    } else if space.available_bytes < SPACE_WARNING || share < SPACE_WARNING_SHARE {
        warnings.push(text("free space there before it runs out"));
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn open_files(host: &Checked, warnings: &mut Vec<String>) {
    let Some(limit) = &host.checks.open_files else {
        return;
    };
    if limit.hard < OPEN_FILES_WANTED {
        warnings.push(format!(
            "{}: restate-server may open at most {} files ({}); RocksDB keeps one per SST file and fails with \"too many open files\" under load: raise it to {OPEN_FILES_WANTED} or more (LimitNOFILE= in the unit, or the limits the service commands run with)",
            host.name, limit.hard, limit.source
        ));
    }
}

fn ports_held(host: &Checked, problems: &mut Vec<String>) {
    for listener in &host.checks.listeners {
        let holder = match (&listener.process, listener.pid) {
            (Some(process), Some(pid)) => format!("{process} (pid {pid})"),
            _ => "another process".to_string(),
        };
        let key = match listener.port {
            INGRESS_PORT => "ingress.bind-address",
            ADMIN_PORT => "admin.bind-address",
            _ => "bind-address",
        };
        problems.push(format!(
            "{}: port {} is already bound by {holder} on {}, and restate-server is to start here: stop that process, or move restate-server's port ({key} in the host's config)",
            host.name, listener.port, listener.address
        ));
    }
}

/// A running node's fabric or admin API listening on every interface: Restate's security page
/// says never to expose the fabric (it also serves `/metrics` and `/debug/pprof/heap`), and the
/// admin API has no authentication at all.
fn exposure(host: &Checked, warnings: &mut Vec<String>) {
    let everywhere =
        |l: &&restate_fleet_proto::agent::Listener| l.address == "0.0.0.0" || l.address == "::";
    let mode = host.tls_mode.as_deref().unwrap_or("off");
    for listener in host.checks.listeners.iter().filter(everywhere) {
        match listener.port {
            ADMIN_PORT => warnings.push(format!(
                "{}: the admin API (port {ADMIN_PORT}) listens on all interfaces ({}) and has no authentication: anyone who reaches it can change the cluster; bind it to localhost or a private address (`admin.bind-address` in the host's config in the inventory)",
                host.name, listener.address
            )),
            INGRESS_PORT => {}
            _ if mode != "require" => warnings.push(format!(
                "{}: the fabric (port {}) listens on all interfaces ({}) with fabric TLS {mode}: anyone who reaches it can read the cluster's traffic and call its cluster controller; bind it to a private address (`bind-address` in the host's config in the inventory) or require TLS ([cluster.tls] with ca = \"managed\" or \"own\" in the inventory, docs/fabric-tls.md)",
                host.name, listener.port, listener.address
            )),
            _ => {}
        }
    }
}

fn duplicates(
    hosts: &[Checked],
    value: impl Fn(&Checked) -> Option<&str>,
    what: &str,
    why: &str,
    out: &mut Vec<String>,
) {
    let mut seen: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for host in hosts {
        if let Some(v) = value(host) {
            seen.entry(v).or_default().push(host.name.as_str());
        }
    }
    for (v, names) in seen.into_iter().filter(|(_, n)| n.len() > 1) {
        out.push(format!(
            "{} have the same {what} ({v}): {why}",
            names.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests;

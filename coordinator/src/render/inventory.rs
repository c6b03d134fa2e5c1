//! `inventory`: the resolved fleet, one row per host, then the cluster's settings.

use restate_fleet_inventory::{DEFAULT_INSTALL_PATH, Fleet, Host, Role, ServerBinary, Service};

/// The human view: one row per host, then the cluster's settings and the config patches.
pub fn inventory(fleet: &Fleet, hosts: &[&Host]) -> String {
    let mut rows = vec![
        [
            "HOST",
            "ADDRESS",
            "USER",
            "NODE-NAME",
            "ROLES",
            "METADATA",
            "ADVERTISED",
            "SERVICE",
        ]
        .map(String::from),
    ];
    for host in hosts {
        rows.push([
            host.name.clone(),
            format!("{}:{}", host.ssh.address, host.ssh.port),
            format!(
                "{}{}",
                host.ssh.user.as_deref().unwrap_or("-"),
                if host.ssh.become_root { " (sudo)" } else { "" }
            ),
            host.node_name.clone(),
            roles(&host.roles),
            match (host.metadata_server, host.has_role(Role::MetadataServer)) {
                (true, _) => "yes",
                // Runs a metadata server that does not join (auto-join = false).
                (false, true) => "standby",
                (false, false) => "no",
            }
            .to_string(),
            host.advertised_address.clone(),
            match (&host.service, &host.service_user) {
                (Service::Systemd { unit }, None) => format!("systemd {unit}"),
                (Service::Systemd { unit }, Some(user)) => format!("systemd {unit} as {user}"),
                (Service::Command { .. }, None) => "command".to_string(),
                (Service::Command { .. }, Some(user)) => format!("command as {user}"),
            },
        ]);
    }
    let mut out = super::table(&rows);
    let cluster = &fleet.cluster;
    out.push_str(&format!("\ncluster: {}\n", cluster.name));
    match (cluster.replication, cluster.replication_property) {
        (Some(_), Some(spread)) if spread.is_location_aware() => {
            out.push_str(&format!("  replication: {spread}\n"))
        }
        (Some(replication), _) => out.push_str(&format!("  replication: {replication}\n")),
        (None, _) => {}
    }
    let placed: Vec<String> = hosts
        .iter()
        .filter_map(|h| h.location.as_ref().map(|l| format!("{} {l}", h.name)))
        .collect();
    if !placed.is_empty() {
        out.push_str(&format!("  locations: {}\n", placed.join(", ")));
    }
    out.push_str(&format!(
        "  metadata servers: {}\n",
        cluster.metadata_servers.join(", ")
    ));
    if let Some(server) = &cluster.restate_server {
        let binary = match &server.binary {
            ServerBinary::Any(path) => path.display().to_string(),
            ServerBinary::PerArch(paths) => paths
                .iter()
                .map(|(arch, path)| format!("{}: {}", arch.as_str(), path.display()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(
            "  restate-server: {} ({binary}), installed at {}\n",
            server.version,
            server.install_path.as_deref().map_or_else(
                || format!("the host's own path, else {DEFAULT_INSTALL_PATH}"),
                |p| p.display().to_string()
            )
        ));
    }
    if let Some(snapshots) = &cluster.snapshots {
        out.push_str("  snapshots:\n");
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(snapshots) {
            for (key, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                out.push_str(&format!("    {}: {value}\n", key.replace('_', "-")));
            }
        }
    }
    for host in hosts.iter().filter(|h| !h.config.is_empty()) {
        out.push_str(&format!(
            "\nconfig of {} ({}):\n",
            host.name, host.config_path
        ));
        for entry in &host.config {
            let value = serde_json::to_string(&entry.value).unwrap_or_default();
            out.push_str(&format!("  {} = {value}\n", entry.dotted_path()));
        }
    }
    out
}

fn roles(roles: &[Role]) -> String {
    if Role::ALL.iter().all(|r| roles.contains(r)) {
        "all".to_string()
    } else {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

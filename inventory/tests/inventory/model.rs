//! The resolved model: defaults, precedence, cluster settings, redaction.

use restate_fleet_inventory::{Arch, ConfigValue, Role, ServerBinary, Service};

use crate::support::{fixture, ok};

#[test]
fn the_labs_inventory_parses_with_defaults_filled_in() {
    let loaded = ok(&fixture("lab.toml"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let fleet = loaded.fleet;
    assert_eq!(fleet.cluster.name, "lab-x");
    assert_eq!(fleet.cluster.metadata_servers, ["n1", "n2", "n3"]);
    let snapshots = fleet.cluster.snapshots.as_ref().unwrap();
    assert_eq!(snapshots.destination, "s3://snapshots/lab-x");
    assert_eq!(snapshots.aws_allow_http, Some(true));
    assert_eq!(
        snapshots.aws_access_key_id.as_ref().unwrap().expose(),
        "test"
    );
    assert_eq!(
        snapshots.aws_secret_access_key.as_ref().unwrap().expose(),
        "s3-secret-value"
    );

    let n1 = &fleet.hosts[0];
    assert_eq!(n1.name, "n1");
    assert_eq!(n1.node_name, "n1");
    assert_eq!(n1.ssh.address, "198.18.0.11");
    assert_eq!(n1.ssh.port, 22);
    assert_eq!(n1.ssh.user.as_deref(), Some("root"));
    assert_eq!(n1.ssh.identity_file.as_deref(), Some("/opt/lab/id_ed25519"));
    assert!(!n1.ssh.become_root);
    assert_eq!(n1.advertised_address, "http://198.18.0.11:5122/");
    assert_eq!(n1.roles, Role::ALL);
    assert!(n1.metadata_server);
    assert_eq!(n1.config_path, "/etc/restate/restate.toml");
    assert_eq!(
        n1.service,
        Service::Command {
            start: vec!["/opt/lab/restate-ctl".into(), "start".into()],
            stop: vec!["/opt/lab/restate-ctl".into(), "stop".into()],
            restart: vec!["/opt/lab/restate-ctl".into(), "restart".into()],
            status: vec!["/opt/lab/restate-ctl".into(), "status".into()],
            log: None,
        }
    );
    assert_eq!(n1.config.len(), 1);
    assert_eq!(n1.config[0].path, ["rocksdb-total-memory-size"]);
    assert_eq!(n1.config[0].value, ConfigValue::String("512 MiB".into()));
    assert!(!n1.config[0].secret);
}

#[test]
fn precedence_is_defaults_then_groups_in_file_order_then_host() {
    let fleet = ok(&fixture("full.toml")).fleet;
    let host = |name: &str| fleet.hosts.iter().find(|h| h.name == name).unwrap();
    // Group over defaults.
    assert_eq!(host("n4").ssh.user.as_deref(), Some("restate"));
    assert!(host("n4").ssh.become_root);
    assert_eq!(
        host("n4").roles,
        [Role::Worker, Role::LogServer, Role::HttpIngress]
    );
    assert!(!host("n4").metadata_server);
    // Host over group.
    assert_eq!(host("n5").ssh.user.as_deref(), Some("admin"));
    // Defaults where nobody overrides.
    assert_eq!(host("n1").ssh.user.as_deref(), Some("root"));
    assert_eq!(host("n3").ssh.port, 2222);
    assert_eq!(host("n3").node_name, "node-three");
    assert_eq!(host("n2").advertised_address, "http://n2.internal:5122/");
    assert_eq!(host("n4").groups, ["workers"]);
    assert_eq!(
        host("n1").service,
        Service::Systemd {
            unit: "restate.service".into()
        }
    );
    assert_eq!(
        host("n4").service,
        Service::Command {
            start: vec!["/usr/local/bin/restate-ctl".into(), "start".into()],
            stop: vec!["/usr/local/bin/restate-ctl".into(), "stop".into()],
            restart: vec![
                "/usr/local/bin/restate-ctl".into(),
                "restart".into(),
                "with space".into()
            ],
            status: vec!["/usr/local/bin/restate-ctl".into(), "status".into()],
            log: None,
        }
    );
    assert_eq!(
        host("n1")
            .ssh
            .identity_passphrase
            .as_ref()
            .unwrap()
            .expose(),
        "passphrase-value"
    );
}

#[test]
fn config_tables_merge_per_key_into_a_flat_ordered_patch() {
    let fleet = ok(&fixture("full.toml")).fleet;
    let config = |name: &str| {
        let host = fleet.hosts.iter().find(|h| h.name == name).unwrap();
        host.config
            .iter()
            .map(|e| {
                (
                    e.dotted_path(),
                    serde_json::to_string(&e.value).unwrap(),
                    e.secret,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        config("n1"),
        [
            (
                "rocksdb-total-memory-size".into(),
                "\"512 MiB\"".into(),
                false
            ),
            (
                "worker.storage.rocksdb-max-background-jobs".into(),
                "2".into(),
                false
            ),
        ]
    );
    assert_eq!(
        config("n4")[0],
        (
            "rocksdb-total-memory-size".into(),
            "\"1 GiB\"".into(),
            false
        )
    );
    assert_eq!(
        config("n5"),
        [
            (
                "rocksdb-total-memory-size".into(),
                "\"2 GiB\"".into(),
                false
            ),
            (
                "worker.storage.rocksdb-max-background-jobs".into(),
                "2".into(),
                false
            ),
            (
                "ingress.bind-address".into(),
                "\"0.0.0.0:8080\"".into(),
                false
            ),
            (
                "admin.query-engine.memory-size".into(),
                "\"1 GiB\"".into(),
                false
            ),
            ("metrics-secret".into(), "\"<redacted>\"".into(), true),
        ]
    );
    let n5 = fleet.hosts.iter().find(|h| h.name == "n5").unwrap();
    match &n5.config[4].value {
        ConfigValue::Secret(s) => assert_eq!(s.expose(), "db-password-value"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_later_config_key_replaces_overlapping_keys() {
    let fleet = crate::support::ok(&format!(
        "{}[defaults.config]\na.b = 1\nc = 2\n[hosts.n1]\naddress = \"h\"\nconfig = {{ a = 3, c.d = 4 }}\n",
        crate::support::CLUSTER
    ))
    .fleet;
    let entries: Vec<_> = fleet.hosts[0]
        .config
        .iter()
        .map(|e| (e.dotted_path(), e.value.clone()))
        .collect();
    assert_eq!(
        entries,
        [
            ("a".into(), ConfigValue::Integer(3)),
            ("c.d".into(), ConfigValue::Integer(4))
        ]
    );
}

#[test]
fn cluster_settings_are_kept_apart_from_the_host_patch() {
    let fleet = ok(&fixture("full.toml")).fleet;
    assert_eq!(fleet.cluster.replication, Some(2));
    assert_eq!(fleet.cluster.metadata_servers, ["n1", "n2", "n3"]);
    let server = fleet.cluster.restate_server.as_ref().unwrap();
    assert_eq!(server.version, "1.7.12");
    let ServerBinary::PerArch(_) = &server.binary else {
        panic!("{server:?}")
    };
    // Relative paths are relative to the inventory file.
    assert_eq!(
        server.binary.for_arch(Arch::X86_64).unwrap().to_str(),
        Some("bin/restate-server-x86_64")
    );
    assert_eq!(
        server.binary.for_arch(Arch::Aarch64).unwrap().to_str(),
        Some("/opt/restate-server-aarch64")
    );
    for host in &fleet.hosts {
        assert!(
            host.config
                .iter()
                .all(|e| e.path[0] != "worker" || e.path[1] != "snapshots")
        );
    }
}

#[test]
fn relative_binary_paths_resolve_against_the_inventory_directory() {
    let text = format!(
        "{}restate-server = {{ version = \"1.7.12\", path = \"bin/restate-server\" }}\n[hosts.n1]\naddress = \"h\"\n",
        crate::support::CLUSTER
    );
    let loaded =
        restate_fleet_inventory::parse("/etc/fleet/inventory.toml", &text, &|_| None).unwrap();
    let server = loaded.fleet.cluster.restate_server.unwrap();
    assert_eq!(
        server.binary.for_arch(Arch::Aarch64).unwrap().to_str(),
        Some("/etc/fleet/bin/restate-server")
    );
}

#[test]
fn serialized_fleet_redacts_every_secret() {
    let fleet = ok(&fixture("full.toml")).fleet;
    let json = serde_json::to_string_pretty(&fleet).unwrap();
    for secret in [
        "s3-secret-value",
        "passphrase-value",
        "db-password-value",
        "AKIAEXAMPLE",
    ] {
        assert!(!json.contains(secret), "{secret} leaked into JSON");
        assert!(
            !format!("{fleet:?}").contains(secret),
            "{secret} leaked into Debug"
        );
    }
    assert!(
        json.contains("\"aws_secret_access_key\": \"<redacted>\""),
        "{json}"
    );
    assert!(
        json.contains("\"identity_passphrase\": \"<redacted>\""),
        "{json}"
    );
}

#[test]
fn metadata_servers_default_to_hosts_with_the_role() {
    let fleet = ok(&format!(
        "{}[hosts.a]\naddress = \"a\"\n[hosts.b]\naddress = \"b\"\nroles = [\"worker\"]\n[hosts.c]\naddress = \"c\"\nroles = [\"metadata-server\", \"admin\"]\n",
        crate::support::CLUSTER
    ))
    .fleet;
    assert_eq!(fleet.cluster.metadata_servers, ["a", "c"]);
    let flags: Vec<bool> = fleet.hosts.iter().map(|h| h.metadata_server).collect();
    assert_eq!(flags, [true, false, true]);
}

#[test]
fn ipv6_addresses_get_a_bracketed_default_advertised_address() {
    let fleet = ok(&format!(
        "{}[hosts.a]\naddress = \"fd00::1\"\n",
        crate::support::CLUSTER
    ))
    .fleet;
    assert_eq!(fleet.hosts[0].advertised_address, "http://[fd00::1]:5122/");
}

#[test]
fn even_metadata_server_count_is_only_a_warning() {
    let loaded = ok(&format!(
        "{}metadata-servers = [\"a\", \"b\"]\n[hosts.a]\naddress = \"a\"\n[hosts.b]\naddress = \"b\"\n",
        crate::support::CLUSTER
    ));
    let text: String = loaded.warnings.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(text);
}

#[test]
fn install_path_and_service_user() {
    let text = format!(
        "{}restate-server = {{ version = \"1.7.12\", path = \"bin/restate-server\", install-path = \"/opt/restate/bin/restate-server\" }}\n\
         [defaults]\nservice = {{ manager = \"systemd\", user = \"restate\" }}\n\
         [groups.legacy]\nhosts = [\"n2\"]\nservice = {{ manager = \"systemd\", unit = \"restate-legacy.service\" }}\n\
         [hosts.n1]\naddress = \"h1\"\n[hosts.n2]\naddress = \"h2\"\n",
        crate::support::CLUSTER
    );
    let fleet = ok(&text).fleet;
    let server = fleet.cluster.restate_server.as_ref().unwrap();
    // A path on the hosts: not resolved against the inventory's directory.
    assert_eq!(
        server.install_path.as_deref().and_then(|p| p.to_str()),
        Some("/opt/restate/bin/restate-server")
    );
    let [n1, n2] = fleet.hosts.as_slice() else {
        panic!("{:?}", fleet.hosts)
    };
    assert_eq!(
        (&n1.service, n1.service_user.as_deref()),
        (
            &Service::Systemd {
                unit: "restate.service".into()
            },
            Some("restate")
        )
    );
    // A later layer replaces the service as a whole, user included.
    assert_eq!(n2.service_user, None);

    let plain = ok(&fixture("full.toml")).fleet;
    assert!(plain.cluster.restate_server.unwrap().install_path.is_none());
    assert!(plain.hosts.iter().all(|h| h.service_user.is_none()));
}

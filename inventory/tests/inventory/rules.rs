//! Every validation rule, with its exact message (snapshots are the contract of the error text).

use insta::assert_snapshot;

use crate::support::{CLUSTER, err, ok};

fn with_hosts(extra: &str) -> String {
    format!("{CLUSTER}[hosts.n1]\naddress = \"10.0.0.1\"\n{extra}")
}

#[test]
fn invalid_toml_syntax() {
    assert_snapshot!(err("[cluster]\nname = \"c\n"));
}

#[test]
fn unknown_top_level_key() {
    assert_snapshot!(err(&with_hosts("[default]\nuser = \"root\"\n")));
}

#[test]
fn unknown_host_key_with_did_you_mean() {
    assert_snapshot!(err(&format!(
        "{CLUSTER}[hosts.n1]\nadress = \"10.0.0.1\"\n"
    )));
}

#[test]
fn host_only_key_in_defaults_says_where_it_belongs() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nadvertised-address = \"http://x:5122/\"\n"
    )));
}

#[test]
fn restate_setting_outside_config_points_at_the_config_table() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nrocksdb-total-memory-size = \"1 GiB\"\n"
    )));
}

#[test]
fn unknown_cluster_and_snapshot_keys() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplicaton = 2\n[cluster.snapshots]\ndestination = \"s3://b/p\"\naws-secret-key = \"x\"\n[hosts.n1]\naddress = \"a\"\n"
    ));
}

#[test]
fn wrong_types() {
    assert_snapshot!(err(
        "[cluster]\nname = 3\n[defaults]\nport = \"22\"\nbecome = \"yes\"\nroles = \"worker\"\n[hosts.n1]\naddress = [\"a\"]\n"
    ));
}

#[test]
fn missing_cluster_name() {
    assert_snapshot!(err("[hosts.n1]\naddress = \"a\"\n"));
    assert_snapshot!(
        "missing_cluster_name_in_table",
        err("[cluster]\nreplication = 1\n[hosts.n1]\naddress = \"a\"\n")
    );
}

#[test]
fn no_hosts() {
    assert_snapshot!(err(CLUSTER));
}

#[test]
fn missing_address() {
    assert_snapshot!(err(&format!("{CLUSTER}[hosts.n1]\nuser = \"root\"\n")));
}

#[test]
fn duplicate_node_names() {
    assert_snapshot!(err(&with_hosts(
        "[hosts.n2]\naddress = \"10.0.0.2\"\nnode-name = \"n1\"\n"
    )));
}

#[test]
fn two_hosts_on_the_same_address_and_port() {
    assert_snapshot!(err(&with_hosts("[hosts.n2]\naddress = \"10.0.0.1\"\n")));
    // Another port on the same address is another machine (e.g. containers behind NAT).
    ok(&with_hosts(
        "[hosts.n2]\naddress = \"10.0.0.1\"\nport = 2222\nroles = [\"worker\"]\n",
    ));
}

#[test]
fn group_naming_an_unknown_host() {
    assert_snapshot!(err(&with_hosts(
        "[groups.g]\nhosts = [\"n1\", \"n11\", \"zz\"]\n"
    )));
}

#[test]
fn metadata_servers_naming_unknown_hosts_or_hosts_without_the_role() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nmetadata-servers = [\"n1\", \"n3\", \"n2\"]\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\nroles = [\"worker\"]\n"
    ));
}

#[test]
fn a_metadata_server_host_the_list_leaves_out_is_a_standby() {
    // Valid: n2 keeps the role and runs a standby metadata server (auto-join = false).
    let loaded = ok(
        "[cluster]\nname = \"c\"\nmetadata-servers = [\"n1\"]\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\n",
    );
    let n2 = &loaded.fleet.hosts[1];
    assert!(
        n2.roles
            .contains(&restate_fleet_inventory::Role::MetadataServer)
    );
    assert!(!n2.metadata_server);
    assert_eq!(loaded.fleet.cluster.metadata_servers, ["n1"]);
}

#[test]
fn no_metadata_server_at_all() {
    assert_snapshot!(err(&format!(
        "{CLUSTER}[defaults]\nroles = [\"worker\"]\n[hosts.n1]\naddress = \"a\"\n"
    )));
}

#[test]
fn replication_larger_than_the_hosts_that_can_hold_it() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplication = 2\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\nroles = [\"worker\", \"admin\"]\n[hosts.n3]\naddress = \"c\"\nroles = [\"admin\"]\n"
    ));
    ok(
        "[cluster]\nname = \"c\"\nreplication = 2\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\nroles = [\"worker\", \"log-server\"]\n",
    );
}

#[test]
fn replication_must_be_positive() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplication = 0\n[hosts.n1]\naddress = \"a\"\n"
    ));
}

#[test]
fn invalid_addresses_and_advertised_urls() {
    assert_snapshot!(err(&format!(
        "{CLUSTER}[hosts.n1]\naddress = \"http://10.0.0.1\"\n[hosts.n2]\naddress = \"b\"\nadvertised-address = \"b:5122\"\n[hosts.n3]\naddress = \"c\"\nadvertised-address = \"http://c/\"\n"
    )));
}

#[test]
fn port_out_of_range() {
    assert_snapshot!(err(&with_hosts("[defaults]\nport = 70000\n")));
}

#[test]
fn snapshot_destination_restate_rejects() {
    assert_snapshot!(err(&with_hosts(
        "[cluster.snapshots]\ndestination = \"file:///var/snapshots\"\n"
    )));
    assert_snapshot!(
        "snapshot_destination_unknown_scheme",
        err(&with_hosts(
            "[cluster.snapshots]\ndestination = \"http://minio:9000/b\"\n"
        ))
    );
    assert_snapshot!(
        "snapshot_destination_missing",
        err(&with_hosts("[cluster.snapshots]\naws-region = \"x\"\n"))
    );
}

#[test]
fn unknown_role_names() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nroles = [\"worker\", \"ingress\", \"metadata\"]\n"
    )));
    assert_snapshot!("empty_roles", err(&with_hosts("[defaults]\nroles = []\n")));
}

#[test]
fn unbalanced_quote_in_a_service_command_points_inside_the_string() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nservice = { manager = \"command\", start = \"ctl 'start\", stop = \"ctl stop\", restart = \"ctl restart\", status = \"\" }\n"
    )));
}

#[test]
fn service_definition_errors() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nservice = { manager = \"command\", start = \"ctl start\" }\n[hosts.n2]\naddress = \"b\"\nservice = { manager = \"upstart\" }\n[hosts.n3]\naddress = \"c\"\nservice = { unit = \"x\" }\n[hosts.n4]\naddress = \"d\"\nservice = { manager = \"systemd\", unti = \"x\" }\n"
    )));
}

#[test]
fn config_keys_the_tool_manages_point_at_the_inventory_key() {
    assert_snapshot!(err(&with_hosts(
        "[defaults.config]\ncluster-name = \"x\"\nnode-name = \"y\"\nauto-provision = true\nadvertised-address = \"http://a:5122/\"\nroles = [\"worker\"]\nmetadata-client.addresses = [\"http://a:5122/\"]\nmetadata-server.auto-join = true\nworker.snapshots.destination = \"s3://b\"\nworker.storage.x = 1\n"
    )));
}

#[test]
fn missing_environment_variable_is_named() {
    assert_snapshot!(err(&with_hosts(
        "[defaults]\nidentity-passphrase = { env = \"NOT_SET_ANYWHERE\" }\n[defaults.config]\ntoken = { env = \"ALSO_NOT_SET\" }\n"
    )));
}

#[test]
fn restate_server_version_and_path() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nrestate-server = { version = \"1.3.2\", path = { x86_64 = \"a\", arm = \"b\" } }\n[hosts.n1]\naddress = \"a\"\n"
    ));
    assert_snapshot!(
        "restate_server_missing_keys",
        err(
            "[cluster]\nname = \"c\"\nrestate-server = { version = \"latest\" }\n[hosts.n1]\naddress = \"a\"\n"
        )
    );
}

#[test]
fn install_path_and_service_user() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nrestate-server = { version = \"1.7.12\", path = \"a\", install-path = \"bin/restate-server\" }\n[defaults]\nservice = { manager = \"systemd\", user = \"Restate Server\" }\n[hosts.n1]\naddress = \"a\"\nservice = { manager = \"command\", start = \"s\", stop = \"s\", restart = \"s\", status = \"s\", usr = \"restate\" }\n"
    ));
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = err(
        "[cluster]\nname = \"c\"\n[hosts.n1]\nadress = \"a\"\n[hosts.n2]\naddress = \"b\"\nroles = [\"wrker\"]\nport = 0\n",
    );
    assert!(text.contains("unknown key `adress`"), "{text}");
    assert!(text.contains("`wrker` is not a Restate role"), "{text}");
    assert!(text.contains("port 0 is out of range"), "{text}");
    assert!(text.ends_with("4 errors, 0 warnings"), "{text}");
}

#[test]
fn diagnostics_are_structured_for_json_output() {
    let diagnostics = restate_fleet_inventory::parse(
        "inv.toml",
        "[cluster]\nname = \"c\"\n[hosts.n1]\nadress = \"a\"\n",
        &|_| None,
    )
    .unwrap_err();
    let json = serde_json::to_value(&diagnostics).unwrap();
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(json[0]["file"], "inv.toml");
    assert_eq!(json[0]["line"], 4);
    assert_eq!(json[0]["col"], 1);
    assert_eq!(json[0]["source_line"], "adress = \"a\"");
    assert_eq!(json[0]["help"], "did you mean `address`?");
}

#[test]
fn credentials_in_an_environment_file_need_systemd_and_a_known_value() {
    assert_snapshot!(
        "credentials_need_systemd",
        err(
            "[cluster]\nname = \"c\"\n[cluster.snapshots]\ndestination = \"s3://b/p\"\ncredentials = \"environment-file\"\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\nservice = { manager = \"command\", start = \"s\", stop = \"s\", restart = \"s\", status = \"s\" }\n"
        )
    );
    assert_snapshot!(
        "credentials_unknown_value",
        err(
            "[cluster]\nname = \"c\"\n[cluster.snapshots]\ndestination = \"s3://b/p\"\ncredentials = \"vault\"\n[hosts.n1]\naddress = \"a\"\n"
        )
    );
    let fleet = ok(
        "[cluster]\nname = \"c\"\n[cluster.snapshots]\ndestination = \"s3://b/p\"\ncredentials = \"environment-file\"\n[hosts.n1]\naddress = \"a\"\n",
    )
    .fleet;
    assert_eq!(
        fleet.cluster.snapshots.map(|s| s.credentials),
        Some(restate_fleet_inventory::CredentialsIn::EnvironmentFile)
    );
}

#[test]
fn nodeset_size_is_auto_or_at_least_the_replication() {
    assert_snapshot!(
        "nodeset_size_below_replication",
        err(&with_hosts("[hosts.n2]\naddress = \"b\"\n").replace(
            "[cluster]\n",
            "[cluster]\nreplication = 2\nnodeset-size = 1\n"
        ))
    );
    let fleet = |size: &str| {
        ok(
            &with_hosts("[hosts.n2]\naddress = \"b\"\n[hosts.n3]\naddress = \"c\"\n").replace(
                "[cluster]\n",
                &format!("[cluster]\nreplication = 2\nnodeset-size = {size}\n"),
            ),
        )
        .fleet
    };
    assert_eq!(fleet("0").cluster.nodeset_size, Some(0));
    assert_eq!(fleet("3").cluster.nodeset_size, Some(3));
}

#[test]
fn a_location_restate_would_not_take() {
    assert_snapshot!(err(&with_hosts(
        "location = \"eu.a.rack1\"\n[hosts.n2]\naddress = \"b\"\nlocation = \"eu. a\"\n"
    )));
}

#[test]
fn replication_restate_would_not_take() {
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplication = \"{zone: 3, node: 2}\"\n[hosts.n1]\naddress = \"a\"\n"
    ));
}

#[test]
fn location_aware_replication_needs_enough_zones() {
    // Three hosts in two zones of one region cannot spread copies over three zones; n3 has no
    // location at all.
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplication = \"{zone: 3, node: 3}\"\n[groups.a]\nhosts = [\"n1\"]\nlocation = \"eu.a\"\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\nlocation = \"eu.b\"\n[hosts.n3]\naddress = \"c\"\n"
    ));
    assert_snapshot!(err(
        "[cluster]\nname = \"c\"\nreplication = \"{zone: 3, node: 3}\"\n[hosts.n1]\naddress = \"a\"\nlocation = \"eu.a\"\n[hosts.n2]\naddress = \"b\"\nlocation = \"eu.b\"\n[hosts.n3]\naddress = \"c\"\nlocation = \"eu.b\"\n"
    ));
    let loaded = ok(
        "[cluster]\nname = \"c\"\nreplication = \"{zone: 2, node: 3}\"\n[groups.a]\nhosts = [\"n1\", \"n2\"]\nlocation = \"eu.a\"\n[hosts.n1]\naddress = \"a\"\n[hosts.n2]\naddress = \"b\"\n[hosts.n3]\naddress = \"c\"\nlocation = \"eu.b\"\n",
    );
    let cluster = &loaded.fleet.cluster;
    assert_eq!(cluster.replication, Some(3));
    assert_eq!(
        cluster.replication_property.map(|r| r.to_string()),
        Some("{node: 3, zone: 2}".to_string())
    );
    let zone = |i: usize| {
        loaded.fleet.hosts[i]
            .location
            .as_ref()
            .map(ToString::to_string)
    };
    assert_eq!(
        (zone(0), zone(1), zone(2)),
        (
            Some("eu.a".to_string()),
            Some("eu.a".to_string()),
            Some("eu.b".to_string())
        )
    );
}

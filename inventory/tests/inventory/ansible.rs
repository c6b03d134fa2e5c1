//! `inventory import`: Ansible INI/YAML semantics and the conversion to TOML.

use restate_fleet_inventory::ansible::{self, AnsibleInventory, Format};
use restate_fleet_inventory::{Fleet, parse};

use crate::support::fixture;

fn read(name: &str) -> AnsibleInventory {
    let text = fixture(&format!("ansible/{name}"));
    match ansible::parse(name, &text, None) {
        Ok((inventory, _)) => inventory,
        Err(diagnostics) => panic!("{name}:\n{diagnostics}"),
    }
}

fn import(name: &str, cluster: Option<&str>) -> String {
    let text = fixture(&format!("ansible/{name}"));
    ansible::import(name, &text, None, cluster)
        .unwrap_or_else(|d| panic!("{name}:\n{d}"))
        .toml
}

fn import_err(name: &str, text: &str) -> String {
    ansible::import(name, text, None, None)
        .unwrap_err()
        .to_string()
}

/// Converted TOML, parsed back by the inventory's own parser.
fn round_trip(name: &str) -> Fleet {
    let toml = import(name, Some("prod"));
    match parse("imported.toml", &toml, &|_| None) {
        Ok(loaded) => loaded.fleet,
        Err(diagnostics) => panic!("{toml}\n{diagnostics}"),
    }
}

fn members<'a>(inventory: &'a AnsibleInventory, group: &str) -> Vec<&'a str> {
    inventory.members(group)
}

#[test]
fn detects_the_format_from_extension_or_content() {
    assert_eq!(ansible::detect("hosts.yml", ""), Format::Yaml);
    assert_eq!(ansible::detect("hosts.ini", "all:\n"), Format::Ini);
    assert_eq!(
        ansible::detect("hosts", "# c\n\nall:\n  hosts:\n"),
        Format::Yaml
    );
    assert_eq!(ansible::detect("hosts", "---\nall:\n"), Format::Yaml);
    assert_eq!(ansible::detect("hosts", "; c\n[web]\nfoo\n"), Format::Ini);
    assert_eq!(ansible::detect("hosts", "foo.example.com\n"), Format::Ini);
}

#[test]
fn ini_groups_ranges_ports_children_and_vars() {
    let inventory = read("docs.ini");
    assert_eq!(
        members(&inventory, "ungrouped"),
        ["mail.example.com", "jumper"]
    );
    assert_eq!(
        members(&inventory, "webservers"),
        [
            "foo.example.com",
            "bar.example.com",
            "www01.example.com",
            "www02.example.com",
            "www03.example.com"
        ]
    );
    assert_eq!(
        members(&inventory, "southeast"),
        ["host1", "host2", "host3"]
    );
    assert_eq!(
        inventory.group("southeast").unwrap().children,
        ["atlanta", "raleigh"]
    );
    let host2 = inventory.host("host2").unwrap();
    assert_eq!(
        host2.vars,
        [
            ("ansible_port".to_string(), "2222".to_string()),
            ("http_port".into(), "303".into()),
            ("maxRequestsPerChild".into(), "909".into())
        ]
    );
    assert_eq!(
        inventory.host("host3").unwrap().vars,
        [("ansible_host".to_string(), "192.0.2.53".to_string())]
    );
    assert_eq!(
        inventory.host("db-b.example.com").unwrap().vars,
        [("ansible_user".to_string(), "postgres".to_string())]
    );
    let all = inventory.group("all").unwrap();
    assert!(all.vars.contains(&("ansible_become".into(), "yes".into())));
    assert_eq!(inventory.hosts.len(), 15);
}

#[test]
fn yaml_groups_children_and_vars() {
    let inventory = read("docs.yaml");
    assert_eq!(members(&inventory, "all").len(), 8);
    assert_eq!(
        members(&inventory, "prod"),
        ["foo.example.com", "one.example.com", "two.example.com"]
    );
    assert_eq!(members(&inventory, "test"), ["bar.example.com"]);
    assert_eq!(
        inventory.host("one.example.com").unwrap().vars,
        [("ansible_port".to_string(), "2201".to_string())]
    );
    let all = inventory.group("all").unwrap();
    assert!(all.vars.contains(&(
        "ntp_servers".into(),
        "[ntp1.example.com, ntp2.example.com]".into()
    )));
}

#[test]
fn ini_conversion_keeps_unknown_vars_as_comments_and_never_copies_passwords() {
    let toml = import("docs.ini", None);
    insta::assert_snapshot!(toml);
    assert!(!toml.contains("hunter2"));
    assert!(toml.contains("name = \"CHANGE-ME\""));
}

#[test]
fn yaml_conversion() {
    let toml = import("docs.yaml", Some("prod-cluster"));
    insta::assert_snapshot!(toml);
    assert!(!toml.contains("hunter2"));
}

#[test]
fn converted_docs_inventories_parse() {
    for name in ["docs.ini", "docs.yaml"] {
        round_trip(name);
    }
}

/// name, address, port, user, identity file, become, groups.
type SshView<'a> = (&'a str, &'a str, u16, &'a str, &'a str, bool, Vec<&'a str>);

/// The acceptance test of the issue: 3 groups, 10 hosts, both formats, through our own parser.
#[test]
fn realistic_inventory_round_trips_in_both_formats() {
    let expected: Vec<SshView> = {
        let mut hosts = vec![
            (
                "restate-01",
                "10.20.0.11",
                22,
                "ops",
                "~/.ssh/restate_ops",
                true,
                vec!["seed"],
            ),
            (
                "restate-02",
                "10.20.0.12",
                22,
                "ops",
                "~/.ssh/restate_core",
                true,
                vec!["core"],
            ),
            (
                "restate-03",
                "10.20.0.13",
                2203,
                "ops",
                "~/.ssh/restate_core",
                true,
                vec!["core"],
            ),
            (
                "restate-04",
                "10.20.0.14",
                22,
                "ubuntu",
                "~/.ssh/restate_core",
                true,
                vec!["core"],
            ),
        ];
        for n in 1..=6 {
            let name: &'static str =
                Box::leak(format!("edge0{n}.dc1.example.net").into_boxed_str());
            hosts.push((
                name,
                name,
                2222,
                "edge",
                "~/.ssh/restate_ops",
                false,
                vec!["edge"],
            ));
        }
        hosts.sort_by_key(|h| h.0);
        hosts
    };
    for file in ["realistic.ini", "realistic.yaml"] {
        let fleet = round_trip(file);
        assert_eq!(fleet.cluster.name, "prod");
        assert_eq!(fleet.hosts.len(), 10, "{file}");
        let mut groups: Vec<&str> = fleet.groups.iter().map(|g| g.name.as_str()).collect();
        groups.sort_unstable();
        assert_eq!(groups, ["core", "edge", "seed"], "{file}");
        let mut actual: Vec<_> = fleet
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.ssh.address.as_str(),
                    h.ssh.port,
                    h.ssh.user.as_deref().unwrap_or_default(),
                    h.ssh.identity_file.as_deref().unwrap_or_default(),
                    h.ssh.become_root,
                    h.groups.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            })
            .collect();
        actual.sort_by_key(|h| h.0);
        assert_eq!(actual, expected, "{file}");
    }
}

#[test]
fn the_realistic_conversion_reads_well() {
    insta::assert_snapshot!(import("realistic.ini", Some("prod")));
}

#[test]
fn ini_errors_point_at_the_line() {
    insta::assert_snapshot!(import_err(
        "hosts.ini",
        "[web]\nweb1 ansible_port\nweb[3:1]\nh 'unclosed\n[web:hosts2]\n[db:vars]\nnot a var\n[db:children]\ntwo words\n"
    ));
}

#[test]
fn yaml_errors_point_at_the_node() {
    insta::assert_snapshot!(import_err(
        "hosts.yml",
        "all:\n  hosts:\n    - web1\n    - web2\n  children:\n    db:\n      hosts:\n        db[9:1]:\n      vars: [1]\n"
    ));
    insta::assert_snapshot!(
        "yaml_syntax_error",
        import_err("hosts.yml", "all:\n  hosts: [\n")
    );
}

#[test]
fn yaml_keys_ansible_ignores_are_warnings() {
    let imported = ansible::import(
        "hosts.yml",
        "all:\n  hosts:\n    a:\n  host:\n    b:\n",
        None,
        None,
    )
    .unwrap();
    assert_eq!(imported.warnings.len(), 1);
    assert!(
        imported.warnings[0].message.contains("`host`"),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn comments_cannot_break_out_onto_a_toml_line() {
    let yaml = "all:\n  hosts:\n    a:\n      note: \"x\\n[cluster]\\nname = 'evil'\"\n";
    let toml = ansible::import("h.yml", yaml, None, Some("c"))
        .unwrap()
        .toml;
    let fleet = parse("i.toml", &toml, &|_| None).unwrap().fleet;
    assert_eq!(fleet.cluster.name, "c");
    assert!(
        toml.contains("# ansible: note=x\\n[cluster]\\nname = 'evil'"),
        "{toml}"
    );
}

#[test]
fn host_names_that_need_quoting_in_toml_survive() {
    let toml = ansible::import("h.ini", "[a.b]\nweb.example.com\n", None, Some("c"))
        .unwrap()
        .toml;
    assert!(toml.contains("[groups.\"a.b\"]"), "{toml}");
    assert!(toml.contains("[hosts.\"web.example.com\"]"), "{toml}");
    let fleet = parse("i.toml", &toml, &|_| None).unwrap().fleet;
    assert_eq!(fleet.hosts[0].name, "web.example.com");
    assert_eq!(fleet.groups[0].name, "a.b");
}

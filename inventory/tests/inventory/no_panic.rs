//! No input makes a parser panic: random text, and random edits of valid inventories.

use proptest::prelude::*;

const TOML_SEED: &str = include_str!("../fixtures/full.toml");
const INI_SEED: &str = include_str!("../fixtures/ansible/docs.ini");
const YAML_SEED: &str = include_str!("../fixtures/ansible/docs.yaml");

/// Text made of inventory-ish pieces so the fuzzer reaches past the syntax check.
fn inventory_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "[cluster]\n",
        "name = \"c\"\n",
        "[hosts.n1]\n",
        "[hosts.n2]\n",
        "address = \"a\"\n",
        "[groups.g]\n",
        "hosts = [\"n1\", \"x\"]\n",
        "roles = [\"worker\"]\n",
        "[defaults]\n",
        "service = { manager = \"command\", start = \"a '\" }\n",
        "config = { a.b = 1 }\n",
        "metadata-servers = [\"n1\", \"n2\"]\n",
        "replication = 9\n",
        "port = -1\n",
        "[cluster.snapshots]\n",
        "destination = \"file://x\"\n",
        "x = { env = \"NOPE\" }\n",
        "node-name = \"n1\"\n",
        "é",
        "\"",
        "'",
        "[",
        "]",
        "=",
        "\n",
        "{",
        "}",
        ",",
        ":",
        "[all:vars]\n",
        "[g:children]\n",
        "h[1:3] ansible_port=22\n",
        "all:\n",
        "  hosts:\n",
        "    h1:\n",
        "  children:\n",
        "      ansible_host: x\n",
        "- a\n",
        "&a ",
        "*a ",
        "!!str ",
        "\t",
        "  ",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

/// A seed with a few bytes changed, to explore near-valid inputs.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6).prop_map(
        move |edits| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (index, c) in edits {
                let i = index.index(chars.len());
                chars[i] = c;
            }
            chars.into_iter().collect()
        },
    )
}

fn all_parsers(text: &str) {
    let _ = restate_fleet_inventory::parse("f.toml", text, &|_| None);
    let _ = restate_fleet_inventory::ansible::import(
        "f",
        text,
        Some(restate_fleet_inventory::ansible::Format::Ini),
        None,
    );
    let _ = restate_fleet_inventory::ansible::import(
        "f",
        text,
        Some(restate_fleet_inventory::ansible::Format::Yaml),
        None,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text(text in any::<String>()) {
        all_parsers(&text);
    }

    #[test]
    fn inventory_shaped_text(text in inventory_like()) {
        all_parsers(&text);
    }

    #[test]
    fn mutated_toml(text in mutated(TOML_SEED)) {
        all_parsers(&text);
    }

    #[test]
    fn mutated_ini(text in mutated(INI_SEED)) {
        all_parsers(&text);
    }

    #[test]
    fn mutated_yaml(text in mutated(YAML_SEED)) {
        all_parsers(&text);
    }

    #[test]
    fn limit_patterns(limit in "[a-z*?!&,: ]{0,12}") {
        let fleet = crate::support::ok(TOML_SEED).fleet;
        let _ = fleet.select(&limit);
    }
}

//! Long fuzzing of the inventory parser (TOML inventories and the Ansible importers): no input
//! panics and none takes longer than a second. `FUZZ_CASES` sets the cases per strategy (default
//! 2000, quick enough for every `cargo test`); the counts of a long run are in
//! docs/reliability.md. `tests/inventory/no_panic.rs` keeps the quick always-on version.

use std::time::{Duration, Instant};

use lab::fuzz::{Edit, edited};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use restate_fleet_inventory::ansible::{self, Format};

const TOML_SEED: &str = include_str!("fixtures/full.toml");
const LAB_SEED: &str = include_str!("fixtures/lab.toml");
const INI_SEED: &str = include_str!("fixtures/ansible/docs.ini");
const YAML_SEED: &str = include_str!("fixtures/ansible/docs.yaml");
/// Parsing one inventory longer than this is a hang.
const SLOW: Duration = Duration::from_secs(1);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn parse_all(text: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let env = |name: &str| (name == "SET").then(|| "value".to_string());
    let _ = restate_fleet_inventory::parse("fuzz.toml", text, &env);
    let _ = ansible::import("fuzz", text, Some(Format::Ini), None);
    let _ = ansible::import("fuzz", text, Some(Format::Yaml), Some("c"));
    let took = started.elapsed();
    if took > SLOW {
        return Err(TestCaseError::fail(format!("took {took:?} on {text:?}")));
    }
    Ok(())
}

/// A seed with 1 to 8 characters replaced, inserted or removed.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    let edit = prop::sample::select(vec![Edit::Replace, Edit::Insert, Edit::Remove]);
    prop::collection::vec((any::<usize>(), any::<char>(), edit), 1..9)
        .prop_map(move |edits| edited(seed, &edits))
}

/// Whole lines of seeds shuffled and repeated: valid syntax, inconsistent meaning.
fn spliced() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = TOML_SEED.lines().chain(LAB_SEED.lines()).collect();
    prop::collection::vec(prop::sample::select(lines), 0..80).prop_map(|v| v.join("\n"))
}

fn run(name: &str, strategy: impl Strategy<Value = String>) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    if let Err(err) = runner.run(&strategy, |text| parse_all(&text)) {
        panic!("{name}: {err}");
    }
    eprintln!(
        "inventory fuzz {name}: {} cases in {:.1} s",
        cases(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn arbitrary_text() {
    run("arbitrary", any::<String>());
}

#[test]
fn mutated_toml() {
    run("mutated-toml", mutated(TOML_SEED));
}

#[test]
fn mutated_lab_toml() {
    run("mutated-lab", mutated(LAB_SEED));
}

#[test]
fn spliced_toml_lines() {
    run("spliced", spliced());
}

#[test]
fn mutated_ansible() {
    run("mutated-ini", mutated(INI_SEED));
    run("mutated-yaml", mutated(YAML_SEED));
}

//! `restate-fleet inventory`, run as the built binary: output and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/tests/fixtures")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restate-fleet"))
        .args(args)
        .env("LAB_S3_SECRET", "s3-secret-value")
        .env("SSH_PASSPHRASE", "passphrase-value")
        .env("DB_PASSWORD", "db-password-value")
        .output()
        .expect("the restate-fleet binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// A file of the test's own, removed when the test ends however it ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("restate-fleet-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn prints_the_resolved_fleet_as_a_table() {
    let out = run(&["-i", &fixture("full.toml"), "inventory"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{stdout}");
    assert!(
        stdout.contains("n3    10.0.0.3:2222"),
        "host, address:port in columns:\n{stdout}"
    );
    assert!(stdout.contains("node-three"), "{stdout}");
    assert!(stdout.contains("restate (sudo)"), "{stdout}");
    assert!(
        stdout.contains("worker,log-server,http-ingress"),
        "{stdout}"
    );
    assert!(stdout.contains("http://n2.internal:5122/"), "{stdout}");
    assert!(stdout.contains("cluster: my-cluster"), "{stdout}");
    assert!(
        stdout.contains("aws-secret-access-key: \"<redacted>\""),
        "{stdout}"
    );
    for secret in ["s3-secret-value", "passphrase-value", "db-password-value"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
}

#[test]
fn json_output_is_one_document_and_honours_limit() {
    let out = run(&[
        "-i",
        &fixture("full.toml"),
        "--output",
        "json",
        "--limit",
        "workers:n1",
        "inventory",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let document: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let names: Vec<&str> = document["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n4", "n5"]);
    assert_eq!(
        document["cluster"]["snapshots"]["aws_secret_access_key"],
        "<redacted>"
    );
    assert!(!text(&out.stdout).contains("s3-secret-value"));
}

#[test]
fn a_limit_that_matches_nothing_is_bad_input() {
    let out = run(&["-i", &fixture("full.toml"), "--limit", "nope", "inventory"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--limit pattern `nope` matches no host or group"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_inventory_exits_2_with_every_diagnostic() {
    let bad = TempFile::new(
        "bad.toml",
        "[cluster]\nname = \"c\"\n[hosts.n1]\nadress = \"a\"\n",
    );
    let out = run(&["-i", &bad.path(), "inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown key `adress` in [hosts.n1]"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}:4:1", bad.path())), "{stderr}");
    assert!(stderr.contains("did you mean `address`?"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = run(&["-i", &bad.path(), "--output", "json", "inventory"]);
    assert_eq!(out.status.code(), Some(2));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["diagnostics"][0]["line"], 4);
    assert_eq!(document["diagnostics"][0]["severity"], "error");
}

#[test]
fn a_missing_inventory_exits_2() {
    let out = run(&["-i", "/nonexistent/inventory.toml", "inventory"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read the inventory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn import_prints_toml_that_the_inventory_command_accepts() {
    let out = run(&[
        "inventory",
        "import",
        &fixture("ansible/realistic.ini"),
        "--cluster-name",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    assert!(
        toml.starts_with("# restate-fleet inventory converted"),
        "{toml}"
    );
    let converted = TempFile::new("converted.toml", &toml);
    let out = run(&["-i", &converted.path(), "--output", "json", "inventory"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["hosts"].as_array().unwrap().len(), 10);
}

#[test]
fn import_with_an_explicit_format_and_bad_input() {
    let out = run(&[
        "inventory",
        "import",
        "--format",
        "yaml",
        &fixture("ansible/docs.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("name = \"CHANGE-ME\""));

    let bad = TempFile::new("bad.ini", "[web]\nweb[3:1]\n");
    let out = run(&["inventory", "import", &bad.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("host range `[3:1]` runs backwards"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let out = run(&["inventory", "import", "/nonexistent/hosts.ini"]);
    assert_eq!(out.status.code(), Some(2));
}

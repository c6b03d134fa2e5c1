//! `collect`'s support bundle, read back with tar(1): every part is there for every host, the
//! cluster view names every node, and no file holds any of the inventory's secrets.

use std::path::Path;

use lab::Lab;

use crate::harness::{self, assert_exit, fleet};

/// Collects a bundle of the lab's grown cluster and checks it; `unit`: the hosts run systemd
/// (their unit and status are in it), else command-managed (their status command's output).
pub fn collect_and_check(lab: &Lab, unit: bool) {
    let bundle = lab.dir().join("support.tar.gz");
    let collect = fleet(
        lab,
        &["collect", "-o", bundle.to_str().expect("utf-8 path")],
    );
    assert_exit(&collect, 0, "collect");
    let said = harness::stdout(&collect);
    assert!(
        said.starts_with(&format!("wrote {}", bundle.display())),
        "{said}"
    );
    let mode = std::fs::metadata(&bundle)
        .expect("the bundle")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "the bundle is the operator's alone"
    );
    let out = lab.dir().join("support");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("a folder to unpack into");
    let tar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&out)
        .status()
        .expect("tar runs");
    assert!(tar.success(), "tar unpacks the bundle");
    let top: Vec<_> = std::fs::read_dir(&out)
        .expect("unpacked")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(top.len(), 1, "one top folder: {top:?}");
    let root = &top[0];

    let mut wanted = vec![
        "facts.json",
        "host-checks.json",
        "restate.toml",
        "status.txt",
        "log.txt",
        "data-dir.txt",
        "version.txt",
    ];
    if unit {
        wanted.push("unit.txt");
    }
    for host in lab.hosts() {
        for file in &wanted {
            let path = root.join("hosts").join(&host.name).join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!text.trim().is_empty(), "{} is empty", path.display());
        }
        let version =
            std::fs::read_to_string(root.join("hosts").join(&host.name).join("version.txt"))
                .expect("version");
        assert!(version.contains("restate-server"), "{version}");
    }
    let view: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("cluster/view.json")).expect("the cluster view"),
    )
    .expect("JSON");
    let names: Vec<&str> = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    for host in lab.hosts() {
        assert!(names.contains(&host.name.as_str()), "{names:?}");
    }
    assert!(root.join("inventory.toml").is_file());
    let journals: Vec<_> = std::fs::read_dir(root.join("journal"))
        .expect("the latest run's journal")
        .flatten()
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");

    // The inventory holds the S3 credentials; the hosts' restate.toml too. No file may.
    let mut files = Vec::new();
    every_file(root, &mut files);
    assert!(files.len() > 10, "{files:?}");
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).expect("read")).into_owned();
        for secret in [lab::s3::ACCESS_KEY_ID, lab::s3::SECRET_ACCESS_KEY] {
            assert!(
                !text.contains(secret),
                "{} holds a secret of the inventory",
                file.display()
            );
        }
    }
    let inventory = std::fs::read_to_string(root.join("inventory.toml")).expect("inventory");
    assert!(
        inventory.contains("aws-secret-access-key = \"<redacted>\""),
        "{inventory}"
    );
}

fn every_file(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push(path);
        }
    }
}

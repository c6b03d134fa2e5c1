use std::os::unix::fs::PermissionsExt;

use restate_fleet::ssh::{AgentCatalog, AgentLocator};

use crate::harness::{Sshd, User, client, connected};

/// A stand-in agent: a real ELF executable for this machine that ignores its arguments.
fn fake_agent(dir: &std::path::Path) -> AgentCatalog {
    let arch = std::process::Command::new("uname")
        .arg("-m")
        .output()
        .unwrap();
    let arch = String::from_utf8(arch.stdout).unwrap();
    std::fs::copy(
        "/bin/true",
        dir.join(format!("restate-fleet-agent-{}", arch.trim())),
    )
    .unwrap();
    AgentCatalog::load(AgentLocator::new(Some(dir.to_owned())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_once_check_every_run() {
    let (sshd, session) = connected().await;
    let local = tempfile::tempdir().unwrap();
    let catalog = fake_agent(local.path());
    let remote = sshd.dir.path().join("var/lib/restate-fleet/agent");
    let remote_dir = remote.to_str().unwrap();
    let launch = || session.launch_agent(&catalog, remote_dir, &["serve", "--x"]);

    let first = launch().await.unwrap();
    let size = std::fs::metadata("/bin/true").unwrap().len();
    assert_eq!(first.bytes_uploaded, size);
    assert!(
        first
            .remote_path
            .ends_with(&format!("restate-fleet-agent-{}", first.sha256))
    );
    let run = first.stream.finish().await.unwrap();
    assert!(run.success(), "the agent ran: {run:?}");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&remote), 0o700);
    assert_eq!(mode(std::path::Path::new(&first.remote_path)), 0o700);
    assert_eq!(
        std::fs::read_dir(&remote).unwrap().count(),
        1,
        "no temp file left"
    );

    let second = launch().await.unwrap();
    assert_eq!(second.bytes_uploaded, 0);
    assert_eq!(second.remote_path, first.remote_path);
    assert!(second.stream.finish().await.unwrap().success());

    // A tampered file is never run: the launch sees the wrong hash and uploads the agent again.
    let marker = local.path().join("tampered-agent-ran");
    std::fs::write(
        &first.remote_path,
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .unwrap();
    let third = launch().await.unwrap();
    assert_eq!(third.bytes_uploaded, size);
    assert!(third.stream.finish().await.unwrap().success());
    assert!(!marker.exists(), "the tampered agent ran");
    assert_eq!(
        std::fs::read(&first.remote_path).unwrap(),
        std::fs::read("/bin/true").unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_needs_root() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let client = client(&sshd.known_hosts_file(&[]));
    let user = User::create("up", "ALL=(ALL) NOPASSWD: ALL");
    let local = tempfile::tempdir().unwrap();
    let catalog = fake_agent(local.path());
    let remote = sshd.dir.path().join("agent-dir");
    let remote_dir = remote.to_str().unwrap();
    let mut target = sshd.target("n3", Some(&key));
    target.user = Some(user.name.clone());

    let plain = client.connect(&target).await.unwrap();
    let err = plain
        .launch_agent(&catalog, remote_dir, &[])
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("set become = true"), "{err}");

    target.become_root = true;
    let root = client.connect(&target).await.unwrap();
    let pushed = root.launch_agent(&catalog, remote_dir, &[]).await.unwrap();
    assert!(pushed.bytes_uploaded > 0);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&pushed.remote_path).unwrap().uid(), 0);
}

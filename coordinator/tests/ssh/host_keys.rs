use std::process::Command;

use restate_fleet::ssh::{SshClient, SshError};

use crate::harness::{Sshd, client, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_refused_then_accepted_and_recorded() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let known_hosts = sshd.dir.path().join("fresh_known_hosts");
    let target = sshd.target("n1", Some(&key));

    let err = client(&known_hosts).connect(&target).await.err().unwrap();
    let SshError::HostKeyUnknown {
        host_port,
        fingerprint,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(host_port, &format!("[127.0.0.1]:{}", sshd.port));
    assert!(fingerprint.starts_with("SHA256:"));
    assert!(!known_hosts.exists(), "nothing recorded without the flag");

    let accepting = SshClient::new(options(&known_hosts, true));
    accepting.connect(&target).await.unwrap();
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(recorded.trim(), sshd.known_hosts_line());

    client(&known_hosts).connect(&target).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_key_refused_with_file_and_line() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let impostor = crate::harness::new_key(sshd.dir.path(), "impostor", "ed25519", "");
    let impostor_pub = std::fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let known_hosts = sshd.dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("# fleet\n\n[127.0.0.1]:{} {impostor_pub}", sshd.port),
    )
    .unwrap();
    let before = std::fs::read_to_string(&known_hosts).unwrap();
    // Even with accept-new, a changed key is refused.
    let err = SshClient::new(options(&known_hosts, true))
        .connect(&sshd.target("n1", Some(&key)))
        .await
        .err()
        .unwrap();
    let SshError::HostKeyChanged { file, line, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((file.as_path(), *line), (known_hosts.as_path(), 3));
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}:3", known_hosts.display())),
        "{text}"
    );
    assert!(text.contains("remove line 3"), "{text}");
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_entries_as_written_by_ssh_keygen() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let known_hosts = sshd.known_hosts_file(&[]);
    let output = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(output.status.success());
    let hashed = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    client(&known_hosts)
        .connect(&sshd.target("n1", Some(&key)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_first_contacts_record_once() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let known_hosts = sshd.dir.path().join("parallel_known_hosts");
    let targets: Vec<_> = (0..10)
        .map(|i| sshd.target(&format!("n{i}"), Some(&key)))
        .collect();
    let results = SshClient::new(options(&known_hosts, true))
        .connect_all(&targets)
        .await;
    assert!(results.iter().all(Result::is_ok));
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
}

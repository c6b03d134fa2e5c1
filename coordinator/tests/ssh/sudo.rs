use restate_fleet::ssh::SshError;

use crate::harness::{Sshd, User, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_through_sudo() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let known_hosts = sshd.known_hosts_file(&[]);
    let client = client(&known_hosts);
    let allowed = User::create("ok", "ALL=(ALL) NOPASSWD: ALL");
    let needs_password = User::create("pw", "ALL=(ALL) ALL");

    let mut target = sshd.target("n1", Some(&key));
    target.user = Some(allowed.name.clone());
    let plain = client.connect(&target).await.unwrap();
    let uid = plain.exec_checked(&["id", "-u"], b"").await.unwrap();
    assert_ne!(uid.stdout, b"0\n");
    target.become_root = true;
    let root = client.connect(&target).await.unwrap();
    let uid = root.exec_checked(&["id", "-u"], b"").await.unwrap();
    assert_eq!(uid.stdout, b"0\n");
    let stdin = root.exec_checked(&["cat"], b"through sudo").await.unwrap();
    assert_eq!(stdin.stdout, b"through sudo");

    target.user = Some(needs_password.name.clone());
    let session = client.connect(&target).await.unwrap();
    let err = session.exec(&["id", "-u"], b"").await.err().unwrap();
    assert!(matches!(err, SshError::SudoNeedsPassword { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("NOPASSWD") && text.contains(&needs_password.name),
        "{text}"
    );
    let mut stream = session.exec_streaming(&["cat"]).await.unwrap();
    let err = stream.recv_line().await.err().unwrap();
    assert!(matches!(err, SshError::SudoNeedsPassword { .. }), "{err}");
}

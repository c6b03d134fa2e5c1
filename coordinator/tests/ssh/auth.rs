use std::time::Instant;

use restate_fleet::ssh::{Credentials, SshClient, SshError};

use crate::harness::{Agent, Sshd, client, new_key, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_files_of_every_type() {
    let sshd = Sshd::start();
    let known_hosts = sshd.known_hosts_file(&[]);
    let client = client(&known_hosts);
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let key = sshd.authorized_key(&format!("id_{kind}"), kind, "");
        let started = Instant::now();
        let session = client
            .connect(&sshd.target("n1", Some(&key)))
            .await
            .unwrap_or_else(|err| panic!("{kind}: {err}"));
        println!("handshake+auth with {kind} key: {:?}", started.elapsed());
        let output = session.exec_checked(&["id", "-un"], b"").await.unwrap();
        assert_eq!(output.stdout, b"root\n", "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_key_takes_the_given_passphrase() {
    let sshd = Sshd::start();
    let known_hosts = sshd.known_hosts_file(&[]);
    let key = sshd.authorized_key("id_locked", "ed25519", "s3cret pass");
    let target = sshd.target("n1", Some(&key));

    let mut with_passphrase = options(&known_hosts, false);
    with_passphrase.credentials =
        Credentials::new(None, Vec::new(), Some("s3cret pass".into()), false);
    let session = SshClient::new(with_passphrase)
        .connect(&target)
        .await
        .unwrap();
    assert!(session.exec(&["true"], b"").await.unwrap().success());

    let err = client(&known_hosts).connect(&target).await.err().unwrap();
    let SshError::AuthFailed { tried, .. } = &err else {
        panic!("{err}")
    };
    assert!(tried[0].contains("encrypted, and no passphrase"), "{err}");

    let mut wrong = options(&known_hosts, false);
    wrong.credentials = Credentials::new(None, Vec::new(), Some("nope".into()), false);
    let err = SshClient::new(wrong).connect(&target).await.err().unwrap();
    assert!(err.to_string().contains("cannot decrypt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keys_then_default_keys() {
    let sshd = Sshd::start();
    let known_hosts = sshd.known_hosts_file(&[]);
    let agent = Agent::start();
    let key = sshd.authorized_key("id_agent", "ecdsa", "");
    agent.add(&key);
    // The key file is gone: only the agent holds it now.
    std::fs::remove_file(&key).unwrap();
    let mut via_agent = options(&known_hosts, false);
    via_agent.credentials = Credentials::new(Some(agent.socket.clone()), Vec::new(), None, false);
    let session = SshClient::new(via_agent)
        .connect(&sshd.target("n1", None))
        .await
        .unwrap();
    assert!(session.exec(&["true"], b"").await.unwrap().success());

    // An agent with a key the server does not know, then a default key that works.
    let empty_agent = Agent::start();
    empty_agent.add(&new_key(sshd.dir.path(), "id_stranger", "ed25519", ""));
    let default_key = sshd.authorized_key("id_default", "rsa", "");
    let mut fallback = options(&known_hosts, false);
    fallback.credentials = Credentials::new(
        Some(empty_agent.socket.clone()),
        vec![sshd.dir.path().join("id_missing"), default_key],
        None,
        false,
    );
    let session = SshClient::new(fallback)
        .connect(&sshd.target("n1", None))
        .await
        .unwrap();
    assert!(session.exec(&["true"], b"").await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_lists_the_methods_tried() {
    let sshd = Sshd::start();
    let known_hosts = sshd.known_hosts_file(&[]);
    sshd.authorized_key("id_right", "ed25519", "");
    let wrong = new_key(sshd.dir.path(), "id_wrong", "ed25519", "");
    let agent = Agent::start();
    agent.add(&new_key(sshd.dir.path(), "id_agent_wrong", "ecdsa", ""));
    let mut opts = options(&known_hosts, false);
    opts.credentials = Credentials::new(Some(agent.socket.clone()), Vec::new(), None, false);
    let err = SshClient::new(opts)
        .connect(&sshd.target("n7", Some(&wrong)))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    let SshError::AuthFailed { host, user, tried } = &err else {
        panic!("{text}")
    };
    assert_eq!((host.as_str(), user.as_str()), ("n7", "root"));
    assert_eq!(tried.len(), 2, "{text}");
    assert!(tried[0].contains("id_wrong: rejected"), "{text}");
    assert!(
        tried[1].contains("ssh-agent key SHA256:") && tried[1].contains("rejected"),
        "{text}"
    );
    assert!(
        text.starts_with("n7: authentication as \"root\" failed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_stage() {
    let sshd = Sshd::start();
    let known_hosts = sshd.known_hosts_file(&[]);
    let client = client(&known_hosts);
    let mut target = sshd.target("n2", None);

    let (closed, _held) = crate::harness::closed_port();
    target.port = Some(closed);
    let err = client.connect(&target).await.err().unwrap();
    assert!(matches!(err, SshError::Refused { .. }), "{err}");
    assert!(
        err.to_string().contains("n2: connection to 127.0.0.1"),
        "{err}"
    );

    // Accepts TCP (the kernel backlog does) but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.port = Some(silent.local_addr().unwrap().port());
    let started = Instant::now();
    let err = client.connect(&target).await.err().unwrap();
    assert!(
        matches!(
            err,
            SshError::TimedOut {
                stage: "SSH handshake",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 6);
}

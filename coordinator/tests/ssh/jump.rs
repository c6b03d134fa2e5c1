use restate_fleet::ssh::{SshClient, SshConfig, Target};

use crate::harness::{Sshd, options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_and_config_precedence() {
    // The jump sshd logs at DEBUG1, which records each direct-tcpip request it serves.
    let jump = Sshd::start_with("LogLevel DEBUG1\n");
    let target_sshd = Sshd::start();
    let key = jump.authorized_key("id", "ed25519", "");
    target_sshd.authorize(&key);
    let known_hosts = jump.known_hosts_file(&[&target_sshd]);
    let config_path = jump.dir.path().join("ssh_config");
    let config_text = format!(
        "Host behind\n  HostName 127.0.0.1\n  Port {target_port}\n  User nobody\n  IdentityFile {key}\n  ProxyJump root@bastion\n\
         Host bastion\n  HostName 127.0.0.1\n  Port {jump_port}\n  IdentityFile {key}\n\
         Host *\n  Port 1\n  User nobody\n",
        target_port = target_sshd.port,
        jump_port = jump.port,
        key = key.display(),
    );
    std::fs::write(&config_path, &config_text).unwrap();
    let mut opts = options(&known_hosts, false);
    opts.ssh_config = SshConfig::load(&config_path).unwrap();
    let client = SshClient::new(opts);
    let target = Target {
        name: "n1".into(),
        address: "behind".into(),
        user: Some("root".into()),
        ..Target::default()
    };
    let session = client.connect(&target).await.unwrap();
    assert_eq!(
        session.user(),
        "root",
        "the inventory's user wins over the config"
    );
    let output = session
        .exec_checked(&["sh", "-c", "echo $SSH_CONNECTION"], b"")
        .await
        .unwrap();
    let connection = String::from_utf8(output.stdout).unwrap();
    assert!(
        connection
            .trim()
            .ends_with(&format!("127.0.0.1 {}", target_sshd.port)),
        "{connection}"
    );
    let log = jump.log();
    assert!(
        log.contains(&format!("target 127.0.0.1 port {}", target_sshd.port)),
        "the jump host carried the connection: {log}"
    );
}

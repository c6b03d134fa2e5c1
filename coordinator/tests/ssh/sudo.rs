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

    // sudo wanting a password fails the connection, before any step runs.
    target.user = Some(needs_password.name.clone());
    let err = client.connect(&target).await.err().unwrap();
    assert!(matches!(err, SshError::SudoNeedsPassword { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("NOPASSWD") && text.contains(&needs_password.name),
        "{text}"
    );
    // Without become the same user connects, and a command through sudo is still named.
    target.become_root = false;
    let session = client.connect(&target).await.unwrap();
    let mut stream = session
        .exec_streaming(&["sudo", "-n", "cat"])
        .await
        .unwrap();
    assert_eq!(stream.recv_line().await.unwrap(), None);
    let output = stream.finish().await.unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("password is required"),
        "{output:?}"
    );
}

/// sudo under `Defaults requiretty` runs through a terminal that script(1) makes, while stdin,
/// stdout, stderr and the exit status stay the command's own: binary data and end-of-file pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_where_sudo_requires_a_terminal() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let client = client(&sshd.known_hosts_file(&[]));
    let strict = User::with_defaults("tty", "ALL=(ALL) NOPASSWD: ALL", &["requiretty"]);
    let mut target = sshd.target("n1", Some(&key));
    target.user = Some(strict.name.clone());

    // The variation is real: plain sudo is refused for lack of a terminal.
    let plain = client.connect(&target).await.unwrap();
    let refused = plain.exec(&["sudo", "-n", "true"], b"").await.unwrap();
    assert!(!refused.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("tty"),
        "{refused:?}"
    );

    target.become_root = true;
    let root = client.connect(&target).await.unwrap();
    let uid = root.exec_checked(&["id", "-u"], b"").await.unwrap();
    assert_eq!(uid.stdout, b"0\n");
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let echoed = root.exec_checked(&["cat"], &binary).await.unwrap();
    assert!(echoed.stdout == binary, "binary data changed on its way");
    let failed = root
        .exec(&["sh", "-c", "echo to-stderr >&2; exit 7"], b"")
        .await
        .unwrap();
    assert_eq!(failed.status, restate_fleet::ssh::ExitStatus::Code(7));
    assert_eq!(failed.stderr, b"to-stderr\n");
    assert_eq!(failed.stdout, b"");
    // A line conversation, as the agent holds one, ends when its stdin does.
    let mut stream = root.exec_streaming(&["cat"]).await.unwrap();
    stream.send_line("ping").await.unwrap();
    assert_eq!(stream.recv_line().await.unwrap().as_deref(), Some("ping"));
    let output = stream.finish().await.unwrap();
    assert_eq!(output.status, restate_fleet::ssh::ExitStatus::Code(0));
}

/// Whatever the login shell (bash, dash, zsh, fish) and whatever its rc files print on stdout and
/// stderr before the command, commands, their output and exit status come through unchanged;
/// a shell that exits before running the command is named as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_shell_with_noisy_rc_files() {
    const NOISE: &str =
        "echo 'Welcome: authorized use only'; echo 'warning: quota nearly full' >&2\n";
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let client = client(&sshd.known_hosts_file(&[]));
    let bashrc = format!("{NOISE}case $- in *i*) ;; *) return;; esac\n");
    let users = [
        User::login("bash", "/bin/bash", &[(".bashrc", &bashrc)]),
        User::login("dash", "/bin/dash", &[(".profile", NOISE)]),
        User::login("zsh", "/usr/bin/zsh", &[(".zshenv", NOISE)]),
        User::login(
            "fish",
            "/usr/bin/fish",
            &[(".config/fish/config.fish", NOISE)],
        ),
    ];
    let hostile = "it's \\ $HOME `id` \"q\" {a,b} (x) ~";
    for user in &users {
        for become_root in [false, true] {
            let mut target = sshd.target("n1", Some(&key));
            target.user = Some(user.name.clone());
            target.become_root = become_root;
            let session = client.connect(&target).await.unwrap();
            let what = format!("{} (become {become_root})", user.name);
            let out = session
                .exec(&["printf", "%s|", hostile, "two"], b"")
                .await
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{hostile}|two|"),
                "{what}"
            );
            assert_eq!(
                out.stderr, b"",
                "{what}: the shell's warning leaked into stderr"
            );
            let mut stream = session.exec_streaming(&["cat"]).await.unwrap();
            stream.send_line("{\"op\":\"facts\"}").await.unwrap();
            assert_eq!(
                stream.recv_line().await.unwrap().as_deref(),
                Some("{\"op\":\"facts\"}"),
                "{what}"
            );
            assert!(stream.finish().await.unwrap().success(), "{what}");
            let failed = session.exec(&["sh", "-c", "exit 3"], b"").await.unwrap();
            assert_eq!(
                failed.status,
                restate_fleet::ssh::ExitStatus::Code(3),
                "{what}"
            );
        }
    }

    // An rc file that ends the shell: the command never ran, and the error says so.
    let broken = User::login(
        "gone",
        "/bin/bash",
        &[(".bashrc", "echo 'no entry'; exit 1\n")],
    );
    let mut target = sshd.target("n1", Some(&key));
    target.user = Some(broken.name.clone());
    let session = client.connect(&target).await.unwrap();
    let err = session.exec(&["true"], b"").await.err().unwrap();
    assert!(matches!(err, SshError::ShellDidNotRun { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no entry") && text.contains(".bashrc"),
        "{text}"
    );
}

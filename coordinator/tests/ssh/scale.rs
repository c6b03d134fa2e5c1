use std::time::Instant;

use crate::harness::{Sshd, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_in_parallel() {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let client = client(&sshd.known_hosts_file(&[]));

    let mut singles = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let session = client
            .connect(&sshd.target(&format!("s{i}"), Some(&key)))
            .await
            .unwrap();
        singles.push(started.elapsed());
        session.close().await;
    }
    println!("handshake+auth, one host at a time: {singles:?}");

    let targets: Vec<_> = (0..50)
        .map(|i| sshd.target(&format!("n{i}"), Some(&key)))
        .collect();
    let started = Instant::now();
    let sessions = client.connect_all(&targets).await;
    let elapsed = started.elapsed();
    println!("50 sessions in parallel (forks 50): {elapsed:?}");
    for (target, session) in targets.iter().zip(&sessions) {
        let session = session.as_ref().unwrap();
        assert_eq!(session.host(), target.name);
    }
    let started = Instant::now();
    let runs: Vec<_> = sessions
        .iter()
        .map(|session| {
            let session = session.as_ref().unwrap().clone();
            tokio::spawn(async move { session.exec_checked(&["true"], b"").await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    println!(
        "one command on each of 50 sessions: {:?}",
        started.elapsed()
    );
}

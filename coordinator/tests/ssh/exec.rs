use restate_fleet::ssh::ExitStatus;

use crate::harness::connected;

const HOSTILE: [&str; 10] = [
    "with space",
    "it's",
    "\"double\"",
    "a; touch /tmp/restate-fleet-pwned",
    "$(touch /tmp/restate-fleet-pwned)",
    "`touch /tmp/restate-fleet-pwned`",
    "$HOME * ?",
    "line\nbreak",
    "",
    "-n",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argv_reaches_the_host_verbatim() {
    let (_sshd, session) = connected().await;
    let mut argv = vec!["printf", "%s\\0"];
    argv.extend(HOSTILE);
    let output = session.exec_checked(&argv, b"").await.unwrap();
    let mut expected = HOSTILE.join("\0").into_bytes();
    expected.push(0);
    assert_eq!(output.stdout, expected);
    assert!(!std::path::Path::new("/tmp/restate-fleet-pwned").exists());

    let err = session
        .exec(&["echo", "nul\0byte"], b"")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_status_stderr_and_many_channels() {
    let (_sshd, session) = connected().await;
    // More than one channel window each way, read while written.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = session.exec_checked(&["cat"], &big).await.unwrap();
    assert_eq!(echoed.stdout.len(), big.len());
    assert!(echoed.stdout == big);

    let early = session
        .exec(&["sh", "-c", "echo early >&2; exit 3"], &big)
        .await
        .unwrap();
    assert_eq!(
        (early.status, early.stderr),
        (ExitStatus::Code(3), b"early\n".to_vec())
    );

    let output = session
        .exec(&["sh", "-c", "echo out; echo err >&2; exit 7"], b"")
        .await
        .unwrap();
    assert_eq!(output.status, ExitStatus::Code(7));
    assert_eq!(
        (output.stdout.as_slice(), output.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let err = session
        .exec_checked(&["sh", "-c", "echo broken >&2; exit 3"], b"")
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("n1:") && text.contains("exit status 3") && text.contains("broken"),
        "{text}"
    );

    // One session, many concurrent channels.
    let runs = (0..20).map(|i| {
        let session = session.clone();
        async move {
            session
                .exec_checked(&["echo", i.to_string().as_str()], b"")
                .await
        }
    });
    for (i, output) in futures_join_all(runs).await.into_iter().enumerate() {
        assert_eq!(output.unwrap().stdout, format!("{i}\n").into_bytes());
    }
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lines_both_ways() {
    let (_sshd, session) = connected().await;
    let script = r#"while IFS= read -r line; do printf '{"echo":"%s"}\n' "$line"; done; echo bye >&2; exit 4"#;
    let mut stream = session.exec_streaming(&["sh", "-c", script]).await.unwrap();
    for request in ["one", "two words", "three"] {
        stream.send_line(request).await.unwrap();
        let answer = stream.recv_line().await.unwrap().unwrap();
        assert_eq!(answer, format!("{{\"echo\":\"{request}\"}}"));
    }
    let output = stream.finish().await.unwrap();
    assert_eq!(output.status, ExitStatus::Code(4));
    assert_eq!(output.stderr, b"bye\n");
    assert!(output.stdout.is_empty());

    let mut ended = session.exec_streaming(&["echo", "only"]).await.unwrap();
    assert_eq!(ended.recv_line().await.unwrap().as_deref(), Some("only"));
    assert_eq!(ended.recv_line().await.unwrap(), None);
}

//! The binary's contract without a server: modes, exit codes, errors, the lock across processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use restate_fleet_proto::agent::{ErrorKind, Reply};
use serde_json::json;

use crate::harness::{AGENT, TempDir, agent, agent_raw, request};

fn error(reply: &Reply) -> &restate_fleet_proto::agent::AgentError {
    match reply {
        Reply::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn protocol_mismatch_is_a_structured_error_with_exit_code_1() {
    let (response, code) = agent(&json!({"protocol": 99, "op": "facts", "config_path": "/x"}));
    assert_eq!(code, 1);
    let e = error(&response.reply);
    assert_eq!(e.kind, ErrorKind::ProtocolMismatch);
    assert!(e.hint.is_some());
}

#[test]
fn garbage_on_stdin_gets_a_json_error_not_a_crash() {
    for input in [&b""[..], b"\xff\xfe", b"{\"protocol\":2", b"[1,2]", b"{}"] {
        let (response, code) = agent_raw(input);
        assert_eq!(code, 1);
        assert!(matches!(
            error(&response.reply).kind,
            ErrorKind::BadRequest | ErrorKind::ProtocolMismatch
        ));
    }
}

#[test]
fn plan_shows_a_redacted_diff_and_changes_nothing() {
    let dir = TempDir::new("plan");
    let config = dir.path().join("restate.toml");
    std::fs::write(&config, "# keep me\ncluster-name = \"c\"\n").unwrap();
    let (response, code) = agent(&request(
        "plan",
        json!({"config_path": config, "patch": [
            {"op": "set", "path": ["worker", "snapshots", "aws-secret-access-key"], "value": "TOPSECRET"},
            {"op": "set", "path": ["worker", "snapshots", "aws-access-key-id"], "value": "KEYID", "secret": true},
            {"op": "set", "path": ["auto-provision"], "value": false},
        ]}),
    ));
    assert_eq!(code, 0);
    let Reply::Plan(plan) = response.reply else {
        panic!("{response:?}")
    };
    assert!(plan.changed);
    assert!(!plan.diff.contains("TOPSECRET") && !plan.diff.contains("KEYID"));
    assert!(
        plan.diff.contains("+auto-provision = false"),
        "{}",
        plan.diff
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "# keep me\ncluster-name = \"c\"\n"
    );
}

#[test]
fn broken_config_is_refused_with_its_location() {
    let dir = TempDir::new("broken");
    let config = dir.path().join("restate.toml");
    std::fs::write(&config, "cluster-name = \"c\"\nnode-name = n1\n").unwrap();
    let (response, code) = agent(&request(
        "apply",
        json!({"config_path": config, "patch": [{"op": "set", "path": ["a"], "value": 1}]}),
    ));
    assert_eq!(code, 1);
    let e = error(&response.reply);
    assert_eq!(e.kind, ErrorKind::ConfigParse);
    assert_eq!(e.path.as_deref(), Some(config.as_path()));
    assert_eq!(e.line, Some(2));
}

#[test]
fn serve_lock_keeps_others_out_while_its_coordinator_speaks_and_is_taken_over_once_silent() {
    let dir = TempDir::new("lock");
    let config = dir.path().join("etc/restate.toml");
    let mut session = Command::new(AGENT)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let to_session = Arc::new(Mutex::new(session.stdin.take().unwrap()));
    let mut from_session = BufReader::new(session.stdout.take().unwrap());
    let mut ask = {
        let to_session = to_session.clone();
        move |req: serde_json::Value| {
            writeln!(to_session.lock().unwrap(), "{req}").unwrap();
            let mut line = String::new();
            from_session.read_line(&mut line).unwrap();
            serde_json::from_str::<restate_fleet_proto::agent::Response>(&line).unwrap()
        }
    };
    let locked = ask(request(
        "lock",
        json!({"config_path": config, "holder": "alice@laptop"}),
    ));
    let Reply::Lock(info) = locked.reply else {
        panic!("{locked:?}")
    };
    assert_eq!(info.pid, session.id());
    // The session itself may change the node while it holds the lock.
    let apply = request(
        "apply",
        json!({"config_path": config, "patch": [{"op": "set", "path": ["cluster-name"], "value": "c"}]}),
    );
    let own = ask(apply.clone());
    assert!(
        matches!(own.reply, Reply::Apply(ref a) if a.preview.changed),
        "{own:?}"
    );

    // Another process may not, while the session's coordinator sends its heartbeats.
    let speaking = Arc::new(AtomicBool::new(true));
    let heartbeats = std::thread::spawn({
        let (to_session, speaking) = (to_session.clone(), speaking.clone());
        move || {
            while speaking.load(Ordering::SeqCst) {
                let _ = writeln!(to_session.lock().unwrap());
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    let (response, code) = agent(&apply);
    assert_eq!(code, 1);
    let e = error(&response.reply);
    assert_eq!(e.kind, ErrorKind::Locked);
    assert!(
        e.message
            .contains(&format!("locked by pid {}", session.id()))
            && e.message.contains("alice@laptop"),
        "{}",
        e.message
    );

    // Once the coordinator falls silent (stdin stays open, as with a cut link), the next
    // process takes the lock over and the session ends, saying why.
    speaking.store(false, Ordering::SeqCst);
    heartbeats.join().unwrap();
    let (response, code) = agent(&apply);
    assert_eq!(code, 0, "{response:?}");
    let status = session.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    let said = stderr_of(&mut session);
    assert!(said.contains("SIGTERM"), "{said}");
    drop(ask);
}

#[test]
fn a_silent_coordinator_counts_as_gone_and_its_lock_is_freed() {
    let dir = TempDir::new("idle");
    let config = dir.path().join("etc/restate.toml");
    let mut session = Command::new(AGENT)
        .args(["serve", "--idle-limit", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_session = session.stdin.take().unwrap();
    let mut from_session = BufReader::new(session.stdout.take().unwrap());
    let lock = request(
        "lock",
        json!({"config_path": config, "holder": "gone@laptop"}),
    );
    writeln!(to_session, "{lock}").unwrap();
    let mut line = String::new();
    from_session.read_line(&mut line).unwrap();
    assert!(line.contains("\"op\":\"lock\""), "{line}");
    // Heartbeats (empty lines) keep it alive past its limit...
    let started = std::time::Instant::now();
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        writeln!(to_session).unwrap();
    }
    assert!(
        session.try_wait().unwrap().is_none(),
        "ended despite heartbeats"
    );
    // ...silence with stdin still open (a peer that vanished) ends it, and the lock with it.
    let status = session.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    let said = stderr_of(&mut session);
    assert!(
        said.contains("no word from the coordinator for 2 s"),
        "{said}"
    );
    let apply = request(
        "apply",
        json!({"config_path": config, "patch": [{"op": "set", "path": ["cluster-name"], "value": "c"}]}),
    );
    let (response, code) = agent(&apply);
    assert_eq!(code, 0, "the lock went with the agent: {response:?}");
    drop(to_session);
}

#[test]
fn serve_refuses_unknown_options() {
    for args in [
        &["serve", "--idle-limit", "0"][..],
        &["serve", "--idle"][..],
    ] {
        let out = Command::new(AGENT).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// What an ended child wrote on its stderr.
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut said).expect("read stderr");
    }
    said
}

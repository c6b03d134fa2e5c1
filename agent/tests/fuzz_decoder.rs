//! Fuzzing the agent's request decoder through the real binary in `serve` mode: every input line
//! gets exactly one JSON answer line, within a second, and the process ends cleanly on EOF (a
//! panic would end it early or with another status). `FUZZ_CASES` sets the number of lines per
//! strategy (default 2000, quick enough for every `cargo test`); the counts of a long run are in
//! docs/reliability.md.
//!
//! Inputs never contain `/`: a mutated request that happens to be valid then touches only
//! relative paths inside the test's own working directory, never the machine.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::fuzz::{Edit, edited};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use restate_fleet_proto::agent::{Environment, NodeTarget, Operation, PatchOp, Request, Response};

const AGENT: &str = env!("CARGO_BIN_EXE_restate-fleet-agent");
/// An answer later than this is a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// One `serve` agent in a scratch directory, answered line by line.
struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    dir: PathBuf,
    sent: u64,
}

impl Agent {
    fn start(name: &str) -> Agent {
        let dir = std::env::temp_dir().join(format!("agent-fuzz-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(
            dir.join("restate.toml"),
            "cluster-name = \"fuzz\"\n# kept\n",
        )
        .expect("seed file");
        let mut child = Command::new(AGENT)
            .arg("serve")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the agent");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Agent {
            child,
            stdin,
            answers,
            dir,
            sent: 0,
        }
    }

    /// Sends one line; fails the case unless one decodable answer comes back in time.
    fn ask(&mut self, line: &str) -> Result<(), TestCaseError> {
        let line = line.replace(['\n', '\r'], " ");
        if line.trim().is_empty() {
            return Ok(());
        }
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| {
                TestCaseError::fail(format!("agent gone (panic?): {e}; input {line:?}"))
            })?;
        self.sent += 1;
        let answer = self
            .answers
            .recv_timeout(ANSWER_WITHIN)
            .map_err(|e| TestCaseError::fail(format!("no answer ({e}) to {line:?}")))?;
        serde_json::from_str::<Response>(&answer).map_err(|e| {
            TestCaseError::fail(format!("answer {answer:?} is not a response: {e}"))
        })?;
        Ok(())
    }

    /// Closes stdin and checks the agent ended on its own with success.
    fn finish(mut self) -> u64 {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(status.success(), "agent ended with {status} after EOF");
                    break;
                }
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("agent still running 5 s after EOF");
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.sent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Only when a case failed: the agent is ours, end it by its handle.
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Valid requests of every operation that needs no service and no network, as seeds.
fn seeds() -> Vec<String> {
    let node = NodeTarget::new("restate.toml");
    let ops = vec![
        Operation::Facts {
            node: node.clone(),
            restate_server: None,
        },
        Operation::Plan {
            config_path: "restate.toml".into(),
            patch: vec![
                PatchOp::set(&["worker", "snapshots", "aws-region"], "eu"),
                PatchOp::set(&["roles"], "worker"),
                PatchOp::remove(&["bifrost", "default-provider"]),
            ],
            service_user: Some("restate".into()),
            environment: None,
            server_binary: Some("/usr/local/bin/restate-server".into()),
        },
        Operation::Apply {
            node: node.clone(),
            patch: vec![PatchOp::set(&["x", "y"], 1_i64).secret()],
            restart: false,
            environment: Some(Environment {
                path: "/etc/restate/restate-fleet.env".into(),
                unit: "restate.service".into(),
                variables: vec![("RESTATE_X".into(), "secret".into())],
            }),
        },
        Operation::Rollback { node },
        Operation::Lock {
            config_path: "restate.toml".into(),
            holder: Some("fuzz".into()),
            run_id: Some("2026-12-03T11-01-26.123Z-42".into()),
        },
        Operation::Unlock {
            config_path: "restate.toml".into(),
        },
    ];
    ops.into_iter()
        .map(|op| serde_json::to_string(&Request::new(op)).expect("encodes"))
        .collect()
}

fn no_slash(text: String) -> String {
    text.replace('/', "_")
}

/// A seed with 1 to 6 characters replaced, inserted or removed.
fn mutated() -> impl Strategy<Value = String> {
    let edit = prop::sample::select(vec![Edit::Replace, Edit::Insert, Edit::Remove]);
    let edits = prop::collection::vec((any::<usize>(), any::<char>(), edit), 1..7);
    (prop::sample::select(seeds()), edits).prop_map(|(seed, edits)| no_slash(edited(&seed, &edits)))
}

/// JSON-ish text built from the protocol's own words, to get past the syntax check.
fn json_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"protocol\"",
        "1",
        "2",
        "-1",
        "1e999",
        "null",
        "true",
        "\"op\"",
        "\"facts\"",
        "\"plan\"",
        "\"apply\"",
        "\"lock\"",
        "\"unlock\"",
        "\"rollback\"",
        "\"service\"",
        "\"config_path\"",
        "\"restate.toml\"",
        "\"patch\"",
        "\"path\"",
        "\"value\"",
        "\"set\"",
        "\"remove\"",
        "\"secret\"",
        "\"restart\"",
        "false",
        "\"action\"",
        "\"start\"",
        "\"manager\"",
        "\"holder\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "é",
        " ",
        "18446744073709551616",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
}

fn run(name: &str, strategy: impl Strategy<Value = String>) {
    // proptest wants a `Fn` test: the agent sits in a RefCell.
    let agent = std::cell::RefCell::new(Agent::start(name));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let result = runner.run(&strategy, |line| agent.borrow_mut().ask(&line));
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
    let sent = agent.into_inner().finish();
    eprintln!(
        "agent fuzz {name}: {sent} requests answered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn arbitrary_text_gets_one_answer_each() {
    run("arbitrary", any::<String>().prop_map(no_slash));
}

#[test]
fn arbitrary_bytes_get_one_answer_each() {
    // Lossy UTF-8 is what the agent does with bytes that are not UTF-8.
    run(
        "bytes",
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| no_slash(String::from_utf8_lossy(&b).into_owned())),
    );
}

#[test]
fn json_shaped_text_gets_one_answer_each() {
    run("json-like", json_like().prop_map(no_slash));
}

#[test]
fn mutated_requests_get_one_answer_each() {
    run("mutated", mutated());
}

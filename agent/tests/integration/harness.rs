//! Shared pieces: running the agent, temp dirs, free ports, and a guard that always stops the
//! restate-server a test started.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{PROTOCOL_VERSION, Response};
use serde_json::{Value, json};

pub const AGENT: &str = env!("CARGO_BIN_EXE_restate-fleet-agent");

/// Runs the agent once with `request` on stdin; the parsed answer and the exit code.
pub fn agent(request: &Value) -> (Response, i32) {
    agent_raw(request.to_string().as_bytes())
}

pub fn agent_raw(stdin: &[u8]) -> (Response, i32) {
    let mut child = Command::new(AGENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the agent");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).expect("agent stdout is UTF-8");
    assert_eq!(text.lines().count(), 1, "one answer line: {text}");
    let response: Response =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad answer {text}: {e}"));
    assert_eq!(response.protocol, PROTOCOL_VERSION);
    (response, out.status.code().expect("agent exited normally"))
}

/// A request of the current protocol: `op` plus fields.
pub fn request(op: &str, fields: Value) -> Value {
    let mut value = json!({"protocol": PROTOCOL_VERSION, "op": op});
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), fields) {
        target.extend(extra);
    }
    value
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rfa-it-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn restate_server() -> PathBuf {
    lab::paths::restate_server().unwrap_or_else(|err| panic!("{err:#}"))
}

/// Stops the server whose pid is in `pidfile` when dropped, also when the test panics. Only that
/// pid is ever signalled.
pub struct ServerGuard {
    pub pidfile: PathBuf,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
            .filter(|pid| *pid > 1)
        else {
            return;
        };
        // SAFETY: plain signal syscalls on a pid this test's script started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && unsafe { libc::kill(pid, 0) } == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

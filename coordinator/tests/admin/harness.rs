//! Real processes on loopback for the admin client tests: restate-server nodes, a moto S3 server,
//! restatectl. Every process is stopped by its guard's Drop (by pid), also when a test panics.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use restate_fleet::admin::{AdminClient, AdminError, Timeouts};

/// An installed test dependency, or a panic that says how to install it.
fn installed(found: anyhow::Result<PathBuf>) -> PathBuf {
    found.unwrap_or_else(|err| panic!("{err:#}"))
}

pub fn restate_server() -> PathBuf {
    installed(lab::paths::restate_server())
}

pub fn restatectl_binary() -> PathBuf {
    installed(lab::paths::restatectl())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh directory, removed again by Drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "restate-fleet-admin-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
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

/// A child process stopped by pid on Drop: SIGTERM, a bounded wait, then SIGKILL.
pub struct Guard {
    child: Child,
    what: String,
}

impl Guard {
    pub fn spawn(what: impl Into<String>, command: &mut Command) -> Self {
        let what = what.into();
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        Guard { child, what }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.what);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct NodeSpec<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub auto_provision: bool,
    /// Extra restate.toml text appended as is (tables last).
    pub extra: String,
}

pub struct Node {
    pub name: String,
    pub fabric_port: u16,
    pub dir: TempDir,
    process: Guard,
}

impl Node {
    pub fn fabric_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    pub fn url(&self) -> String {
        Self::fabric_url(self.fabric_port)
    }

    /// Starts restate-server on `fabric_port` (chosen beforehand so that peers can list it).
    pub fn start(spec: NodeSpec<'_>, fabric_port: u16) -> Self {
        let dir = TempDir::new(spec.name);
        let config = format!(
            r#"cluster-name = "{cluster}"
node-name = "{name}"
base-dir = "{base}"
bind-address = "127.0.0.1:{fabric_port}"
advertised-address = "http://127.0.0.1:{fabric_port}/"
auto-provision = {auto}
rocksdb-total-memory-size = "512 MiB"
{extra}
[admin]
bind-address = "127.0.0.1:{admin}"

[ingress]
bind-address = "127.0.0.1:{ingress}"
"#,
            cluster = spec.cluster,
            name = spec.name,
            base = dir.path().join("data").display(),
            auto = spec.auto_provision,
            extra = spec.extra,
            admin = free_port(),
            ingress = free_port(),
        );
        let config_path = dir.path().join("restate.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let process = Guard::spawn(
            format!("restate-server {}", spec.name),
            Command::new(restate_server())
                .arg("--config-file")
                .arg(&config_path)
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        Node {
            name: spec.name.to_owned(),
            fabric_port,
            dir,
            process,
        }
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn client(&self) -> AdminClient {
        AdminClient::lazy(&self.url(), Timeouts::default()).unwrap()
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read(self.dir.path().join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

/// Polls `probe` every 200 ms until it yields Some or `limit` passes; panics naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, AdminError>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match probe().await {
            Ok(Some(value)) => return value,
            Ok(None) => "not yet".to_owned(),
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {limit:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the node reports itself alive and its admin role serves a populated cluster state.
pub async fn wait_until_ready(node: &Node) {
    let client = node.client();
    wait_for(
        &format!("{} alive ({})", node.name, node.url()),
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move {
                let ident = client.ident().await?;
                if !ident.is_alive() {
                    return Ok(None);
                }
                client.cluster_state().await.map(Some)
            }
        },
    )
    .await;
}

/// Waits until every partition has a leader (processors running, so snapshots can be taken).
pub async fn wait_until_partitions_led(node: &Node) {
    let client = node.client();
    wait_for(
        &format!("every partition of {} led", node.name),
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move {
                let partitions = client.cluster_config().await?.num_partitions as usize;
                let state = client.cluster_state().await?;
                let led: usize = state.alive_nodes().map(|(_, n)| n.leader_of.len()).sum();
                Ok((led == partitions).then_some(()))
            }
        },
    )
    .await;
}

/// Runs restatectl against `url` and returns its stdout without colour codes.
pub fn restatectl(url: &str, args: &[&str]) -> String {
    let output = Command::new(restatectl_binary())
        .arg("--address")
        .arg(url)
        .args(args)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "restatectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    strip_ansi(&String::from_utf8_lossy(&output.stdout))
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The rows of a restatectl table whose header line starts with `first_column`: each row split on
/// whitespace runs of two or more, keyed by the header names.
pub fn table(output: &str, first_column: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let split = |line: &str| -> Vec<String> {
        line.trim()
            .split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut lines = output
        .lines()
        .skip_while(|line| !line.trim_start().starts_with(first_column));
    let header = split(
        lines
            .next()
            .unwrap_or_else(|| panic!("no {first_column} table in:\n{output}")),
    );
    lines
        .take_while(|line| !line.trim().is_empty())
        .map(|line| header.iter().cloned().zip(split(line)).collect())
        .collect()
}

/// The `Key: value` lines of restatectl's tree output (`config get`), box drawing stripped.
pub fn tree_values(output: &str) -> std::collections::BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let (key, value) = line.split_once(": ")?;
            Some((key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// moto's S3 server on loopback.
pub struct S3 {
    pub port: u16,
    _process: Guard,
}

impl S3 {
    pub fn start() -> Self {
        let port = free_port();
        let process = Guard::spawn(
            "moto_server",
            Command::new(installed(lab::paths::moto_server()))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        // Python's start takes seconds on a loaded 2-core machine (once over 30 s while a build
        // ran beside the tests).
        let deadline = Instant::now() + Duration::from_secs(90);
        while http(port, "GET", "/").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        S3 {
            port,
            _process: process,
        }
    }

    pub fn create_bucket(&self, bucket: &str) {
        let answer = http(self.port, "PUT", &format!("/{bucket}")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Object keys in the bucket (first 1000).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let answer = http(self.port, "GET", &format!("/{bucket}?list-type=2")).unwrap();
        answer
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }

    /// The `[worker.snapshots]` table pointing at `bucket/prefix`.
    pub fn snapshots_table(&self, bucket: &str, prefix: &str) -> String {
        format!(
            r#"
[worker.snapshots]
destination = "s3://{bucket}/{prefix}"
aws-region = "us-east-1"
aws-endpoint-url = "http://127.0.0.1:{port}"
aws-allow-http = true
aws-access-key-id = "test"
aws-secret-access-key = "test"
"#,
            port = self.port
        )
    }
}

/// One plain HTTP/1.1 request to 127.0.0.1:port; the whole answer as text.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

//! The workload: a Restate service (`tests/workload/service.js`, the TypeScript SDK) served on the
//! lab's bridge address and registered with the cluster, and a driver (`tests/workload/driver.js`)
//! that sends traffic with idempotency keys to the lab's ingresses while a rollout runs, then
//! proves that nothing was lost or doubled, every durable timer fired and every workflow finished.
//! Both are ended by pid; the driver is bounded in count and time and talks only to lab hosts.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::{Lab, http, paths};

/// Where the service listens, on the lab's bridge address.
pub const PORT: u16 = 9080;
const ADMIN_PORT: u16 = 9070;
const INGRESS_PORT: u16 = 8080;

/// Starts the service; the lab ends it on teardown.
pub fn start_service(lab_dir: &std::path::Path, address: std::net::Ipv4Addr) -> Result<Child> {
    let log = fs::File::create(lab_dir.join("workload-service.log"))?;
    let child = Command::new("node")
        .arg(paths::workload_script("service.js")?)
        .args([&address.to_string(), &PORT.to_string()])
        .env("NODE_PATH", paths::workload_modules()?)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the workload service (node)")?;
    let addr = SocketAddr::from((address, PORT));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the workload service does not listen on {addr}: {}",
                fs::read_to_string(lab_dir.join("workload-service.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// Registers the service with the cluster through `admin` (a node's admin API), retrying while
/// the node is not ready yet.
pub fn register(admin: std::net::Ipv4Addr, service: std::net::Ipv4Addr) -> Result<()> {
    let addr = SocketAddr::from((admin, ADMIN_PORT));
    let body = format!(r#"{{"uri":"http://{service}:{PORT}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match http::request("POST", addr, "/deployments", body.as_bytes()) {
            Ok(answer) if (200..300).contains(&answer.status) => return Ok(()),
            Ok(answer) => format!("{}: {}", answer.status, answer.body),
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() > deadline {
            bail!("registering the workload service at {addr}: {last}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How the driver loads the cluster.
#[derive(Debug, Clone)]
pub struct Load {
    /// Counter calls per second.
    pub rate: u32,
    pub timers: u32,
    /// How long each durable timer sleeps: long enough to outlast the rollout's restarts.
    pub timer: Duration,
    pub workflows: u32,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            rate: 20,
            timers: 6,
            timer: Duration::from_secs(10),
            workflows: 3,
        }
    }
}

/// The driver's verdict and the clients' view of the rollout.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub seconds: f64,
    pub calls: u64,
    pub succeeded: u64,
    pub lost: u64,
    pub doubled: u64,
    pub retries: u64,
    /// 404 answers for a registered service (a node that just joined, before it has the schema).
    pub not_found_answers: u64,
    pub longest_gap_ms: u64,
    pub latency_ms: Latency,
    pub timers: Counted,
    pub workflows: Counted,
    pub verified: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Counted {
    #[serde(alias = "armed", alias = "started")]
    pub total: u64,
    #[serde(alias = "fired")]
    pub done: u64,
}

/// A driver sending traffic until [`Driver::finish`].
pub struct Driver {
    child: Option<Child>,
    out: PathBuf,
    stop: PathBuf,
    log: PathBuf,
}

impl Driver {
    /// Starts sending `load` to every lab host's ingress.
    pub fn start(lab: &Lab, load: &Load) -> Result<Driver> {
        let name = format!("workload-{}", std::process::id());
        let dir = lab.dir();
        let (out, stop, log) = (
            dir.join(format!("{name}.json")),
            dir.join(format!("{name}.stop")),
            dir.join(format!("{name}.log")),
        );
        let _ = fs::remove_file(&stop);
        let ingress: Vec<String> = lab
            .hosts()
            .iter()
            .map(|h| format!("http://{}:{INGRESS_PORT}", h.address))
            .collect();
        let child = Command::new("node")
            .arg(paths::workload_script("driver.js")?)
            .arg("--ingress")
            .arg(ingress.join(","))
            .arg("--out")
            .arg(&out)
            .arg("--stop")
            .arg(&stop)
            .args(["--rate", &load.rate.to_string()])
            .args(["--timers", &load.timers.to_string()])
            .args(["--timer-ms", &load.timer.as_millis().to_string()])
            .args(["--jobs", &load.workflows.to_string()])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("cannot start the workload driver (node)")?;
        Ok(Driver {
            child: Some(child),
            out,
            stop,
            log,
        })
    }

    /// Stops the traffic, waits for the verification (bounded) and returns the report.
    pub fn finish(mut self) -> Result<Report> {
        fs::write(&self.stop, b"")?;
        let mut child = self.child.take().context("driver already finished")?;
        // Calls in flight get their deadline (60 s), timers theirs plus a minute.
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the workload driver did not finish within 300 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let text = fs::read_to_string(&self.out).with_context(|| {
            format!(
                "the workload driver ended ({status}) without a report: {}",
                fs::read_to_string(&self.log).unwrap_or_default()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("unreadable driver report: {text}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

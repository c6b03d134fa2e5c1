//! The lab's S3 store: moto's server on the bridge address, so every host reaches it, with one
//! bucket for snapshots.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{http, paths};

pub const PORT: u16 = 9000;
pub const BUCKET: &str = "snapshots";
/// The lab's S3 credentials (moto takes any): words no other text holds, so that a test can
/// look for them anywhere.
pub const ACCESS_KEY_ID: &str = "lab-access-4e81d2";
pub const SECRET_ACCESS_KEY: &str = "lab-secret-9f27c1";

pub fn start(address: Ipv4Addr, dir: &Path) -> Result<Child> {
    let log = fs::File::create(dir.join("moto.log"))?;
    let child = Command::new(paths::moto_server()?)
        .args(["-H", &address.to_string(), "-p", &PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start moto_server")?;
    let addr = SocketAddr::from((address, PORT));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http::request("PUT", addr, &format!("/{BUCKET}"), &[]) {
            Ok(answer) if answer.status == 200 => return Ok(child),
            Ok(answer) => bail!(
                "S3 store at {addr}: creating bucket answered {}",
                answer.status
            ),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(err) => return Err(err.context(format!("S3 store at {addr} does not answer"))),
        }
    }
}

/// The object keys in the bucket under `prefix` (a plain ListObjects call; moto accepts it unsigned).
pub fn list(address: Ipv4Addr, prefix: &str) -> Result<Vec<String>> {
    let addr = SocketAddr::from((address, PORT));
    let answer = http::get(addr, &format!("/{BUCKET}?prefix={prefix}"))?;
    if answer.status != 200 {
        bail!(
            "listing s3://{BUCKET}/{prefix}: status {}: {}",
            answer.status,
            answer.body
        );
    }
    Ok(answer
        .body
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
        .collect())
}

/// Puts one object, to prove the store accepts writes.
pub fn put(address: Ipv4Addr, key: &str, body: &[u8]) -> Result<()> {
    let addr = SocketAddr::from((address, PORT));
    let answer = http::request("PUT", addr, &format!("/{BUCKET}/{key}"), body)?;
    if answer.status != 200 {
        bail!(
            "PUT s3://{BUCKET}/{key}: status {}: {}",
            answer.status,
            answer.body
        );
    }
    Ok(())
}

//! A minimal HTTP/1.1 client for the lab's own checks (a node's `/health`, the S3 store): enough for
//! small requests to addresses on this machine, with timeouts so a dead host never hangs a test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub struct Response {
    pub status: u16,
    pub body: String,
}

pub fn request(method: &str, addr: SocketAddr, path: &str, body: &[u8]) -> Result<Response> {
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // Bodies the lab sends are JSON (the admin API's registrations); S3 requests have none.
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("read answer of {method} http://{addr}{path}"))?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{method} http://{addr}{path}: malformed answer {text:?}");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} http://{addr}{path}: no status in {head:?}"))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    request("GET", addr, path, &[])
}

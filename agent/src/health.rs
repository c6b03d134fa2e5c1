//! The node's own view of itself: `GET /health` on its fabric (plain HTTP/1.1 over a
//! `TcpStream` or the fabric's unix socket, so no HTTP or async crate is needed), and waiting
//! until it says `Alive`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use restate_fleet_proto::agent::{Health, HealthWait};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const IO_TIMEOUT: Duration = Duration::from_millis(2000);
const MAX_RESPONSE: u64 = 1 << 20;
// A probe is one local HTTP request; polling often costs little and ends a restart's wait within
// 100 ms of the node coming up instead of up to a second later.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Where a node answers `/health`: its advertised fabric address, and the unix socket restate-server
/// keeps in its data directory (`fabric.sock`, measured on 1.7.12), which speaks plain HTTP
/// whatever the fabric's TLS mode: at `[tls] mode = "require"` the TCP port takes TLS with a
/// client certificate only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub address: String,
    /// Where the socket may be: a relative `base-dir` starts at a working directory a stopped
    /// server cannot tell (see `facts::find_data_dir`); the first that answers counts.
    pub sockets: Vec<PathBuf>,
}

impl Target {
    pub fn tcp(address: &str) -> Self {
        Target {
            address: address.to_string(),
            sockets: Vec::new(),
        }
    }
}

/// restate-server's fabric socket in the node's data directory.
pub const FABRIC_SOCKET: &str = "fabric.sock";

/// `host:port` from an advertised address such as `http://10.0.0.1:5122/` (or `https://`).
pub fn host_port(address: &str) -> Result<(String, u16), String> {
    let rest = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .ok_or_else(|| format!("advertised address {address:?} is not an http:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 address in {address:?}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in advertised address {address:?}"));
    }
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("bad port in advertised address {address:?}"))?,
        None => 80,
    };
    Ok((host.to_string(), port))
}

/// One `GET /health`, through the fabric socket when there is one, else over TCP (never in plain
/// text to an `https://` address, which would not answer it); `Err` says why there is no
/// usable answer.
pub fn probe(target: &Target) -> Result<Health, String> {
    let address = target.address.as_str();
    let mut socket_error = String::new();
    for socket in target.sockets.iter().filter(|s| s.exists()) {
        match get_health_unix(socket) {
            Ok(body) => return parse_health(address, &body),
            Err(e) => socket_error = format!("{}: {e}", socket.display()),
        }
    }
    if address.starts_with("https://") {
        return Err(if socket_error.is_empty() {
            format!("{address} speaks TLS and the node has no {FABRIC_SOCKET} (yet)")
        } else {
            socket_error
        });
    }
    let (host, port) = host_port(address)?;
    let addrs: Vec<SocketAddr> = crate::host::resolve(&host)
        .ok_or_else(|| format!("cannot resolve {host} (/etc/hosts, then getent ahosts)"))?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let mut last_error = format!("{host} has no address");
    for addr in addrs {
        match get_health(&addr, &host) {
            Ok(body) => return parse_health(address, &body),
            Err(e) => last_error = format!("{addr}: {e}"),
        }
    }
    Err(last_error)
}

fn get_health(addr: &SocketAddr, host: &str) -> Result<Vec<u8>, String> {
    let stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| e.to_string())?;
    // restate-server writes the head and the body apart, the body held back by Nagle until we
    // acknowledge the head, which Linux would delay by up to 40 ms: acknowledge at once, and again
    // after every read (the kernel clears the flag).
    exchange(stream, host, |s| {
        let _ = std::os::linux::net::TcpStreamExt::set_quickack(s, true);
    })
}

fn get_health_unix(socket: &std::path::Path) -> Result<Vec<u8>, String> {
    let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    exchange(stream, "localhost", |_| {})
}

/// One request on a fresh connection, read until the server closes it; `before_read` runs
/// before each read.
fn exchange<S: Read + Write>(
    mut stream: S,
    host: &str,
    before_read: impl Fn(&S),
) -> Result<Vec<u8>, String> {
    // One write, one segment: a server must never see half a request.
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        before_read(&stream);
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if raw.len() + n <= MAX_RESPONSE as usize => raw.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err(format!("the answer is larger than {MAX_RESPONSE} bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    http_body(&raw)
}

/// The body of a `200` response (content-length, chunked or read-to-close).
fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("incomplete HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!("/health answered {status_line:?}"));
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return dechunk(body);
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) if len <= body.len() => Ok(body[..len].to_vec()),
        Some(_) => Err("truncated HTTP body".into()),
        None => Ok(body.to_vec()),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn parse_health(address: &str, body: &[u8]) -> Result<Health, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("/health is not JSON: {e}"))?;
    let text = |key: &str| raw.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let status = text("status").ok_or("/health has no \"status\"")?;
    let roles = raw
        .get("roles")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Health {
        address: address.to_string(),
        status,
        node_id: text("node_id"),
        cluster_name: text("cluster_name"),
        roles,
        raw,
    })
}

/// Polls `/health` with a growing backoff (100 ms .. 1 s) until `Alive` or `timeout`, or until
/// `gone` gives a reason to stop waiting (asked after each probe that did not find it Alive).
pub fn wait_alive_unless(
    target: &Target,
    timeout: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> HealthWait {
    let start = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let address = target.address.as_str();
        let last = match probe(target) {
            Ok(h) if h.is_alive() => {
                return HealthWait {
                    address: address.to_string(),
                    healthy: true,
                    waited_ms: millis(start.elapsed()),
                    attempts,
                    last: format!("{} ({})", h.status, h.node_id.unwrap_or_default()),
                };
            }
            Ok(h) => format!("status {}", h.status),
            Err(e) => e,
        };
        let left = timeout.saturating_sub(start.elapsed());
        let gone = gone();
        if left.is_zero() || gone.is_some() {
            let last = match gone {
                Some(why) => format!("{why}; last answer: {last}"),
                None => last,
            };
            return HealthWait {
                address: address.to_string(),
                healthy: false,
                waited_ms: millis(start.elapsed()),
                attempts,
                last,
            };
        }
        thread::sleep(backoff.min(left));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn addresses() {
        assert_eq!(
            host_port("http://10.0.0.1:5122/").unwrap(),
            ("10.0.0.1".into(), 5122)
        );
        assert_eq!(
            host_port("http://n1.internal:5122").unwrap(),
            ("n1.internal".into(), 5122)
        );
        assert_eq!(
            host_port("http://[::1]:5122/").unwrap(),
            ("::1".into(), 5122)
        );
        assert_eq!(host_port("http://host/").unwrap(), ("host".into(), 80));
        assert_eq!(
            host_port("https://host:5122/").unwrap(),
            ("host".into(), 5122)
        );
        assert!(host_port("ftp://host:5122/").is_err());
        assert!(host_port("http://:5122/").is_err());
        assert!(host_port("http://h:x/").is_err());
    }

    #[test]
    fn bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcdEXTRA";
        assert_eq!(http_body(plain).unwrap(), b"abcd");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).unwrap(), b"abcde");
        assert!(http_body(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").is_err());
        assert!(http_body(b"garbage").is_err());
    }

    /// Serves `answers` in order, one per connection, on a loopback port.
    fn fake_node(answers: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}/", listener.local_addr().unwrap());
        thread::spawn(move || {
            for answer in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        address
    }

    #[test]
    fn waits_through_starting_up_until_alive() {
        let starting =
            "HTTP/1.1 200 OK\r\ncontent-length: 26\r\n\r\n{\"status\":\"StartingUp\"}   ";
        let alive = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"Alive\",\"node_id\":\"N1:2\",\"cluster_name\":\"c\",\"roles\":[\"worker\"]}";
        let address = fake_node(vec![starting, alive]);
        let wait = wait_alive_unless(&Target::tcp(&address), Duration::from_secs(5), || None);
        assert!(wait.healthy, "{wait:?}");
        assert_eq!(wait.attempts, 2);
        assert_eq!(wait.last, "Alive (N1:2)");
    }

    /// At `[tls] mode = "require"` the advertised address is `https://` and only the socket
    /// answers in plain HTTP.
    #[test]
    fn a_tls_node_is_asked_through_its_fabric_socket() {
        let dir = std::env::temp_dir().join(format!("health-sock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join(FABRIC_SOCKET);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"Alive\",\"node_id\":\"N2:1\"}");
        });
        let target = Target {
            address: "https://10.255.255.1:5122/".into(),
            sockets: vec![dir.join("elsewhere.sock"), socket.clone()],
        };
        let health = probe(&target).unwrap();
        assert!(health.is_alive());
        assert_eq!(health.address, "https://10.255.255.1:5122/");
        // Without the socket, an https address is never asked in plain text.
        let gone = Target {
            sockets: vec![dir.join("missing.sock")],
            ..target
        };
        let err = probe(&gone).unwrap_err();
        assert!(err.contains("speaks TLS"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gives_up_at_the_timeout() {
        // A port that was just free: nothing listens, connections are refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let start = Instant::now();
        let wait = wait_alive_unless(
            &Target::tcp(&format!("http://127.0.0.1:{port}/")),
            Duration::from_millis(700),
            || None,
        );
        assert!(!wait.healthy);
        assert!(wait.attempts >= 2);
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn stops_waiting_when_the_server_is_gone() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut asked = 0;
        let wait = wait_alive_unless(
            &Target::tcp(&format!("http://127.0.0.1:{port}/")),
            Duration::from_secs(30),
            || {
                asked += 1;
                (asked == 3).then(|| "the unit failed".to_string())
            },
        );
        assert!(!wait.healthy);
        assert_eq!(wait.attempts, 3);
        assert!(
            wait.last.starts_with("the unit failed; last answer: "),
            "{}",
            wait.last
        );
    }
}

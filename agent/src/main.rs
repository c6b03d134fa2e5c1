mod audit;
mod collect;
mod config_check;
mod diff;
mod digest;
mod environment;
mod facts;
mod files;
mod health;
mod host;
mod host_checks;
mod install;
mod lock;
mod ops;
mod patch;
mod redact;
mod retire;
mod secrecy;
mod service;
mod session;
mod setup;
mod tls_files;
mod unit;

use restate_fleet_clock as clock;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use restate_fleet_proto::agent::{PROTOCOL_VERSION, Reply, Response};

use crate::session::Session;

const HELP: &str = "restate-fleet-agent: runs on a Restate node, driven by restate-fleet over SSH.

Usage:
  restate-fleet-agent < request.json   read one JSON request until EOF, write one JSON answer
  restate-fleet-agent serve [--idle-limit SECONDS]
                                       one JSON request per line on stdin, one answer line each;
                                       a `lock` is held until stdin closes; empty lines are
                                       heartbeats; after SECONDS (30) without any line the
                                       coordinator counts as gone and the agent ends (exit 3)
  restate-fleet-agent --version | --help

Exit code (one-shot): 0 when the answer is not an error, 1 when it is, 2 on bad arguments.
The protocol is described in docs/agent.md.";

/// A request larger than this is refused rather than read into memory.
const MAX_REQUEST: u64 = 16 << 20;

fn main() -> ExitCode {
    // A deploy user's umask of 077 or 027 reaches us through sudo; files and folders the service
    // user must read (config, binary, unit, data directory) get their modes from this program,
    // which narrows them explicitly where they hold secrets, never from the login's umask.
    // SAFETY: umask only sets this process's file mode mask; no other thread runs yet.
    unsafe { libc::umask(0o022) };
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "-V") => {
            println!(
                "restate-fleet-agent {} (protocol {PROTOCOL_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("serve") => match idle_limit(std::env::args().skip(2)) {
            Ok(limit) => serve(limit),
            Err(why) => {
                eprintln!("restate-fleet-agent: {why}; see --help");
                ExitCode::from(2)
            }
        },
        None => one_shot(),
        Some(other) => {
            eprintln!("restate-fleet-agent: unknown argument {other:?}; see --help");
            ExitCode::from(2)
        }
    }
}

fn one_shot() -> ExitCode {
    let mut input = Vec::new();
    let read = io::stdin().lock().take(MAX_REQUEST).read_to_end(&mut input);
    let mut session = Session::new(false);
    let response = match read {
        Ok(_) => session.handle(&String::from_utf8_lossy(&input)),
        Err(e) => session.handle(&format!("<cannot read stdin: {e}>")),
    };
    let failed = matches!(response.reply, Reply::Error(_));
    if write_line(&mut io::stdout().lock(), &response).is_err() || failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `serve`'s options: `--idle-limit SECONDS` (default [`IDLE_LIMIT`]).
fn idle_limit(mut args: impl Iterator<Item = String>) -> Result<std::time::Duration, String> {
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, ..) => Ok(IDLE_LIMIT),
        (Some("--idle-limit"), Some(seconds), None) => match seconds.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok(std::time::Duration::from_secs(seconds)),
            _ => Err(format!(
                "--idle-limit takes a number of seconds above 0, not {seconds:?}"
            )),
        },
        (Some(other), ..) => Err(format!(
            "serve takes only --idle-limit SECONDS, not {other:?}"
        )),
    }
}

/// Set by SIGTERM: a run that took this node's lock over, or an operator. Checked between
/// requests, so an operation under way is finished (and answered) first.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn serve(idle: std::time::Duration) -> ExitCode {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    let mut session = Session::new(true);
    let lines = read_lines(idle, session.held());
    let mut stdout = io::stdout().lock();
    loop {
        if STOP.load(Ordering::SeqCst) {
            eprintln!(
                "restate-fleet-agent: stopped by SIGTERM (another run took this node's lock over after this run's coordinator fell silent, or an operator asked)"
            );
            return ExitCode::from(3);
        }
        let line = match lines.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(Ok(Some(line))) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            // EOF: the coordinator is done (or gone); locks drop with the process.
            Ok(Ok(None)) => return ExitCode::SUCCESS,
            Ok(Err(Gone::Silent)) => {
                eprintln!(
                    "restate-fleet-agent: no word from the coordinator for {} s: it is gone (a lost link, a laptop asleep); stopping, which releases the node's lock",
                    idle.as_secs()
                );
                return ExitCode::from(3);
            }
            Ok(Err(Gone::Broken)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return ExitCode::from(1);
            }
        };
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let response = session.handle(&text);
        if write_line(&mut stdout, &response).is_err() {
            // Nobody is listening any more.
            return ExitCode::from(1);
        }
    }
}

/// Reads the coordinator's lines on a thread of their own, so that its heartbeats reach the
/// node locks (see `lock`) also while an operation keeps the main thread busy.
fn read_lines(
    idle: std::time::Duration,
    held: session::Held,
) -> mpsc::Receiver<Result<Option<Vec<u8>>, Gone>> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut input = Lines::stdin();
        loop {
            let next = input.next(idle);
            let go_on = matches!(next, Ok(Some(_)));
            if go_on {
                held.heard();
            }
            if send.send(next).is_err() || !go_on {
                return;
            }
        }
    });
    receive
}

/// How long `serve` waits for the next line by default. The coordinator sends an empty line every few
/// seconds while it has nothing to ask, so only a coordinator that is gone (killed, asleep, its
/// link cut: sshd does not notice a silent peer) stays silent this long; the agent then ends
/// and its node lock goes with it, so the next run need not wait for a dead one.
const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

enum Gone {
    /// Nothing arrived within the idle limit.
    Silent,
    /// stdin failed, or a line grew past [`MAX_REQUEST`].
    Broken,
}

/// Newline-delimited input read straight from fd 0 with a deadline per line: std's buffered
/// stdin would hide a second line already read from `poll`.
struct Lines {
    buffer: Vec<u8>,
    eof: bool,
}

impl Lines {
    fn stdin() -> Self {
        Lines {
            buffer: Vec::new(),
            eof: false,
        }
    }

    /// The next line without its newline; `None` at end of input.
    fn next(&mut self, idle: std::time::Duration) -> Result<Option<Vec<u8>>, Gone> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).take(end).collect();
                return Ok(Some(line));
            }
            if self.eof {
                return Ok((!self.buffer.is_empty()).then(|| std::mem::take(&mut self.buffer)));
            }
            if self.buffer.len() as u64 > MAX_REQUEST {
                return Err(Gone::Broken);
            }
            let mut poll = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = i32::try_from(idle.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd for the duration of the call.
            match unsafe { libc::poll(&mut poll, 1, millis) } {
                0 => return Err(Gone::Silent),
                n if n < 0 => {
                    if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(Gone::Broken);
                }
                _ => {}
            }
            let mut chunk = [0u8; 64 * 1024];
            // SAFETY: reads at most chunk.len() bytes into chunk.
            let read = unsafe { libc::read(0, chunk.as_mut_ptr().cast(), chunk.len()) };
            match read {
                0 => self.eof = true,
                n if n < 0 => {
                    if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        return Err(Gone::Broken);
                    }
                }
                n => self.buffer.extend_from_slice(&chunk[..n as usize]),
            }
        }
    }
}

fn write_line(out: &mut impl Write, response: &Response) -> io::Result<()> {
    let text = serde_json::to_string(response).unwrap_or_else(|e| {
        format!(
            r#"{{"protocol":{PROTOCOL_VERSION},"op":"error","kind":"internal","message":"cannot encode the answer: {}"}}"#,
            e.to_string().replace(['"', '\\'], "'")
        )
    });
    writeln!(out, "{text}")?;
    out.flush()
}

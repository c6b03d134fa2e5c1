mod clock;
mod diff;
mod digest;
mod facts;
mod files;
mod health;
mod host;
mod install;
mod lock;
mod ops;
mod patch;
mod redact;
mod secrecy;
mod service;
mod session;
mod setup;
mod unit;

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;

use restate_fleet_proto::agent::{PROTOCOL_VERSION, Reply, Response};

use crate::session::Session;

const HELP: &str = "restate-fleet-agent: runs on a Restate node, driven by restate-fleet over SSH.

Usage:
  restate-fleet-agent < request.json   read one JSON request until EOF, write one JSON answer
  restate-fleet-agent serve            one JSON request per line on stdin, one answer line each;
                                       a `lock` is held until stdin closes
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
        Some("serve") => serve(),
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

fn serve() -> ExitCode {
    let mut session = Session::new(true);
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin
            .by_ref()
            .take(MAX_REQUEST)
            .read_until(b'\n', &mut line)
        {
            // EOF: the coordinator is done (or gone); locks drop with the process.
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(_) => return ExitCode::from(1),
        }
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

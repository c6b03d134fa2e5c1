use std::process::ExitCode;

const HELP: &str = "restate-fleet-agent: runs on a Restate node, driven by restate-fleet over SSH.

Reads one JSON request on stdin and writes one JSON answer on stdout.

Usage: restate-fleet-agent [--help | --version]";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "-V") => {
            println!("restate-fleet-agent {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("restate-fleet-agent: unknown argument {other:?}; see --help");
            ExitCode::from(2)
        }
        None => {
            eprintln!("restate-fleet-agent: no request handling yet; see --help");
            ExitCode::from(2)
        }
    }
}

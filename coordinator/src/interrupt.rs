//! Ctrl-C and SIGTERM during a run. The first asks the run to stop at the next safe point: the
//! step in progress finishes (a member's file is never left written without its health gate),
//! no further step starts, the recap says what was done and what was not, and the process exits
//! 130 with the line that re-runs it. A second signal stops at once, saying so.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit code of a run stopped by a signal (128 + SIGINT), as shells report Ctrl-C.
pub const EXIT_CODE: u8 = 130;

/// Listens for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    tokio::spawn(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "interrupted again: stopping at once; the step in progress may be half done, a re-run finishes it"
                );
                std::process::exit(i32::from(EXIT_CODE));
            }
            eprintln!(
                "interrupted: finishing the step in progress, then stopping (interrupt again to stop at once)"
            );
        }
    });
}

/// A stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The command line that re-runs this one, for the message after an interruption.
pub fn rerun_line() -> String {
    let words: Vec<String> = std::env::args()
        .map(|arg| {
            if arg.is_empty()
                || arg.contains(|c: char| c.is_whitespace() || "'\"$`\\;&|<>()".contains(c))
            {
                crate::ssh::shell_quote(&arg)
            } else {
                arg
            }
        })
        .collect();
    words.join(" ")
}

//! Progress on stderr, one line per event with the time since the run began, so that stdout keeps
//! only the result (a table, or the one JSON document of `--output json`).

use std::time::Instant;

pub struct Progress {
    started: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            started: Instant::now(),
            quiet,
        }
    }

    pub fn step(&self, what: &str) {
        self.line(&format!("== {what}"));
    }

    pub fn host(&self, host: &str, what: &str) {
        self.line(&format!("{host}: {what}"));
    }

    pub fn warn(&self, what: &str) {
        self.line(&format!("warning: {what}"));
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }
}

//! Progress on stderr, so that stdout keeps only the result (a table, or the one JSON document of
//! `--output json`). On a terminal: a spinner line per host showing its current step, with step
//! headings printed above them. Elsewhere (CI, pipes, logs): plain lines with the time since the
//! run began.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Progress {
    started: Instant,
    quiet: bool,
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    hosts: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| Live {
            multi: MultiProgress::new(),
            hosts: Mutex::new(BTreeMap::new()),
        });
        Progress {
            started: Instant::now(),
            quiet,
            live,
        }
    }

    pub fn step(&self, what: &str) {
        self.line(&format!("== {what}"));
    }

    pub fn host(&self, host: &str, what: &str) {
        match &self.live {
            Some(live) => live.host_bar(host).set_message(what.to_string()),
            None => self.line(&format!("{host}: {what}")),
        }
    }

    pub fn warn(&self, what: &str) {
        self.line(&format!("warning: {what}"));
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let text = format!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
        match &self.live {
            // Printed above the spinners; a hidden terminal falls back to nothing, never a panic.
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Live {
    fn host_bar(&self, host: &str) -> ProgressBar {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                if let Ok(style) =
                    ProgressStyle::with_template("  {spinner} {prefix:<16} {wide_msg}")
                {
                    bar.set_style(style);
                }
                bar.set_prefix(host.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            let hosts = live
                .hosts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for bar in hosts.values() {
                bar.finish();
            }
        }
    }
}

//! Faults during a run, on the lab: a host unreachable before or lost during the run, a node that
//! does not come back after its restart, the S3 store down while snapshotting, the coordinator
//! interrupted and killed, two runs at once, a metadata server down. Each leaves the fleet in a
//! known state (no half-written file, no lost config, no split cluster) and a re-run after the
//! cause is fixed converges. The matrix is in docs/reliability.md.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab::{Kind, Lab, Spec};

use crate::harness::{self, assert_exit, fleet, restatectl_until, stdout};

pub const CONFIG: &str = "/etc/restate/restate.toml";
const WAIT: Duration = Duration::from_secs(60);

/// A host's restate.toml, if it has one.
const LOCK: &str = "/etc/restate/.restate-fleet.lock";

pub fn config_of(lab: &Lab, host: &str) -> Option<Vec<u8>> {
    std::fs::read(lab.host(host).path(CONFIG).expect("private path")).ok()
}

/// Every host's restate.toml bytes and restate-server pid: what "changes nothing" compares.
pub fn footprint(lab: &Lab) -> Vec<(String, Option<Vec<u8>>, Option<u32>)> {
    lab.hosts()
        .iter()
        .map(|h| (h.name.clone(), config_of(lab, &h.name), h.restate_pid()))
        .collect()
}

/// Runs `apply --yes` on a converged lab and fails the test unless it exits 0 having changed no
/// file and restarted no node.
pub fn assert_rerun_changes_nothing(lab: &Lab, what: &str) {
    let before = footprint(lab);
    let again = fleet(lab, &["apply", "--yes"]);
    assert_exit(&again, 0, what);
    assert_eq!(
        footprint(lab),
        before,
        "{what}: the re-run changed or restarted something"
    );
}

/// Everything a command printed, for messages and `contains` checks.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Replaces the lab's inventory (the file `fleet` runs with).
pub fn set_inventory(lab: &Lab, text: &str) {
    std::fs::write(lab.inventory_path(), text).expect("write the inventory");
}

/// The lab's inventory with one `[defaults.config]` value changed.
pub fn inventory_with_memory(lab: &Lab, value: &str) -> String {
    let original = lab.inventory();
    let changed = original.replace(
        "rocksdb-total-memory-size = \"512 MiB\"",
        &format!("rocksdb-total-memory-size = \"{value}\""),
    );
    assert_ne!(
        changed, original,
        "the lab inventory sets rocksdb-total-memory-size"
    );
    changed
}

/// The lab's inventory with a `[defaults.config]` key that a running server does not apply
/// (`log-filter`, docs/config-reload.md) set to `filter`: a rolling change that restarts every
/// member. (`rocksdb-total-memory-size` is applied live, without a restart.)
pub fn inventory_with_restart(lab: &Lab, filter: &str) -> String {
    inventory_with_memory(lab, &format!("512 MiB\"\nlog-filter = \"{filter}"))
}

/// Polls `done` until it holds; fails the test naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// restate-fleet running in the background, ended by its pid when dropped.
pub struct Background {
    child: Option<Child>,
    /// About the run's own 0.0 s, which its progress lines count from.
    pub started: Instant,
}

impl Background {
    pub fn start(lab: &Lab, args: &[&str]) -> Background {
        let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
        let child = harness::fleet_command(&binary, lab, &lab.inventory_path(), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restate-fleet runs");
        Background {
            child: Some(child),
            started: Instant::now(),
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not finished")
    }

    pub fn signal(&mut self, signal: &str) {
        let pid = self.child().id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub fn ended(&mut self) -> bool {
        self.child().try_wait().expect("wait").is_some()
    }

    /// Waits for the exit (bounded) and returns what it printed.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while self.child().try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "restate-fleet still runs after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let child = self.child.take().expect("not finished");
        child.wait_with_output().expect("collect output")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The journal of the last run that started (run ids sort by start time).
fn newest_journal(lab: &Lab) -> std::path::PathBuf {
    let mut journals: Vec<_> = std::fs::read_dir(lab.journal_dir())
        .expect("the journal directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    journals.sort();
    journals.pop().expect("a journal")
}

/// When the run's progress line containing `needle` was printed, by its `[  12.3s]` prefix.
fn said_at(text: &str, needle: &str) -> Option<Duration> {
    let line = text.lines().find(|l| l.contains(needle))?;
    let seconds = line.strip_prefix('[')?.split_once("s]")?.0.trim();
    seconds.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// No host has a temporary file left from an interrupted write, and every restate.toml parses.
/// An agent whose coordinator was killed finishes the operation it is in (a config check runs
/// the server on a temporary copy for up to 20 s), so a file of that operation may exist while
/// it ends: left means still there a minute later.
pub fn assert_no_half_written_file(lab: &Lab) {
    for host in lab.hosts() {
        let dir: PathBuf = host.path("/etc/restate").expect("private path");
        let temporary = || -> Vec<String> {
            std::fs::read_dir(&dir)
                .expect("list /etc/restate")
                .map(|entry| {
                    entry
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .filter(|name| name.contains(".tmp"))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !temporary().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let left = temporary();
        assert!(
            left.is_empty(),
            "{}: temporary file(s) {left:?} left in /etc/restate",
            host.name
        );
        if let Some(bytes) = config_of(lab, &host.name) {
            let text = String::from_utf8(bytes).expect("UTF-8 config");
            // Written whole or not at all: the tool's own keys are all there.
            assert!(
                text.contains("cluster-name") && text.contains("node-name"),
                "{}: incomplete restate.toml:\n{text}",
                host.name
            );
        }
    }
}

/// restatectl (through `via`) lists exactly these nodes, all alive and metadata members.
pub fn assert_cluster_of(lab: &Lab, via: &str, names: &[&str]) {
    let padded: Vec<String> = names.iter().map(|n| format!(" {n} ")).collect();
    let status = restatectl_until(lab, via, &["status"], WAIT, |out| {
        padded.iter().all(|n| out.contains(n.as_str())) && !out.contains("offline")
    });
    assert_eq!(
        status.matches("Member").count(),
        names.len(),
        "every node a metadata member:\n{status}"
    );
}

/// The refusal that a moment fixes after an interrupted run, with nothing changed: the node it
/// restarted does not answer the admin API yet. (A lock is never such a refusal: the lock of a
/// run that is gone is waited for while its agent finishes, or taken over.)
fn transient(printed: &str) -> bool {
    printed.contains("nothing changed") && printed.contains("no node answers the admin API")
}

/// Runs `apply --yes` until it is no longer refused for a node that does not answer the admin API
/// yet, at most `timeout`.
fn apply_after_nodes_answer(lab: &Lab, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        let out = fleet(lab, &["apply", "--yes"]);
        if !(transient(&printed(&out)) && out.status.code() == Some(1)) || Instant::now() > deadline
        {
            return out;
        }
        eprintln!(
            "re-run refused for a node not answering yet, retrying:\n{}",
            printed(&out)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn a_new_host_unreachable_before_or_lost_during_the_run() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));

    // Before the run: nothing changes anywhere, the error names the host.
    lab.set_link("n3", false).expect("cut n3");
    let before = footprint(&lab);
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with n3 unreachable");
    let text = printed(&out);
    assert!(
        text.contains("n3") && text.contains("unreachable"),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(
        footprint(&lab),
        before,
        "no file written, nothing restarted"
    );

    // During the run: n3's link goes down right after its restate.toml is written.
    lab.set_link("n3", true).expect("n3 back");
    let run = Background::start(&lab, &["apply", "--yes"]);
    wait_for(
        "n3's restate.toml written",
        Duration::from_secs(120),
        || config_of(&lab, "n3").is_some(),
    );
    lab.set_link("n3", false).expect("cut n3 mid-run");
    let cut = run.started.elapsed();
    let out = run.finish(Duration::from_secs(300));
    assert_exit(&out, 1, "apply losing n3 mid-run");
    let text = printed(&out);
    // SSH keepalives every 3 s, three unanswered: the loss is named within 15 s, not 45 (the
    // run itself ends once the other joining host's start is answered).
    let named = said_at(&text, "n3: failed: connection lost")
        .unwrap_or_else(|| panic!("n3's loss has a progress line:\n{text}"));
    let noticed = named.saturating_sub(cut);
    assert!(
        noticed <= Duration::from_secs(15),
        "n3's loss took {noticed:?} to be named:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("n3") && l.contains("fail")),
        "the recap names n3:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("n3") && l.contains("connection lost")),
        "the error says what happened:\n{text}"
    );
    // The rules: new nodes join together, then the run stops; n2 joined. n1 (a lone
    // restate-server 1.7 member) restarts only after the join (docs/gentle-grow.md), so the
    // run stopped before it: its file and its process are as they were.
    let n1 = String::from_utf8(config_of(&lab, "n1").expect("n1 config")).expect("UTF-8");
    assert!(!n1.contains(&lab.host("n3").advertised_address()), "{n1}");
    assert_eq!(
        text.matches("n1: writing restate.toml and restarting")
            .count(),
        0,
        "n1 not restarted:\n{text}"
    );
    assert_no_half_written_file(&lab);

    // Right after the link is back, one re-run converges: the dead run's agent on n3 still holds
    // the node lock (sshd has not noticed anything), and the new run takes it over once that
    // agent is idle, saying so, instead of being refused.
    lab.set_link("n3", true).expect("n3 back");
    let rerun = Instant::now();
    let out = fleet(&lab, &["apply", "--yes"]);
    let text = printed(&out);
    eprintln!("re-run after n3 is back: {:?}", rerun.elapsed());
    assert_exit(&out, 0, "re-run right after n3 is back");
    eprintln!("{text}");
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);

    // A laptop that sleeps in the middle of a rolling change (SIGSTOP: its TCP connections stay
    // open, so sshd and the agents notice nothing but silence). A run from elsewhere takes every
    // lock over once its holder is idle and has not heard from its coordinator for 8 s.
    set_inventory(
        &lab,
        &inventory_with_restart(&lab, "warn,restate=info,lab=warn"),
    );
    let lock_of_n1 = || std::fs::read_to_string(lab.host("n1").path(LOCK).expect("path")).ok();
    let before = lock_of_n1();
    let mut asleep = Background::start(&lab, &["apply", "--yes"]);
    wait_for(
        "the rolling change holds n1's lock",
        Duration::from_secs(60),
        || lock_of_n1() != before,
    );
    asleep.signal("-STOP");
    let out = fleet(&lab, &["apply", "--yes"]);
    let text = printed(&out);
    asleep.signal("-KILL");
    drop(asleep.finish(Duration::from_secs(10)));
    assert_exit(&out, 0, "a run while another one's laptop sleeps");
    for host in ["n1", "n2", "n3"] {
        assert!(
            text.lines().any(
                |l| l.contains(&format!("{host}: took the node lock over from pid"))
                    && l.contains("not been heard from")
            ),
            "the run says whose lock it took on {host}:\n{text}"
        );
    }
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);
    assert_rerun_changes_nothing(&lab, "after taking over a sleeping run's locks");
}

#[test]
fn a_node_that_does_not_come_back_is_rolled_back_and_s3_down_stops_before_new_nodes() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    let n1_before = config_of(&lab, "n1").expect("n1 has a config");

    // A value restate-server's own loader refuses: found with the server on n1 before anything
    // changes, its message shown; nothing written, nothing restarted.
    let n1_pid = lab.host("n1").restate_pid();
    set_inventory(&lab, &inventory_with_memory(&lab, "lots"));
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with a value restate-server refuses");
    let text = printed(&out);
    assert!(
        text.contains("n1: the restate.toml this run would write is refused by its restate-server")
            && text.contains("expected a human-readable byte count string")
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(lab.host("n1").restate_pid(), n1_pid, "n1 not restarted");
    assert_eq!(config_of(&lab, "n1").expect("n1 config"), n1_before);

    // The S3 store down (firewalled: connections to it are reset): the survey's probe from each
    // host finds it, and the run stops before its first change, n1 not restarted either.
    set_inventory(&lab, &lab.inventory());
    let firewall = S3Firewall::up(&lab);
    let n1_pid = lab.host("n1").restate_pid();
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with S3 down");
    let text = printed(&out);
    assert!(
        text.contains("cannot reach the snapshot repository at")
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(config_of(&lab, "n1").expect("n1 config"), n1_before);
    assert_eq!(lab.host("n1").restate_pid(), n1_pid, "n1 not restarted");
    for host in ["n2", "n3"] {
        assert!(config_of(&lab, host).is_none(), "{host} untouched: {text}");
        assert!(lab.host(host).restate_pid().is_none(), "{host} not started");
    }
    drop(firewall);

    // A file the loader takes but the start refuses (an ingress address not on the host), for
    // n1 alone: the new nodes join first (a lone 1.7 member restarts last, docs/gentle-grow.md),
    // then n1's restart fails; the agent sees the server exit at once, puts the old file back
    // and restarts it.
    let n1_table = format!("[hosts.n1]\naddress = \"{}\"\n", lab.host("n1").address);
    let inventory = lab.inventory();
    assert!(inventory.contains(&n1_table), "{inventory}");
    let unbindable = inventory.replace(
        &n1_table,
        &format!("{n1_table}config = {{ ingress = {{ bind-address = \"198.51.100.1:8080\" }} }}\n"),
    );
    set_inventory(&lab, &unbindable);
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 1, "apply with a config the start fails on");
    let text = printed(&out);
    assert!(
        text.contains("n1")
            && text.contains("restored the previous restate.toml")
            && text.contains("restate-server exited after the start"),
        "{text}"
    );
    assert!(
        !text.contains("nothing changed"),
        "a restart rolled back is a change:\n{text}"
    );
    assert_eq!(
        config_of(&lab, "n1").expect("n1 config"),
        n1_before,
        "n1 is back on its old file, byte for byte"
    );
    assert!(
        lab.host("n1")
            .health()
            .expect("n1 answers")
            .contains("\"Alive\"")
    );
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);
    assert_no_half_written_file(&lab);

    // The inventory fixed: the re-run converges.
    set_inventory(&lab, &lab.inventory());
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 0, "re-run with S3 back");
    assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
}

/// Resets every connection from the lab's hosts to its S3 store (moto on the bridge address),
/// for as long as it lives. Only this lab's bridge and address are matched.
struct S3Firewall(Vec<String>);

impl S3Firewall {
    fn up(lab: &Lab) -> S3Firewall {
        let rule: Vec<String> = [
            "INPUT",
            "-i",
            &lab.state.bridge,
            "-p",
            "tcp",
            "-d",
            &lab.s3_address().to_string(),
            "--dport",
            &lab::s3::PORT.to_string(),
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ok = Command::new("iptables")
            .arg("-I")
            .args(&rule)
            .status()
            .expect("iptables");
        assert!(ok.success(), "iptables -I {rule:?}");
        S3Firewall(rule)
    }
}

impl Drop for S3Firewall {
    fn drop(&mut self) {
        let _ = Command::new("iptables").arg("-D").args(&self.0).status();
    }
}

#[test]
fn two_runs_at_once_interrupted_and_killed_runs_and_a_metadata_server_stopped() {
    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    // A first run starts its first step (the new nodes join before n1 restarts,
    // docs/gentle-grow.md); a second one started now must refuse and change nothing.
    let mut first = Background::start(&lab, &["apply", "--yes"]);
    wait_for("the first run writes n2", Duration::from_secs(120), || {
        config_of(&lab, "n2").is_some()
    });
    let second = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&second, 1, "a second apply while one runs");
    let text = printed(&second);
    assert!(
        text.contains("lock") && text.contains("nothing was changed"),
        "{text}"
    );
    assert!(
        text.contains("restate-fleet by"),
        "names the holder: {text}"
    );

    // SIGINT the first run in the middle.
    first.signal("-INT");
    let out = first.finish(Duration::from_secs(120));
    eprintln!("interrupted run:\n{}", printed(&out));
    assert_ne!(
        out.status.code(),
        Some(0),
        "an interrupted run does not claim success"
    );
    assert_no_half_written_file(&lab);

    // A third run, SIGKILLed once it has begun a step (its journal says so). The interrupted
    // run's agent lets go of its lock when its last operation (a start or restart behind a
    // health wait) ends: start again until the run gets past the locks.
    // It has a rolling change to make whichever step the first run stopped after.
    set_inventory(
        &lab,
        &inventory_with_restart(&lab, "warn,restate=info,lab=info"),
    );
    let interrupted = newest_journal(&lab);
    let in_a_step = || {
        let journal = newest_journal(&lab);
        journal != interrupted
            && std::fs::read_to_string(&journal)
                .is_ok_and(|j| j.lines().last().is_some_and(|l| l.contains("step_started")))
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut third = loop {
        let mut run = Background::start(&lab, &["apply", "--yes"]);
        let started = Instant::now();
        while !in_a_step() && !run.ended() {
            if started.elapsed() > Duration::from_secs(150) {
                run.signal("-KILL");
                let out = run.finish(Duration::from_secs(10));
                panic!(
                    "the third run neither began a step nor ended:\n{}",
                    printed(&out)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if in_a_step() {
            break run;
        }
        let out = run.finish(Duration::from_secs(1));
        assert!(
            transient(&printed(&out)) && Instant::now() < deadline,
            "the third run ended before its first step:\n{}",
            printed(&out)
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    third.signal("-KILL");
    drop(third.finish(Duration::from_secs(10)));
    assert_no_half_written_file(&lab);

    // The killed run's journal ends on the step it was killed in; history says so.
    let killed = newest_journal(&lab);
    let last = std::fs::read_to_string(&killed).expect("the killed run's journal");
    let last: serde_json::Value =
        serde_json::from_str(last.lines().last().unwrap_or_default()).expect("a JSON line");
    assert_eq!(last["record"], "step_started", "{last}");
    assert!(last["step"].as_str().is_some(), "{last}");
    let killed_id = killed
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .expect("a run id");
    let history = fleet(&lab, &["history"]);
    assert_exit(&history, 0, "history");
    let listed = printed(&history);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&killed_id))
        .unwrap_or_else(|| panic!("the killed run is listed:\n{listed}"));
    assert!(line.contains("stopped (killed) at step"), "{listed}");
    assert!(
        listed.contains("interrupted"),
        "the SIGINTed run:\n{listed}"
    );

    let out = apply_after_nodes_answer(&lab, Duration::from_secs(90));
    assert_exit(&out, 0, "re-run after the interrupted and killed runs");
    let text = printed(&out);
    assert!(
        text.contains(&format!("the run {killed_id} of "))
            && text.contains("it was killed in this step"),
        "the re-run names the killed run first:\n{text}"
    );
    assert_cluster_of(&lab, "n3", &["n1", "n2", "n3"]);

    // n3 (a metadata server) stopped on its reachable host: restarting members for a config
    // change would leave 1 of 3, so apply starts n3 first (same node id), then rolls all three.
    let id = |out: &str| {
        out.lines()
            .find(|l| l.contains(" n3 "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|id| id.split(':').next())
            .map(str::to_string)
    };
    let before = id(&restatectl_until(&lab, "n1", &["status"], WAIT, |o| {
        o.contains(" n3 ")
    }));
    lab.host("n3").stop_restate().expect("stop n3");
    restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains("offline"));
    set_inventory(
        &lab,
        &inventory_with_restart(&lab, "warn,restate=info,lab=warn"),
    );
    let out = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&out, 0, "apply with a metadata server stopped");
    let text = printed(&out);
    let started = text
        .find("n3: start restate-server (stopped")
        .expect("n3 started first");
    let first_restart = text.find("n1: set log-filter, restart, wait").unwrap_or(0);
    assert!(
        started < first_restart,
        "n3 started before any restart:\n{text}"
    );
    assert!(
        text.contains("restate-server started (it was stopped)"),
        "{text}"
    );
    assert_cluster_of(&lab, "n1", &["n1", "n2", "n3"]);
    let after = id(&restatectl_until(&lab, "n1", &["status"], WAIT, |o| {
        o.contains(" n3 ")
    }));
    assert_eq!(after, before, "n3 kept its node id");
}

#[test]
fn sigint_during_a_member_restart_finishes_that_step_and_exits_130() {
    use std::io::{BufRead, BufReader};

    let lab = harness::lab(Spec::new(3).with(1, Kind::Existing));
    let binary = lab::paths::workspace_binary("restate-fleet").expect("restate-fleet is built");
    let mut child = std::process::Command::new(binary)
        .arg("-i")
        .arg(lab.inventory_path())
        .arg("--known-hosts")
        .arg(lab.known_hosts_path())
        .args(["apply", "--yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("restate-fleet runs");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // The moment n1's file is written and its restart begins: the least safe place to stop.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let line = seen
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("apply reached n1's restart");
        if line.contains("n1: writing restate.toml and restarting") {
            break;
        }
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    let output = child.wait_with_output().expect("restate-fleet ends");
    let text = format!("{}{}", stdout(&output), reader.join().expect("reader"));
    assert_eq!(output.status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted: finishing the step in progress"),
        "{text}"
    );
    // The new nodes joined first (step 1); n1's restart was step 2 of 3.
    assert!(text.contains("interrupted after 2 of 3"), "{text}");
    assert!(
        text.contains("re-run to finish: ") && text.contains("apply --yes"),
        "{text}"
    );
    // n1's step ran to its end: its new file is in place and it is healthy; the snapshot,
    // the step after it, did not begin.
    assert!(
        lab.host("n1")
            .health()
            .expect("n1 answers")
            .contains("\"Alive\""),
        "{text}"
    );
    for host in ["n2", "n3"] {
        assert!(config_of(&lab, host).is_some(), "{host} joined: {text}");
    }
    assert!(
        !text.contains("== cluster: snapshot every partition"),
        "{text}"
    );
    let again = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&again, 0, "re-run after the interruption");
    assert_cluster_of(&lab, "n2", &["n1", "n2", "n3"]);
}

//! The node lock: one run at a time may change a node.
//!
//! `flock(LOCK_EX | LOCK_NB)` on `.restate-fleet.lock` next to the config. The kernel drops the lock
//! when the holding process exits, however it exits, so a killed coordinator (SSH channel closed,
//! agent gone) never leaves a stale lock. The file's content says who holds it and what it is
//! working on; its mtime says when the holder last heard from its coordinator, which sends a
//! heartbeat every 2 s. A run whose coordinator fell silent (a cut link, a laptop asleep: sshd
//! does not notice a silent peer) leaves an agent that still holds the lock; the next run takes
//! the lock over from it once it is idle, instead of waiting for it to notice by itself.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use restate_fleet_proto::agent::{AgentError, ErrorKind, LockInfo};

use crate::{clock, files, host};

pub const LOCK_FILE: &str = ".restate-fleet.lock";

/// A holder whose coordinator stayed silent this long belongs to a run that is gone: four
/// heartbeats missed.
pub const SILENT_LIMIT: Duration = Duration::from_secs(8);
/// How long a new run waits for a gone run's agent to finish the operation it is in (a restart
/// and its health gate, or a rollback's two) before it gives up.
const FINISH_WAIT: Duration = Duration::from_secs(240);
/// How long a holder that is neither plainly alive nor gone is watched before the answer is
/// "locked": long enough to see a live coordinator's heartbeat or a silent one's limit pass.
const WATCH: Duration = Duration::from_secs(SILENT_LIMIT.as_secs() + 2);
const POLL: Duration = Duration::from_millis(200);

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct NodeLock {
    file: File,
    pub info: LockInfo,
    /// When the coordinator last spoke; kept as the file's mtime across record rewrites.
    heard: SystemTime,
}

impl NodeLock {
    /// The coordinator spoke (a request or a heartbeat).
    pub fn heard(&mut self) {
        self.heard = SystemTime::now();
        self.stamp();
    }

    /// Records the operation under way (`None`: idle), for a run that finds the node locked.
    pub fn working_on(&mut self, op: Option<&str>) {
        self.info.busy = op.map(str::to_string);
        // Best effort: a record that cannot be rewritten only makes a waiting run wait longer.
        let _ = write_record(&mut self.file, &self.info);
        self.stamp();
    }

    fn stamp(&self) {
        let at = self
            .heard
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: at.as_secs() as libc::time_t,
                tv_nsec: at.subsec_nanos() as libc::c_long,
            },
        ];
        // SAFETY: futimens on a descriptor we own with two valid timespecs.
        unsafe { libc::futimens(self.file.as_raw_fd(), times.as_ptr()) };
    }
}

pub fn lock_path(config: &Path) -> PathBuf {
    match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(LOCK_FILE),
        _ => PathBuf::from(LOCK_FILE),
    }
}

/// What a run that finds the node locked makes of the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its coordinator spoke while we watched: another run is changing this node.
    Live,
    /// Its coordinator is silent and it is idle: safe to end it and take the lock.
    Gone,
    /// Its coordinator is silent but it is in an operation: let it finish, then take over.
    Finishing,
    /// Not silent long enough to tell (or its record is being rewritten): keep watching.
    Watch,
}

/// `silent`: since the holder last heard from its coordinator; `spoke_while_watched`: that
/// moment moved while we watched.
pub fn judge(record: Option<&LockInfo>, silent: Duration, spoke_while_watched: bool) -> Verdict {
    match record {
        _ if spoke_while_watched => Verdict::Live,
        Some(info) if silent >= SILENT_LIMIT => match info.busy {
            Some(_) => Verdict::Finishing,
            None => Verdict::Gone,
        },
        _ => Verdict::Watch,
    }
}

/// The holder's heartbeat as a watcher sees it. A holder rewriting its record leaves the file's
/// mtime at "now" for a moment before it puts its heard time back, a moment a loaded machine can
/// stretch; a real heartbeat stays until the next one 2 s later. So only a time read twice in a
/// row counts, and the holder spoke when such a time differs from the first one.
#[derive(Debug, Default)]
struct Heartbeat {
    last: Option<SystemTime>,
    first_steady: Option<SystemTime>,
    steady: Option<SystemTime>,
}

impl Heartbeat {
    /// One read of the holder's heard time (`None`: unreadable); returns the latest steady one.
    fn observe(&mut self, sample: Option<SystemTime>) -> Option<SystemTime> {
        if sample.is_some() && sample == self.last {
            self.steady = sample;
            self.first_steady = self.first_steady.or(sample);
        }
        self.last = sample;
        self.steady
    }

    fn moved(&self) -> bool {
        self.steady != self.first_steady
    }
}

/// Takes the lock of the node whose config is `config`, taking it over from the agent of a run
/// that is gone, or says who holds it.
pub fn acquire(config: &Path, holder: Option<&str>) -> Result<NodeLock, AgentError> {
    let path = lock_path(config);
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| files::io_error("create the directory", dir, &e))?;
    }
    // No truncation before the lock is ours: the holder's record must survive for the message.
    // std opens with O_CLOEXEC, so a server started by the agent never inherits the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| files::io_error("open the lock file", &path, &e))?;
    let started = Instant::now();
    let mut heartbeat = Heartbeat::default();
    let mut took_over = None;
    while !try_flock(&file).map_err(|e| files::io_error("lock", &path, &e))? {
        let record = read_record(&mut file);
        let heard = heartbeat.observe(record.as_ref().and(heard_at(&file)));
        let silent = heard
            .and_then(|h| SystemTime::now().duration_since(h).ok())
            .unwrap_or_default();
        let verdict = judge(record.as_ref(), silent, heartbeat.moved());
        let waited = started.elapsed();
        match (verdict, &record) {
            (Verdict::Gone, Some(info)) if took_over.is_none() => {
                // The pid is the holder's: it wrote the record after taking the flock, and the
                // flock is still held, so that process still runs. SIGTERM ends an idle agent
                // at once and a busy one after its operation.
                // SAFETY: kill sends a signal; no memory is involved.
                unsafe { libc::kill(info.pid as libc::pid_t, libc::SIGTERM) };
                took_over = Some(format!(
                    "took the node lock over from pid {} ({}), whose run had not been heard from \
                     for {} s",
                    info.pid,
                    info.holder,
                    silent.as_secs()
                ));
            }
            (Verdict::Live, _) => return Err(held_by_other(record.as_ref(), &path, None)),
            (Verdict::Watch, _) if waited > WATCH => {
                return Err(held_by_other(record.as_ref(), &path, None));
            }
            (Verdict::Finishing | Verdict::Gone, _) if waited > FINISH_WAIT => {
                return Err(held_by_other(record.as_ref(), &path, Some(waited)));
            }
            _ => {}
        }
        thread::sleep(POLL);
    }
    let info = LockInfo {
        path: path.clone(),
        pid: std::process::id(),
        since: clock::rfc3339(SystemTime::now()),
        holder: holder
            .map(str::to_string)
            .unwrap_or_else(host::default_holder),
        busy: None,
        took_over,
    };
    write_record(&mut file, &info)
        .map_err(|e| files::io_error("write the lock file", &path, &e))?;
    let lock = NodeLock {
        file,
        info,
        heard: SystemTime::now(),
    };
    lock.stamp();
    Ok(lock)
}

/// `Ok(false)`: someone else holds it.
fn try_flock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => Ok(false),
        _ => Err(err),
    }
}

fn heard_at(file: &File) -> Option<SystemTime> {
    file.metadata().and_then(|m| m.modified()).ok()
}

fn write_record(file: &mut File, info: &LockInfo) -> io::Result<()> {
    let record = serde_json::to_string(info).unwrap_or_default();
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{record}\n").as_bytes())
}

/// `None` while unreadable, e.g. caught between the holder's truncate and write.
fn read_record(file: &mut File) -> Option<LockInfo> {
    let mut record = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut record).ok()?;
    serde_json::from_str::<LockInfo>(record.trim()).ok()
}

fn held_by_other(record: Option<&LockInfo>, path: &Path, waited: Option<Duration>) -> AgentError {
    let message = match (record, waited) {
        (Some(info), None) => format!("node is {info}"),
        (Some(info), Some(waited)) => format!(
            "node is {info}; its run is gone, but it did not finish within {} s",
            waited.as_secs()
        ),
        (None, _) => {
            "node is locked by another process (its lock record is unreadable)".to_string()
        }
    };
    AgentError::new(ErrorKind::Locked, message)
        .with_path(path)
        .with_hint(
            "another restate-fleet run is changing this node; wait for it to finish (the lock \
             goes away with that process; the lock of a run whose coordinator fell silent for \
             8 s, a killed laptop or a lost link, is taken over by the next run)",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(busy: Option<&str>) -> LockInfo {
        LockInfo {
            path: "/etc/restate/.restate-fleet.lock".into(),
            pid: 4242,
            since: "t".into(),
            holder: "alice@laptop".into(),
            busy: busy.map(str::to_string),
            took_over: None,
        }
    }

    #[test]
    fn verdicts() {
        let secs = Duration::from_secs;
        let idle = info(None);
        let busy = info(Some("apply"));
        let cases: [(Option<&LockInfo>, Duration, bool, Verdict); 8] = [
            // A heartbeat while we watched: alive, whatever else.
            (Some(&idle), secs(0), true, Verdict::Live),
            (Some(&busy), secs(30), true, Verdict::Live),
            (None, secs(30), true, Verdict::Live),
            // Silent for less than the limit: cannot tell yet.
            (Some(&idle), secs(3), false, Verdict::Watch),
            (Some(&busy), secs(7), false, Verdict::Watch),
            // Silent past the limit.
            (Some(&idle), SILENT_LIMIT, false, Verdict::Gone),
            (Some(&busy), secs(60), false, Verdict::Finishing),
            // A record caught mid-rewrite is read again.
            (None, secs(60), false, Verdict::Watch),
        ];
        for (record, silent, spoke, want) in cases {
            assert_eq!(
                judge(record, silent, spoke),
                want,
                "{record:?} {silent:?} {spoke}"
            );
        }
    }

    #[test]
    fn only_a_heard_time_read_twice_counts() {
        let at = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        // (sample, steady time after it, moved after it)
        let cases = [
            (at(100), None, false),
            // Caught mid-rewrite: the record's write time, then the heard time again.
            (at(150), None, false),
            (at(100), None, false),
            (at(100), at(100), false),
            (None, at(100), false),
            (at(151), at(100), false),
            (at(100), at(100), false),
            // A real heartbeat: read twice.
            (at(102), at(100), false),
            (at(102), at(102), true),
            (at(104), at(102), true),
        ];
        let mut heartbeat = Heartbeat::default();
        for (i, (sample, steady, moved)) in cases.into_iter().enumerate() {
            assert_eq!(heartbeat.observe(sample), steady, "read {i}");
            assert_eq!(heartbeat.moved(), moved, "read {i}");
        }
    }

    #[test]
    fn the_lock_of_a_run_gone_silent_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("rfa-takeover-{}", std::process::id()));
        let config = dir.join("restate.toml");
        std::fs::create_dir_all(&dir).unwrap();
        let path = lock_path(&config);
        // An idle holder (the shell becomes `sleep`, keeping the locked descriptor).
        let mut holder = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>>"$1"; flock -x 9; exec sleep 60"#)
            .arg("sh")
            .arg(&path)
            .spawn()
            .unwrap();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        while try_flock(&file).unwrap() {
            // Not yet taken by the child: let go and look again.
            // SAFETY: unlocking our own descriptor.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            thread::sleep(Duration::from_millis(20));
        }
        let record = LockInfo {
            pid: holder.id(),
            ..info(None)
        };
        write_record(&mut file, &record).unwrap();
        NodeLock {
            file,
            info: record,
            heard: SystemTime::now() - Duration::from_secs(20),
        }
        .stamp();

        let taken = acquire(&config, Some("bob@desk")).unwrap();
        let said = taken.info.took_over.clone().unwrap_or_default();
        assert!(
            said.contains(&format!("pid {}", holder.id()))
                && said.contains("alice@laptop")
                && said.contains("for 20 s"),
            "{said}"
        );
        let status = holder.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
        drop(taken);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn second_taker_is_told_who_holds_it_and_drop_releases() {
        let dir = std::env::temp_dir().join(format!("rfa-lock-{}", std::process::id()));
        let config = dir.join("etc/restate.toml");
        let mut first = acquire(&config, Some("alice@laptop")).unwrap();
        assert_eq!(first.info.pid, std::process::id());
        // A heartbeat lands while the second run watches: a live holder, refused without
        // waiting out the silent limit.
        let beat = thread::spawn({
            let path = lock_path(&config);
            move || {
                thread::sleep(Duration::from_millis(500));
                let file = File::open(path).unwrap();
                let later = NodeLock {
                    file,
                    info: info(None),
                    heard: SystemTime::now() + Duration::from_secs(1),
                };
                later.stamp();
            }
        });
        first.working_on(Some("apply"));
        let started = Instant::now();
        let err = acquire(&config, Some("bob@desk")).unwrap_err();
        beat.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, ErrorKind::Locked);
        assert!(
            err.message
                .contains(&format!("locked by pid {}", std::process::id()))
                && err.message.contains("alice@laptop")
                && err.message.contains("working on `apply`"),
            "{}",
            err.message
        );
        drop(first);
        let again = acquire(&config, Some("bob@desk")).unwrap();
        assert_eq!(again.info.holder, "bob@desk");
        assert_eq!(again.info.took_over, None);
        drop(again);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

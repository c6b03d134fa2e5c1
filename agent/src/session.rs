//! Turns request text into a response: protocol check, decoding, dispatch, node lock.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use restate_fleet_proto::agent::{
    AgentError, ErrorKind, LockInfo, Operation, PROTOCOL_VERSION, Reply, Request, Response,
};

use crate::digest::HashCache;
use crate::install::{self, Install};
use crate::lock::{self, NodeLock};
use crate::setup::{self, System};
use crate::{audit, collect, facts, host_checks, ops, retire, tls_files};

/// One run of the agent: a single request (one-shot) or many (serve). Locks taken with `lock`
/// live as long as the session, i.e. the process.
pub struct Session {
    serve: bool,
    locks: Held,
    /// The run and coordinator the session's lock names, for the host's audit log.
    asker: audit::Asker,
    pub audit_log: std::path::PathBuf,
}

/// The locks a session holds, shared with the thread that reads the coordinator's lines, which
/// notes every line (heartbeats included, also while an operation runs) on them.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Vec<NodeLock>>>);

impl Held {
    fn with<T>(&self, f: impl FnOnce(&mut Vec<NodeLock>) -> T) -> T {
        // A panic while holding it left plain data behind; keep using it.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The coordinator spoke.
    pub fn heard(&self) {
        self.with(|locks| locks.iter_mut().for_each(NodeLock::heard));
    }

    fn working_on(&self, op: Option<&str>) {
        self.with(|locks| locks.iter_mut().for_each(|l| l.working_on(op)));
    }

    fn position(&self, config: &Path) -> Option<LockInfo> {
        let path = lock::lock_path(config);
        self.with(|locks| {
            locks
                .iter()
                .find(|l| l.info.path == path)
                .map(|l| l.info.clone())
        })
    }
}

/// The config whose node an operation changes, for the audit log (`None`: it changes none).
fn changed_config(op: &Operation) -> Option<std::path::PathBuf> {
    match op {
        Operation::Apply { node, .. }
        | Operation::Service { node, .. }
        | Operation::Rollback { node }
        | Operation::Retire { node } => Some(node.config_path.clone()),
        _ => None,
    }
}

impl Session {
    pub fn new(serve: bool) -> Self {
        Self {
            serve,
            locks: Held::default(),
            asker: audit::Asker::default(),
            audit_log: audit::default_path(),
        }
    }

    /// For the line reader: see [`Held`].
    pub fn held(&self) -> Held {
        self.locks.clone()
    }

    /// Never panics and never fails: every problem is an `error` reply.
    pub fn handle(&mut self, text: &str) -> Response {
        let reply = match decode(text) {
            Ok(op) => {
                self.locks.working_on(Some(op.name()));
                let changes = changed_config(&op);
                if let Some(line) = audit::before(&op, &self.asker) {
                    audit::append(&self.audit_log, &line);
                }
                let reply = panic::catch_unwind(AssertUnwindSafe(|| self.dispatch(op)))
                    .unwrap_or_else(|_| {
                        Err(AgentError::new(
                            ErrorKind::Internal,
                            "the agent crashed handling this request (see its stderr)",
                        )
                        .with_hint("report this as a bug of restate-fleet-agent"))
                    });
                self.locks.working_on(None);
                if let (Ok(reply), Some(config)) = (&reply, &changes)
                    && let Some(line) = audit::line(reply, &self.asker, config)
                {
                    audit::append(&self.audit_log, &line);
                }
                reply
            }
            Err(e) => Err(e),
        };
        Response::new(reply.unwrap_or_else(Reply::Error))
    }

    fn dispatch(&mut self, op: Operation) -> Result<Reply, AgentError> {
        match op {
            Operation::Facts {
                node,
                restate_server,
            } => facts::gather(&node, restate_server.as_deref()).map(|f| Reply::Facts(Box::new(f))),
            Operation::Plan {
                config_path,
                patch,
                service_user,
                environment,
                server_binary,
            } => ops::plan(
                &config_path,
                &patch,
                service_user.as_deref(),
                environment.as_ref(),
                server_binary.as_deref(),
            )
            .map(Reply::Plan),
            Operation::Apply {
                node,
                patch,
                restart,
                environment,
            } => {
                let _guard = self.guard(&node.config_path)?;
                ops::apply(&node, &patch, restart, environment.as_ref())
                    .map(|r| Reply::Apply(Box::new(r)))
            }
            Operation::Service { node, action } => {
                let _guard = self.guard(&node.config_path)?;
                ops::service(&node, action).map(Reply::Service)
            }
            Operation::Rollback { node } => {
                let _guard = self.guard(&node.config_path)?;
                ops::rollback(&node).map(Reply::Rollback)
            }
            Operation::Lock {
                config_path,
                holder,
                run_id,
            } => {
                let info = self.lock(&config_path, holder.as_deref())?;
                self.asker = audit::Asker {
                    run: run_id,
                    holder,
                };
                Ok(Reply::Lock(info))
            }
            Operation::Unlock { config_path } => self.unlock(&config_path).map(Reply::Unlock),
            Operation::ServerBinaries { paths } => Ok(Reply::ServerBinaries(install::inspect(
                &paths,
                &HashCache::host(),
            ))),
            Operation::InstallServer {
                staged,
                sha256,
                target,
                version,
                dry_run,
            } => install::install(
                &Install {
                    staged: &staged,
                    sha256: &sha256,
                    target: &target,
                    version: &version,
                    dry_run,
                },
                &HashCache::host(),
            )
            .map(Reply::InstallServer),
            Operation::RollbackServer { target } => {
                install::rollback(&target).map(Reply::RollbackServer)
            }
            Operation::Retire { node } => {
                let _guard = self.guard(&node.config_path)?;
                retire::retire(&node, &System::host()).map(Reply::Retire)
            }
            Operation::Collect { node } => Ok(Reply::Collect(collect::collect(&node))),
            Operation::TlsFiles {
                in_place: Some(paths),
                service_user,
                files: None,
                ..
            } => tls_files::in_place(&paths, service_user.as_deref()).map(Reply::TlsFiles),
            Operation::TlsFiles {
                dir,
                service_user,
                files,
                dry_run,
                in_place: None,
            } => tls_files::tls_files(&dir, service_user.as_deref(), files.as_ref(), dry_run)
                .map(Reply::TlsFiles),
            Operation::TlsFiles { .. } => Err(AgentError::new(
                ErrorKind::BadRequest,
                "tls_files: files to write and files in place are one or the other",
            )),
            Operation::HostChecks { node, ports } => {
                Ok(Reply::HostChecks(host_checks::gather(&node, &ports)))
            }
            Operation::EnsureService(setup) => {
                let _guard = self.guard(&setup.config_path)?;
                setup::ensure(&setup, &System::host()).map(Reply::EnsureService)
            }
        }
    }

    /// The lock for one mutating operation, unless this session already holds it. Its record
    /// says busy for as long as it is held: nobody hears for it, and a busy holder is waited
    /// for, never taken over.
    fn guard(&self, config: &Path) -> Result<Option<NodeLock>, AgentError> {
        match self.locks.position(config) {
            Some(_) => Ok(None),
            None => {
                let mut lock = lock::acquire(config, None)?;
                lock.working_on(Some("one request"));
                Ok(Some(lock))
            }
        }
    }

    fn lock(&mut self, config: &Path, holder: Option<&str>) -> Result<LockInfo, AgentError> {
        if !self.serve {
            return Err(AgentError::new(
                ErrorKind::Unsupported,
                "`lock` only makes sense in a session: a one-shot agent exits (and drops the lock) \
                 right after answering",
            )
            .with_hint("run `restate-fleet-agent serve`; mutating operations lock by themselves"));
        }
        if let Some(info) = self.locks.position(config) {
            return Ok(info);
        }
        let mut lock = lock::acquire(config, holder)?;
        let info = lock.info.clone();
        // Only the answer says it was taken over; the record shows this session's state.
        lock.info.took_over = None;
        self.locks.with(|locks| locks.push(lock));
        Ok(info)
    }

    fn unlock(&mut self, config: &Path) -> Result<LockInfo, AgentError> {
        let path = lock::lock_path(config);
        self.locks
            .with(|locks| {
                let i = locks.iter().position(|l| l.info.path == path)?;
                Some(locks.remove(i).info)
            })
            .ok_or_else(|| {
                AgentError::new(
                    ErrorKind::Unsupported,
                    "this session does not hold the lock of that config",
                )
                .with_path(path)
            })
    }
}

fn bad_request(message: String) -> AgentError {
    AgentError::new(ErrorKind::BadRequest, message).with_hint(
        "the coordinator and the agent disagree on the request format; use matching versions",
    )
}

/// Checks the protocol version before the shape, so an agent of another version says so instead
/// of failing on a field it does not know.
fn decode(text: &str) -> Result<Operation, AgentError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        bad_request(format!(
            "request is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Some(object) = value.as_object() else {
        return Err(bad_request("request is not a JSON object".into()));
    };
    match object.get("protocol") {
        None => {
            return Err(AgentError::new(
                ErrorKind::ProtocolMismatch,
                format!("request has no `protocol`; this agent speaks protocol {PROTOCOL_VERSION}"),
            )
            .with_hint("send {\"protocol\": N, \"op\": ...}"));
        }
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {}
        Some(v) => {
            return Err(AgentError::new(
                ErrorKind::ProtocolMismatch,
                format!("request speaks protocol {v}, this agent speaks {PROTOCOL_VERSION}"),
            )
            .with_hint("upload the agent that ships with this restate-fleet (it does so by itself when the hash differs)"));
        }
    }
    serde_json::from_value::<Request>(value)
        .map(|r| r.op)
        .map_err(|e| bad_request(format!("invalid request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_kind(response: &Response) -> Option<ErrorKind> {
        match &response.reply {
            Reply::Error(e) => Some(e.kind),
            _ => None,
        }
    }

    #[test]
    fn protocol_mismatch_and_missing_protocol() {
        let mut s = Session::new(false);
        let r = s.handle(r#"{"protocol": 999, "op": "facts", "config_path": "/x"}"#);
        assert_eq!(error_kind(&r), Some(ErrorKind::ProtocolMismatch));
        assert_eq!(r.protocol, PROTOCOL_VERSION);
        let Reply::Error(e) = &r.reply else {
            unreachable!()
        };
        assert!(e.message.contains("999") && e.message.contains(&PROTOCOL_VERSION.to_string()));
        // Even an op this agent does not know: the version is what matters first.
        let r = s.handle(r#"{"protocol": 3, "op": "teleport"}"#);
        assert_eq!(error_kind(&r), Some(ErrorKind::ProtocolMismatch));
        let r = s.handle(r#"{"op": "facts", "config_path": "/x"}"#);
        assert_eq!(error_kind(&r), Some(ErrorKind::ProtocolMismatch));
    }

    #[test]
    fn garbage_never_panics_and_is_a_bad_request() {
        let mut s = Session::new(true);
        let inputs = [
            "",
            " ",
            "null",
            "[]",
            "42",
            "\"protocol\"",
            "{",
            "{\"protocol\":2}",
            "{\"protocol\":2,\"op\":\"nope\"}",
            "{\"protocol\":2,\"op\":\"plan\"}",
            "{\"protocol\":2,\"op\":\"plan\",\"config_path\":7,\"patch\":[]}",
            "{\"protocol\":2,\"op\":\"plan\",\"config_path\":\"/x\",\"patch\":[{\"op\":\"set\",\"path\":[\"a\"]}]}",
            "{\"protocol\":2,\"op\":\"plan\",\"config_path\":\"/x\",\"patch\":[{\"op\":\"set\",\"path\":[\"a\"],\"value\":null}]}",
            "{\"protocol\":2,\"op\":\"service\",\"config_path\":\"/x\",\"action\":\"explode\"}",
            "{\"protocol\":2,\"op\":\"apply\",\"config_path\":\"/x\",\"patch\":[],\"service\":{\"manager\":\"upstart\"}}",
            "{\"protocol\":2.5,\"op\":\"facts\"}",
            "{\"protocol\":-1}",
            "{\"protocol\":28446744073709551617}",
        ];
        for input in inputs {
            let r = s.handle(input);
            let kind = error_kind(&r);
            assert!(
                matches!(
                    kind,
                    Some(ErrorKind::BadRequest | ErrorKind::ProtocolMismatch)
                ),
                "{input:?} -> {r:?}"
            );
        }
        // Every prefix and a byte-flipped copy of a valid request.
        let valid = r#"{"protocol":2,"op":"plan","config_path":"/nonexistent/r.toml","patch":[{"op":"set","path":["worker","snapshots","destination"],"value":"s3://b"},{"op":"remove","path":["x"],"secret":true}]}"#;
        for end in 0..valid.len() {
            let _ = s.handle(&valid[..end]);
        }
        for i in 0..valid.len() {
            let mut bytes = valid.as_bytes().to_vec();
            bytes[i] = bytes[i].wrapping_add(1);
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = s.handle(&text);
            }
        }
        let r = s.handle(valid);
        assert!(matches!(r.reply, Reply::Plan(ref p) if p.changed), "{r:?}");
    }

    #[test]
    fn lock_is_refused_in_one_shot_mode() {
        let mut s = Session::new(false);
        let r = s.handle(r#"{"protocol":2,"op":"lock","config_path":"/tmp/x/restate.toml"}"#);
        assert_eq!(error_kind(&r), Some(ErrorKind::Unsupported));
    }

    #[test]
    fn a_session_holding_the_lock_can_apply_and_others_cannot() {
        let dir = std::env::temp_dir().join(format!("rfa-session-{}", std::process::id()));
        let config = dir.join("restate.toml");
        let config_json = serde_json::to_string(&config).unwrap();
        let mut holder = Session::new(true);
        holder.audit_log = dir.join("audit.log");
        let r = holder.handle(&format!(
            r#"{{"protocol":2,"op":"lock","config_path":{config_json},"holder":"alice@laptop","run_id":"run-7"}}"#
        ));
        assert!(matches!(r.reply, Reply::Lock(_)), "{r:?}");
        // Its coordinator's heartbeats, as the line reader notes them.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let beats = std::thread::spawn({
            let (held, done) = (holder.held(), done.clone());
            move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    held.heard();
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            }
        });
        let apply = format!(
            r#"{{"protocol":2,"op":"apply","config_path":{config_json},"patch":[{{"op":"set","path":["a"],"value":1}}]}}"#
        );
        let r = holder.handle(&apply);
        assert!(
            matches!(r.reply, Reply::Apply(ref a) if a.preview.changed),
            "{r:?}"
        );

        // The host's audit log has the change, with the run and who ran it.
        let audit = std::fs::read_to_string(dir.join("audit.log")).unwrap();
        let lines: Vec<serde_json::Value> = audit
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{audit}");
        assert_eq!(
            (&lines[0]["run"], &lines[0]["by"], &lines[0]["keys"]),
            (
                &serde_json::json!("run-7"),
                &serde_json::json!("alice@laptop"),
                &serde_json::json!(["a"])
            ),
            "{audit}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("audit.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut other = Session::new(false);
        other.audit_log = dir.join("audit.log");
        let r = other.handle(&apply);
        let Reply::Error(e) = &r.reply else {
            panic!("{r:?}")
        };
        assert_eq!(e.kind, ErrorKind::Locked);
        assert!(e.message.contains("alice@laptop"));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        beats.join().unwrap();

        let r = holder.handle(&format!(
            r#"{{"protocol":2,"op":"unlock","config_path":{config_json}}}"#
        ));
        assert!(matches!(r.reply, Reply::Unlock(_)), "{r:?}");
        let r = other.handle(&apply);
        assert!(
            matches!(r.reply, Reply::Apply(ref a) if !a.preview.changed),
            "{r:?}"
        );
        let audit = std::fs::read_to_string(dir.join("audit.log")).unwrap();
        assert_eq!(
            audit.lines().count(),
            1,
            "nothing changed, nothing logged: {audit}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

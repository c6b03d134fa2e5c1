//! The agent against a real restate-server 1.7.12 on loopback, driven through the `command`
//! service manager (a start/stop/restart/status script, as on the lab hosts).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use restate_fleet_proto::agent::{Reply, RunState};
use serde_json::{Value, json};

use crate::harness::{ServerGuard, TempDir, agent, free_port, request, restate_server};

const SCRIPT: &str = r#"#!/bin/sh
# start|stop|restart|status for one restate-server; exit 0 from status = running.
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
PIDFILE="$DIR/server.pid"
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
start() {
    running && return 0
    cd "$DIR" || exit 1
    "$RESTATE_SERVER" --config-file "$DIR/restate.toml" >>"$DIR/server.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
}
stop() {
    if running; then
        pid=$(cat "$PIDFILE")
        kill "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$PIDFILE"
}
case "$1" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) running ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
"#;

// Fields drop in order: the server stops before its directory goes.
struct Node {
    _server: ServerGuard,
    dir: TempDir,
    fabric: u16,
}

impl Node {
    fn new() -> Node {
        let dir = TempDir::new("server");
        let fabric = free_port();
        let config = format!(
            r#"# Test node of the agent's integration tests.
cluster-name = "agent-it"
node-name = "n1"
base-dir = "./data"       # relative: the script runs the server in its own directory

bind-address = "127.0.0.1:{fabric}"
advertised-address = "http://127.0.0.1:{fabric}/"
rocksdb-total-memory-size = "512 MiB"
disable-telemetry = true
roles = ["worker", "admin", "metadata-server", "log-server", "http-ingress"]

[admin]
bind-address = "127.0.0.1:{admin}"

[ingress]
bind-address = "127.0.0.1:{ingress}"
"#,
            admin = free_port(),
            ingress = free_port(),
        );
        fs::write(dir.path().join("restate.toml"), config).unwrap();
        let script = SCRIPT.replace(
            "\"$RESTATE_SERVER\"",
            &format!("'{}'", restate_server().display()),
        );
        let script_path = dir.path().join("service.sh");
        fs::write(&script_path, script).unwrap();
        fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)).unwrap();
        let pidfile = dir.path().join("server.pid");
        Node {
            _server: ServerGuard { pidfile },
            dir,
            fabric,
        }
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("restate.toml")
    }

    /// Fields every node request carries.
    fn target(&self, health_timeout_ms: u64) -> Value {
        let script = self.dir.path().join("service.sh").display().to_string();
        let argv = |action: &str| json!([script, action]);
        json!({
            "config_path": self.config(),
            "working_dir": self.dir.path(),
            "service": {
                "manager": "command",
                "start": argv("start"),
                "stop": argv("stop"),
                "restart": argv("restart"),
                "status": argv("status"),
            },
            "health_timeout_ms": health_timeout_ms,
            "service_timeout_ms": 30000,
        })
    }

    fn with(&self, health_timeout_ms: u64, extra: Value) -> Value {
        let mut fields = self.target(health_timeout_ms);
        if let (Some(map), Value::Object(extra)) = (fields.as_object_mut(), extra) {
            map.extend(extra);
        }
        fields
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

fn health_roles(fabric: u16) -> Vec<String> {
    let (response, _) = agent(&request(
        "facts",
        json!({"config_path": "/nonexistent/restate.toml",
               "advertised_address": format!("http://127.0.0.1:{fabric}/")}),
    ));
    let Reply::Facts(facts) = response.reply else {
        panic!("{response:?}")
    };
    let health = facts.health.expect("node answers /health");
    assert!(health.is_alive(), "{health:?}");
    let mut roles = health.roles;
    roles.sort();
    roles
}

/// The file's bytes, as text for readable assertion failures (a lossy conversion would hide
/// nothing here: the test's files are ASCII).
fn read(path: &Path) -> String {
    String::from_utf8(fs::read(path).unwrap()).unwrap()
}

#[test]
fn start_change_restart_roll_back_on_failure_and_explicit_rollback() {
    let node = Node::new();
    let original = read(&node.config());

    // Start: a new node gets "start", and the agent waits for Alive.
    let (response, code) = agent(&request(
        "service",
        node.with(60_000, json!({"action": "start"})),
    ));
    let Reply::Service(started) = &response.reply else {
        panic!("{response:?}\n{}", node.log())
    };
    assert_eq!(code, 0);
    assert!(started.healthy(), "{started:?}\n{}", node.log());

    // Facts of the running node.
    let (response, _) = agent(&request(
        "facts",
        node.with(60_000, json!({"restate_server": restate_server()})),
    ));
    let Reply::Facts(facts) = response.reply else {
        panic!("{response:?}")
    };
    assert_eq!(
        facts
            .restate_server
            .as_ref()
            .and_then(|s| s.version.as_deref()),
        Some("1.7.12")
    );
    assert!(facts.config.exists && facts.config.parse_error.is_none());
    assert_eq!(
        facts.config.values.cluster_name.as_deref(),
        Some("agent-it")
    );
    assert_eq!(facts.config.values.base_dir.as_deref(), Some("./data"));
    let data = facts.data_dir.expect("data dir facts");
    assert!(data.exists, "{data:?}");
    assert_eq!(data.path, node.dir.path().join("./data").join("n1"));
    assert_eq!(data.cluster_name.as_deref(), Some("agent-it"));
    assert_eq!(data.server_version.as_deref(), Some("1.7.12"));
    assert_eq!(facts.service.map(|s| s.state), Some(RunState::Running));
    let health = facts.health.expect("health");
    assert!(health.is_alive());
    assert_eq!(health.cluster_name.as_deref(), Some("agent-it"));
    assert_eq!(health.roles.len(), 5);

    // Change a key, restart, and see the node healthy with the new setting.
    let drop_ingress = json!([{"op": "set", "path": ["roles"],
        "value": ["worker", "admin", "metadata-server", "log-server"]}]);
    let (response, code) = agent(&request(
        "apply",
        node.with(60_000, json!({"patch": drop_ingress, "restart": true})),
    ));
    let Reply::Apply(applied) = &response.reply else {
        panic!("{response:?}")
    };
    assert_eq!(code, 0);
    assert!(
        applied.preview.changed && applied.succeeded(),
        "{applied:?}\n{}",
        node.log()
    );
    assert!(
        applied
            .preview
            .diff
            .contains("+roles = [\"worker\", \"admin\", \"metadata-server\", \"log-server\"]")
    );
    let restart = applied.restart.as_ref().unwrap().health.as_ref().unwrap();
    assert!(restart.healthy && restart.waited_ms < 60_000);
    assert_eq!(
        health_roles(node.fabric),
        vec!["admin", "log-server", "metadata-server", "worker"]
    );
    let good = read(&node.config());
    assert_eq!(
        good,
        original.replace(
            r#"roles = ["worker", "admin", "metadata-server", "log-server", "http-ingress"]"#,
            r#"roles = ["worker", "admin", "metadata-server", "log-server"]"#
        )
    );

    // Same patch again: nothing changes, nothing restarts.
    let (response, _) = agent(&request(
        "apply",
        node.with(60_000, json!({"patch": drop_ingress, "restart": true})),
    ));
    let Reply::Apply(again) = &response.reply else {
        panic!("{response:?}")
    };
    assert!(!again.preview.changed && again.restart.is_none() && again.backup.is_none());

    // A config restate-server refuses to start with: the agent puts the old file back.
    let bad = json!([{"op": "set", "path": ["worker", "snapshots", "destination"],
        "value": "file:///tmp/x"}]);
    let (response, code) = agent(&request(
        "apply",
        node.with(8_000, json!({"patch": bad, "restart": true})),
    ));
    let Reply::Apply(failed) = &response.reply else {
        panic!("{response:?}")
    };
    assert_eq!(code, 0, "the answer is a report, not an error");
    assert!(!failed.succeeded());
    assert!(!failed.restart.as_ref().unwrap().healthy());
    let rollback = failed.rollback.as_ref().expect("rolled back");
    assert!(
        rollback
            .reason
            .as_deref()
            .unwrap()
            .contains("did not report Alive")
    );
    assert!(rollback.restart.healthy(), "{rollback:?}\n{}", node.log());
    assert!(
        failed.backup.is_none(),
        "the backup equal to the restored file is dropped"
    );
    assert_eq!(
        read(&node.config()),
        good,
        "the previous file, byte for byte"
    );
    assert!(
        node.log().contains("Unsupported protocol: file:///tmp/x"),
        "restate-server rejected the file:// destination"
    );
    assert_eq!(
        health_roles(node.fabric),
        vec!["admin", "log-server", "metadata-server", "worker"]
    );

    // Explicit rollback: back to the file before the roles change.
    let (response, _) = agent(&request("rollback", node.target(60_000)));
    let Reply::Rollback(rolled) = &response.reply else {
        panic!("{response:?}")
    };
    assert!(rolled.restart.healthy(), "{rolled:?}\n{}", node.log());
    assert_eq!(read(&node.config()), original);
    assert_eq!(health_roles(node.fabric).len(), 5);

    // Stop.
    let (response, _) = agent(&request(
        "service",
        node.with(60_000, json!({"action": "stop"})),
    ));
    assert!(
        matches!(response.reply, Reply::Service(ref s) if s.health.is_none()),
        "{response:?}"
    );
    let (response, _) = agent(&request("facts", node.target(60_000)));
    let Reply::Facts(facts) = response.reply else {
        panic!("{response:?}")
    };
    assert_eq!(facts.service.map(|s| s.state), Some(RunState::Stopped));
    assert!(facts.health.is_none() && facts.health_error.is_some());
}

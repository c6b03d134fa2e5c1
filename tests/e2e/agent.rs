//! The agent on a real node, driven over plain OpenSSH as the coordinator drives it: a change is
//! applied in place and the node restarts healthy with it; a change Restate refuses at start is
//! rolled back to the exact old file and the node is healthy again.

use std::time::Duration;

use lab::{Kind, Lab, Spec};
use restate_fleet_proto::agent::{
    ApplyReport, NodeTarget, Operation, PatchOp, Reply, Request, Response, ServiceManager,
};

use crate::harness::{self, restatectl_until, ssh, ssh_with_input};

const AGENT: &str = "/var/lib/restate-fleet/restate-fleet-agent";
const CONFIG: &str = "/etc/restate/restate.toml";
const WAIT: Duration = Duration::from_secs(30);
/// moto takes any secret; this one must never show in a diff.
const SECRET: &str = "lab-secret-8f3a91";

fn push_agent(lab: &Lab, host: &str) {
    let binary = lab::paths::workspace_binary("restate-fleet-agent").expect("agent built");
    let bytes = std::fs::read(binary).expect("read agent");
    let pushed = ssh_with_input(
        lab,
        host,
        &format!("mkdir -p -m 0700 /var/lib/restate-fleet && cat > {AGENT} && chmod 0700 {AGENT}"),
        &bytes,
    );
    assert!(pushed.status.success(), "push agent: {pushed:?}");
}

fn node(lab: &Lab, host: &str) -> NodeTarget {
    let service = |action: &str| vec![lab::host::SERVICE_SCRIPT.to_string(), action.to_string()];
    let mut node = NodeTarget::new(CONFIG);
    node.service = Some(ServiceManager::Command {
        start: service("start"),
        stop: service("stop"),
        restart: service("restart"),
        status: service("status"),
    });
    node.advertised_address = Some(lab.host(host).advertised_address());
    node.working_dir = Some("/var/lib/restate".into());
    node.health_timeout_ms = 20_000;
    node
}

fn apply(lab: &Lab, host: &str, patch: Vec<PatchOp>) -> ApplyReport {
    let request = Request::new(Operation::Apply {
        node: node(lab, host),
        patch,
        restart: true,
        environment: None,
    });
    let json = serde_json::to_vec(&request).expect("request encodes");
    let answer = ssh_with_input(lab, host, AGENT, &json);
    let response: Response = serde_json::from_slice(&answer.stdout)
        .unwrap_or_else(|e| panic!("agent answer is not a response ({e}): {answer:?}"));
    match response.into_result() {
        Ok(Reply::Apply(report)) => *report,
        other => panic!("apply answered {other:?}"),
    }
}

fn snapshot_repository(lab: &Lab) -> Vec<PatchOp> {
    let endpoint = format!("http://{}:{}", lab.s3_address(), lab::s3::PORT);
    let destination = format!("s3://{}/{}", lab::s3::BUCKET, lab.cluster_name());
    let key = |k: &'static str| ["worker", "snapshots", k];
    vec![
        PatchOp::set(&key("destination"), destination),
        PatchOp::set(&key("aws-region"), "us-east-1"),
        PatchOp::set(&key("aws-endpoint-url"), endpoint),
        PatchOp::set(&key("aws-allow-http"), true),
        PatchOp::set(&key("aws-access-key-id"), "test"),
        PatchOp::set(&key("aws-secret-access-key"), SECRET).secret(),
    ]
}

#[test]
fn change_restarts_healthy_and_a_bad_change_rolls_back() {
    let lab = harness::lab(Spec::new(1).with(1, Kind::Existing));
    let n1 = lab.host("n1");
    push_agent(&lab, "n1");
    let before_pid = n1.restate_pid().expect("n1 runs");

    let report = apply(&lab, "n1", snapshot_repository(&lab));
    assert!(report.preview.changed && report.succeeded(), "{report:?}");
    let diff = &report.preview.diff;
    assert!(
        diff.contains("+aws-secret-access-key = \"<redacted>\""),
        "{diff}"
    );
    assert!(
        !diff.contains(SECRET),
        "the secret shows in the diff: {diff}"
    );
    let after_pid = n1.restate_pid().expect("n1 runs after the change");
    assert_ne!(before_pid, after_pid, "the node was restarted");
    assert!(n1.health().expect("health").contains("\"Alive\""));

    // The operator's comments survived, and the node runs with the new setting: restatectl can now
    // snapshot a partition into the lab's S3 store.
    let file = std::fs::read_to_string(n1.path(CONFIG).expect("path")).expect("read config");
    assert!(
        file.contains("# Keep these comments: restate-fleet must not lose them."),
        "{file}"
    );
    assert!(
        file.contains("# never change this once the node has data"),
        "{file}"
    );
    // Right after a start no node may lead the partition yet; restatectl exits 0 even when a
    // partition fails, so its output is what tells.
    restatectl_until(
        &lab,
        "n1",
        &["snapshots", "create", "--trim-log", "0"],
        WAIT,
        |out| !out.contains("ERROR"),
    );
    let objects = lab::s3::list(lab.s3_address(), lab.cluster_name()).expect("list S3");
    assert!(!objects.is_empty(), "a snapshot landed in S3");

    // A destination Restate refuses at start: the agent restores the exact old file.
    let good = std::fs::read(n1.path(CONFIG).expect("path")).expect("read config");
    let report = apply(
        &lab,
        "n1",
        vec![PatchOp::set(
            &["worker", "snapshots", "destination"],
            "file:///tmp/x",
        )],
    );
    assert!(!report.succeeded(), "{report:?}");
    let rollback = report.rollback.expect("rolled back");
    assert!(rollback.restart.healthy(), "{rollback:?}");
    let restored = std::fs::read(n1.path(CONFIG).expect("path")).expect("read config");
    assert_eq!(restored, good, "the old file, byte for byte");
    assert!(n1.health().expect("health").contains("\"Alive\""));
    restatectl_until(&lab, "n1", &["status"], WAIT, |out| out.contains(" n1 "));

    // Nothing left for a second look: the agent is what the coordinator pushes, nothing else.
    assert!(
        ssh(&lab, "n1", &format!("test -x {AGENT}"))
            .status
            .success()
    );
}

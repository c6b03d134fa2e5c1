//! The logs (bifrost) metadata from `ListLogs`: each log's segment chain, which loglet kind its tail
//! segment uses, and whether an old `local` segment is still in a chain.

use std::collections::BTreeMap;

use restate_fleet_proto::admin::restate::cluster_ctrl::ListLogsRequest;
use serde::{Deserialize, Serialize};

use super::envelope::decode_flexbuffers;
use super::{AdminClient, AdminError};

pub const KIND_REPLICATED: &str = "replicated";
pub const KIND_LOCAL: &str = "local";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logs {
    pub version: u32,
    /// The provider new segments get, e.g. `replicated`; None when the document does not say.
    pub default_provider: Option<ProviderConfig>,
    /// Keyed by log id, which is the partition id.
    pub logs: BTreeMap<u32, LogChain>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderConfig {
    pub kind: String,
    /// Rendered as the server does, e.g. `{node: 2}`.
    pub replication: Option<String>,
    pub nodeset_size: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogChain {
    /// Oldest first; the last one is the tail that takes new records.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub base_lsn: u64,
    pub index: u32,
    /// `replicated`, `local`, `in-memory`, or whatever a newer server reports.
    pub kind: String,
    /// Replicated segments only, rendered like `{node: 1}`.
    pub replication: Option<String>,
    /// Replicated segments only: plain node ids.
    pub nodeset: Vec<u32>,
    /// Replicated segments only, e.g. `N1:2`.
    pub sequencer: Option<String>,
}

impl LogChain {
    pub fn tail(&self) -> Option<&Segment> {
        self.segments.last()
    }

    /// The plain node id of the tail's sequencer (`N1:2` is node 1, generation 2).
    pub fn tail_sequencer(&self) -> Option<u32> {
        let sequencer = self.tail()?.sequencer.as_deref()?;
        let id = sequencer.strip_prefix('N')?;
        id.split(':').next()?.parse().ok()
    }

    pub fn has_segment_of_kind(&self, kind: &str) -> bool {
        self.segments.iter().any(|segment| segment.kind == kind)
    }
}

impl Logs {
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawLogs = decode_flexbuffers(bytes)?;
        let logs = raw
            .logs
            .into_iter()
            .map(|(id, chain)| {
                let segments = chain
                    .chain
                    .into_iter()
                    .map(|(base_lsn, segment)| Segment::from_raw(id, base_lsn, segment))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok((id, LogChain { segments }))
            })
            .collect::<Result<_, String>>()?;
        Ok(Logs {
            version: raw.version,
            default_provider: raw
                .config
                .and_then(|config| ProviderConfig::from_raw(&config.default_provider)),
            logs,
        })
    }

    /// True once every log's tail segment is of `kind` (and there is at least one log).
    pub fn all_tails_are(&self, kind: &str) -> bool {
        !self.logs.is_empty()
            && self
                .logs
                .values()
                .all(|chain| chain.tail().is_some_and(|tail| tail.kind == kind))
    }

    /// Log ids whose chain still holds a segment of `kind`, e.g. the `local` segments that a
    /// snapshot with trim must remove before other nodes may join.
    pub fn logs_holding(&self, kind: &str) -> Vec<u32> {
        self.logs
            .iter()
            .filter(|(_, chain)| chain.has_segment_of_kind(kind))
            .map(|(id, _)| *id)
            .collect()
    }
}

impl Logs {
    /// Log ids with a segment whose nodeset names `node` (plain id): what a snapshot with trim
    /// must still remove before the node may leave.
    pub fn logs_with_node(&self, node: u32) -> Vec<u32> {
        self.logs
            .iter()
            .filter(|(_, chain)| chain.segments.iter().any(|s| s.nodeset.contains(&node)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Log ids whose tail segment's nodeset names `node`: still written to it.
    pub fn tails_with_node(&self, node: u32) -> Vec<u32> {
        self.logs
            .iter()
            .filter(|(_, chain)| chain.tail().is_some_and(|t| t.nodeset.contains(&node)))
            .map(|(id, _)| *id)
            .collect()
    }
}

impl AdminClient {
    pub async fn logs(&self) -> Result<Logs, AdminError> {
        let answer = self
            .call(
                "ListLogs",
                self.cluster_ctrl()
                    .list_logs(self.request(ListLogsRequest {})),
            )
            .await?;
        Logs::decode(&answer.logs).map_err(|reason| self.decode_error("the logs metadata", reason))
    }
}

#[derive(Deserialize)]
struct RawLogs {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    config: Option<RawLogsConfig>,
    logs: Vec<(u32, RawChain)>,
}

#[derive(Deserialize)]
struct RawLogsConfig {
    /// `{"replicated": {...}}`, or a bare provider name.
    default_provider: serde_json::Value,
}

#[derive(Deserialize)]
struct RawChain {
    chain: Vec<(u64, RawSegment)>,
}

#[derive(Deserialize)]
struct RawSegment {
    index: u32,
    kind: String,
    /// JSON text; only replicated segments say something useful in it.
    #[serde(default)]
    params: String,
}

#[derive(Deserialize)]
struct ReplicatedParams {
    #[serde(default)]
    replication: Option<serde_json::Value>,
    #[serde(default)]
    nodeset: Vec<u32>,
    #[serde(default)]
    sequencer: Option<String>,
}

impl Segment {
    fn from_raw(log_id: u32, base_lsn: u64, raw: RawSegment) -> Result<Self, String> {
        let params = if raw.kind == KIND_REPLICATED {
            serde_json::from_str::<ReplicatedParams>(&raw.params).map_err(|err| {
                format!(
                    "log {log_id}: replicated segment {} has params {:?}: {err}",
                    raw.index, raw.params
                )
            })?
        } else {
            ReplicatedParams {
                replication: None,
                nodeset: Vec::new(),
                sequencer: None,
            }
        };
        Ok(Segment {
            base_lsn,
            index: raw.index,
            kind: raw.kind,
            replication: params.replication.as_ref().map(render_replication),
            nodeset: params.nodeset,
            sequencer: params.sequencer,
        })
    }
}

impl ProviderConfig {
    fn from_raw(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::String(kind) => Some(ProviderConfig {
                kind: kind.clone(),
                replication: None,
                nodeset_size: None,
            }),
            serde_json::Value::Object(map) => {
                let (kind, params) = map.iter().next()?;
                Some(ProviderConfig {
                    kind: kind.clone(),
                    replication: params
                        .get("replication_property")
                        .and_then(|r| r.as_str())
                        .map(str::to_owned),
                    nodeset_size: params
                        .get("target_nodeset_size")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok()),
                })
            }
            _ => None,
        }
    }
}

/// `{"node": 2}` -> `{node: 2}`, scopes from the widest, as the server and restatectl print them.
fn render_replication(value: &serde_json::Value) -> String {
    const SCOPES: [&str; 3] = ["region", "zone", "node"];
    match value.as_object() {
        Some(map) => {
            let parts: Vec<String> = SCOPES
                .iter()
                .filter_map(|scope| map.get(*scope).map(|n| format!("{scope}: {n}")))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from restate-server 1.7.12: one node provisioned with the replicated loglet.
    const SINGLE_REPLICATED: &[u8] = include_bytes!("testdata/logs-single-replicated.bin");
    /// Recorded from a node started with `[bifrost] default-provider = "local"`.
    const SINGLE_LOCAL: &[u8] = include_bytes!("testdata/logs-single-local.bin");
    /// The same node a few seconds after `config set --log-provider replicated --log-replication 1`.
    const LOCAL_THEN_REPLICATED: &[u8] =
        include_bytes!("testdata/logs-single-local-then-replicated.bin");

    #[test]
    fn decodes_recorded_replicated_logs() {
        let logs = Logs::decode(SINGLE_REPLICATED).unwrap();
        assert_eq!(logs.logs.len(), 24);
        assert_eq!(
            logs.default_provider,
            Some(ProviderConfig {
                kind: "replicated".into(),
                replication: Some("{node: 1}".into()),
                nodeset_size: Some(0),
            })
        );
        let tail = logs.logs[&6].tail().unwrap();
        assert_eq!(tail.kind, KIND_REPLICATED);
        assert_eq!(tail.base_lsn, 1);
        assert_eq!(tail.replication.as_deref(), Some("{node: 1}"));
        assert_eq!(tail.nodeset, vec![1]);
        assert_eq!(tail.sequencer.as_deref(), Some("N1:2"));
        assert_eq!(logs.logs[&0].tail_sequencer(), Some(1));
        assert!(logs.all_tails_are(KIND_REPLICATED));
        assert!(logs.logs_holding(KIND_LOCAL).is_empty());
        assert_eq!(
            logs.logs.keys().copied().collect::<Vec<_>>(),
            (0..24).collect::<Vec<_>>()
        );
    }

    #[test]
    fn decodes_recorded_local_logs() {
        let logs = Logs::decode(SINGLE_LOCAL).unwrap();
        assert_eq!(logs.logs.len(), 24);
        assert_eq!(
            logs.default_provider.as_ref().map(|p| p.kind.as_str()),
            Some(KIND_LOCAL)
        );
        assert!(logs.all_tails_are(KIND_LOCAL));
        assert!(!logs.all_tails_are(KIND_REPLICATED));
        assert_eq!(logs.logs_holding(KIND_LOCAL).len(), 24);
        let tail = logs.logs[&8].tail().unwrap();
        assert_eq!((tail.replication.as_ref(), tail.nodeset.len()), (None, 0));
    }

    #[test]
    fn a_moved_log_keeps_its_local_segment_until_trimmed() {
        let logs = Logs::decode(LOCAL_THEN_REPLICATED).unwrap();
        assert!(logs.all_tails_are(KIND_REPLICATED));
        assert_eq!(logs.logs_holding(KIND_LOCAL).len(), 24);
        let chain = &logs.logs[&8];
        let kinds: Vec<&str> = chain.segments.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, [KIND_LOCAL, KIND_REPLICATED]);
        assert_eq!(chain.segments[1].base_lsn, 3);
        assert_eq!(chain.segments[1].index, 1);
        assert_eq!(chain.segments[1].nodeset, vec![1]);
    }

    #[test]
    fn renders_replication_like_the_server() {
        let value = serde_json::json!({"node": 2, "zone": 1});
        assert_eq!(render_replication(&value), "{zone: 1, node: 2}");
    }

    #[test]
    fn a_truncated_recording_is_an_error_not_a_panic() {
        for cut in [0, 3, 5, 100, SINGLE_REPLICATED.len() - 1] {
            assert!(
                Logs::decode(&SINGLE_REPLICATED[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}

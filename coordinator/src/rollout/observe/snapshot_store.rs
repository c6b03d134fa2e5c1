//! Whether the workers reach the snapshot repository's endpoint (`[cluster.snapshots]
//! aws-endpoint-url`): each host opens a TCP connection to it through its SSH session, as its own
//! network sees it.

use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::reach::Reached;

/// How long a host gets to open a TCP connection to the endpoint.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one host saw of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub host: String,
    pub endpoint: String,
    /// Why the host could not connect; `None`: it could.
    pub failed: Option<String>,
}

/// Every host in `hosts` opens a TCP connection to `endpoint`. Nothing to probe when it is no URL
/// (the inventory check refuses that).
pub async fn probe(endpoint: &str, hosts: &[&Reached]) -> Vec<Probe> {
    let Some((host, port)) = host_and_port(endpoint) else {
        return Vec::new();
    };
    join_all(hosts.iter().map(|h| {
        let (target, endpoint) = (host.clone(), endpoint.to_string());
        async move {
            let opened =
                tokio::time::timeout(PROBE_TIMEOUT, h.session.can_reach(&target, port)).await;
            let failed = match opened {
                // Reached, or sshd forwards nothing for this login: nothing known against it.
                Ok(Ok(_)) => None,
                Ok(Err(why)) => Some(why),
                Err(_) => Some(format!("no connection within {PROBE_TIMEOUT:?}")),
            };
            Probe {
                host: h.name().to_string(),
                endpoint,
                failed,
            }
        }
    }))
    .await
}

fn host_and_port(endpoint: &str) -> Option<(String, u16)> {
    let default = if endpoint.starts_with("https:") {
        443
    } else {
        80
    };
    crate::admin::host_port(endpoint, default)
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn the_endpoint_is_dialled_where_its_url_says() {
        assert_eq!(
            host_and_port("http://198.18.0.1:9000"),
            Some(("198.18.0.1".into(), 9000))
        );
        assert_eq!(
            host_and_port("https://minio.internal"),
            Some(("minio.internal".into(), 443))
        );
        assert_eq!(
            host_and_port("http://s3.local/"),
            Some(("s3.local".into(), 80))
        );
    }
}

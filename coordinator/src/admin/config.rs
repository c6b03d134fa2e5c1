//! The cluster configuration (partitions, replication, log provider) and changing it the safe way:
//! `SetClusterConfiguration` replaces the whole document, so read it, change it, write it back.

use restate_fleet_proto::admin::restate::cluster::{
    BifrostProvider, ClusterConfiguration, ReplicationProperty,
};
use restate_fleet_proto::admin::restate::cluster_ctrl::{
    GetClusterConfigurationRequest, SetClusterConfigurationRequest,
};
use serde::{Deserialize, Serialize};

use super::logs::KIND_REPLICATED;
use super::{AdminClient, AdminError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    pub num_partitions: u32,
    /// e.g. `{node: 1}`; None when the cluster has none set.
    pub partition_replication: Option<String>,
    /// `replicated`, `local` or `in-memory`.
    pub log_provider: String,
    pub log_replication: Option<String>,
    /// 0 lets the server choose.
    pub nodeset_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub before: ClusterConfig,
    pub after: ClusterConfig,
}

impl ConfigChange {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// The replication property for "copies on N distinct nodes", spelled as the server prints it so
/// that a value already in place compares equal.
pub fn replication_on_nodes(nodes: u32) -> String {
    format!("{{node: {nodes}}}")
}

impl AdminClient {
    pub async fn cluster_config(&self) -> Result<ClusterConfig, AdminError> {
        let answer = self
            .call(
                "GetClusterConfiguration",
                self.cluster_ctrl()
                    .get_cluster_configuration(self.request(GetClusterConfigurationRequest {})),
            )
            .await?;
        let config = answer.cluster_configuration.ok_or_else(|| {
            self.decode_error("the cluster configuration", "the answer carries none")
        })?;
        ClusterConfig::try_from(config)
            .map_err(|reason| self.decode_error("the cluster configuration", reason))
    }

    /// Reads the configuration, applies `change`, and writes it back only when something changed.
    pub async fn update_cluster_config(
        &self,
        change: impl FnOnce(&mut ClusterConfig),
    ) -> Result<ConfigChange, AdminError> {
        let before = self.cluster_config().await?;
        let mut after = before.clone();
        change(&mut after);
        if after != before {
            let request = SetClusterConfigurationRequest {
                cluster_configuration: Some(after.clone().into()),
            };
            self.call(
                "SetClusterConfiguration",
                self.cluster_ctrl()
                    .set_cluster_configuration(self.request(request)),
            )
            .await?;
        }
        Ok(ConfigChange { before, after })
    }

    /// Moves the cluster to the replicated loglet (the only switch the server allows) with
    /// `replication` copies of each log record; the node's logs follow a few seconds later.
    pub async fn set_log_provider_replicated(
        &self,
        replication: u32,
    ) -> Result<ConfigChange, AdminError> {
        self.update_cluster_config(|config| {
            config.log_provider = KIND_REPLICATED.to_owned();
            config.log_replication = Some(replication_on_nodes(replication));
        })
        .await
    }

    /// Sets how many nodes hold each partition and each log record. Needs that many alive nodes.
    pub async fn set_replication(
        &self,
        partition: u32,
        log: u32,
    ) -> Result<ConfigChange, AdminError> {
        self.set_replications(replication_on_nodes(partition), replication_on_nodes(log))
            .await
    }

    /// Partitions and logs both to Restate's replication `property` (`{node: 3, zone: 2}`: three
    /// copies over at least two zones). Needs nodes enough, placed so.
    pub async fn set_replication_property(
        &self,
        property: &str,
    ) -> Result<ConfigChange, AdminError> {
        self.set_replications(property.to_owned(), property.to_owned())
            .await
    }

    async fn set_replications(
        &self,
        partition: String,
        log: String,
    ) -> Result<ConfigChange, AdminError> {
        self.update_cluster_config(|config| {
            config.partition_replication = Some(partition);
            config.log_replication = Some(log);
        })
        .await
    }

    /// The logs' nodeset size the inventory asks for; without one, Restate sizes them itself
    /// where the size is the 1 a single node keeps from the local loglet (measured: a grown
    /// cluster otherwise shows "Nodeset size: 1"), and a size set by hand is left alone.
    pub async fn set_nodeset_size(&self, asked: Option<u32>) -> Result<ConfigChange, AdminError> {
        self.update_cluster_config(|config| nodeset_size(config, asked))
            .await
    }
}

/// 0 is auto; 1 is what a cluster switched from the local loglet is left with.
fn nodeset_size(config: &mut ClusterConfig, asked: Option<u32>) {
    match asked {
        Some(size) => config.nodeset_size = size,
        None if config.nodeset_size == 1 => config.nodeset_size = 0,
        None => {}
    }
}

impl TryFrom<ClusterConfiguration> for ClusterConfig {
    type Error = &'static str;

    fn try_from(config: ClusterConfiguration) -> Result<Self, Self::Error> {
        let provider = config
            .bifrost_provider
            .ok_or("the configuration names no log provider")?;
        Ok(ClusterConfig {
            num_partitions: config.num_partitions,
            partition_replication: config.partition_replication.map(|r| r.replication_property),
            log_provider: provider.provider,
            log_replication: provider
                .replication_property
                .map(|r| r.replication_property),
            nodeset_size: provider.target_nodeset_size,
        })
    }
}

impl From<ClusterConfig> for ClusterConfiguration {
    fn from(config: ClusterConfig) -> Self {
        let property = |replication_property| ReplicationProperty {
            replication_property,
        };
        ClusterConfiguration {
            num_partitions: config.num_partitions,
            partition_replication: config.partition_replication.map(property),
            bifrost_provider: Some(BifrostProvider {
                provider: config.log_provider,
                replication_property: config.log_replication.map(property),
                target_nodeset_size: config.nodeset_size,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire_type() {
        let config = ClusterConfig {
            num_partitions: 24,
            partition_replication: Some(replication_on_nodes(2)),
            log_provider: "replicated".into(),
            log_replication: Some("{node: 2}".into()),
            nodeset_size: 0,
        };
        let wire = ClusterConfiguration::from(config.clone());
        assert_eq!(
            wire.bifrost_provider.as_ref().map(|p| p.provider.as_str()),
            Some("replicated")
        );
        assert_eq!(ClusterConfig::try_from(wire), Ok(config));
    }

    #[test]
    fn a_configuration_without_provider_is_refused() {
        let wire = ClusterConfiguration {
            num_partitions: 4,
            partition_replication: None,
            bifrost_provider: None,
        };
        assert!(ClusterConfig::try_from(wire).is_err());
    }
}

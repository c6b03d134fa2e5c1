//! Provisioning a cluster made from zero (`NodeCtlSvc.ProvisionCluster`), for nodes started with
//! `auto-provision = false`. Unset fields take the server's defaults.

use restate_fleet_proto::admin::restate::cluster::ReplicationProperty;
use restate_fleet_proto::admin::restate::node_ctl_svc::ProvisionClusterRequest;
use tonic::Code;

use super::config::{ClusterConfig, replication_on_nodes};
use super::{AdminClient, AdminError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provision {
    pub num_partitions: Option<u32>,
    pub partition_replication: Option<u32>,
    pub log_provider: Option<String>,
    pub log_replication: Option<u32>,
    pub nodeset_size: Option<u32>,
    /// Restate's replication property for partitions and logs both (`{node: 3, zone: 2}`), over
    /// the two counts above when set.
    pub replication_property: Option<String>,
    /// Only report the configuration the cluster would get.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// Provisioned now (or, on a dry run, what it would be).
    Now(ClusterConfig),
    AlreadyProvisioned,
}

impl AdminClient {
    /// Provision through ONE node only. Measured on 1.7.12: a second fresh node asked right after
    /// the first one answers as if it had provisioned too, and the cluster never converges.
    pub async fn provision_cluster(
        &self,
        provision: &Provision,
    ) -> Result<Provisioned, AdminError> {
        let property = |nodes: Option<u32>| {
            let text = provision
                .replication_property
                .clone()
                .or(nodes.map(replication_on_nodes))?;
            Some(ReplicationProperty {
                replication_property: text,
            })
        };
        let request = ProvisionClusterRequest {
            dry_run: provision.dry_run,
            num_partitions: provision.num_partitions,
            partition_replication: property(provision.partition_replication),
            log_provider: provision.log_provider.clone(),
            log_replication: property(provision.log_replication),
            target_nodeset_size: provision.nodeset_size,
        };
        let answer = self
            .call(
                "ProvisionCluster",
                self.node_ctl().provision_cluster(self.request(request)),
            )
            .await;
        match answer {
            Ok(answer) => {
                let config = answer.cluster_configuration.ok_or_else(|| {
                    self.decode_error("the provisioned configuration", "the answer carries none")
                })?;
                ClusterConfig::try_from(config)
                    .map(Provisioned::Now)
                    .map_err(|reason| self.decode_error("the provisioned configuration", reason))
            }
            Err(err) if err.code() == Some(Code::AlreadyExists) => {
                Ok(Provisioned::AlreadyProvisioned)
            }
            Err(err) => Err(err),
        }
    }
}

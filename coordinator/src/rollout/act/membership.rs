//! The metadata cluster's membership changed one server at a time, each change gated on the
//! view (which changes, and when they are refused, is `decide/membership.rs`).

use super::executor::Executor;
use crate::admin::ClusterView;
use crate::rollout::decide::membership::{Membership, Target, step_refusal};
use crate::rollout::error::StepError;

impl Executor<'_> {
    /// One node joins or leaves the metadata cluster, when the quorum allows it now, then waits
    /// until the metadata cluster shows the change. Restate's own RPCs do it (`AddNode` on the
    /// node, `RemoveNode` on the leader: what restatectl's `metadata-server add-node` and
    /// `remove-node` send), so no restatectl is needed.
    pub(super) async fn change_metadata_member(
        &mut self,
        host: &str,
        id: u32,
        join: bool,
    ) -> Result<(), StepError> {
        let view = crate::admin::gather(&self.clients()).await?;
        if view.metadata.members.contains(&id) == join {
            self.progress.host(
                host,
                if join {
                    "already a metadata member"
                } else {
                    "already out of the metadata cluster"
                },
            );
            return Ok(());
        }
        let target = Target {
            host: host.to_string(),
            id,
        };
        let one = Membership {
            add_now: if join { vec![target.clone()] } else { vec![] },
            remove: if join { vec![] } else { vec![target] },
            add_after_restart: vec![],
        };
        // The 2-member rule is about the whole run, checked before it started.
        if let Some(why) = step_refusal(&view, &one) {
            return Err(StepError::host(host, format!("refused now: {why}")));
        }
        if join {
            self.progress.host(host, "joining the metadata cluster");
            let client = self
                .survey
                .host(host)
                .map(|h| h.reached.admin.clone())
                .ok_or_else(|| StepError::host(host, "not among the surveyed hosts"))?;
            client
                .join_metadata_cluster()
                .await
                .map_err(|e| StepError::host(host, e.to_string()))?;
        } else {
            self.progress.host(host, "leaving the metadata cluster");
            self.remove_metadata_member(host, id, &view).await?;
        }
        self.view_until(host, |view| {
            (view.metadata.members.contains(&id) != join).then(|| {
                if join {
                    "not yet a metadata member".to_string()
                } else {
                    "still a metadata member".to_string()
                }
            })
        })
        .await?;
        self.recap.changed(
            host,
            if join {
                "joined the metadata cluster"
            } else {
                "left the metadata cluster (a standby metadata server from now on)"
            },
        );
        Ok(())
    }
}

impl Executor<'_> {
    /// `RemoveNode` for member `id`, sent to the metadata leader `view` names first, then to
    /// every other member the inventory reaches (the leader may have changed since): only the
    /// leader takes it. `host` names the node in errors.
    pub(super) async fn remove_metadata_member(
        &self,
        host: &str,
        id: u32,
        view: &ClusterView,
    ) -> Result<(), StepError> {
        let leader = view.metadata.leader;
        // Only the leader takes the change, and the leader may be the member that leaves (a
        // node the inventory dropped, reached on its own): it is asked too, the leader first,
        // then the others, the leaving one last.
        let leaving = self
            .survey
            .leaving
            .iter()
            .filter(|l| l.node.id == id)
            .filter_map(|l| l.own_host())
            .map(|r| (id, &r.admin));
        let mut members: Vec<(u32, &crate::admin::AdminClient)> = self
            .survey
            .hosts
            .iter()
            .filter_map(|h| {
                let node = view.node(&h.reached.host.node_name)?;
                node.metadata_member.then_some((node.id, &h.reached.admin))
            })
            .chain(leaving)
            .collect();
        members.sort_by_key(|(node, _)| (Some(*node) != leader, *node == id));
        let mut errors = Vec::new();
        for (_, client) in members {
            match client.remove_metadata_member(id).await {
                Ok(()) => return Ok(()),
                Err(err) => errors.push(err.to_string()),
            }
        }
        Err(StepError::host(
            host,
            format!(
                "no metadata member took its removal from the metadata cluster: {}",
                if errors.is_empty() {
                    "no other member is an inventory host".to_string()
                } else {
                    errors.join("; ")
                }
            ),
        ))
    }
}

//! The metadata cluster's membership changed one server at a time, each change gated on the
//! view (which changes, and when they are refused, is `decide/membership.rs`).

use std::time::{Duration, Instant};

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
        // While the metadata cluster elects a leader (seen in CI right after a member was
        // drained) every member refuses; another round once one is elected takes it.
        let deadline = Instant::now() + LEADER_ELECTED_WITHIN;
        let errors = loop {
            let mut errors = Vec::new();
            for (_, client) in &members {
                match client.remove_metadata_member(id).await {
                    Ok(()) => return Ok(()),
                    Err(err) => errors.push(err.to_string()),
                }
            }
            if !no_leader_now(&errors) || Instant::now() >= deadline {
                break errors;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
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

/// How long a removal waits for the metadata cluster to have a leader again.
const LEADER_ELECTED_WITHIN: Duration = Duration::from_secs(30);

/// Every member answered that only the leader takes the change: none is leader right now.
fn no_leader_now(errors: &[String]) -> bool {
    !errors.is_empty()
        && errors
            .iter()
            .all(|e| e.contains("needs to be processed by the metadata cluster leader"))
}

#[cfg(test)]
mod tests {
    use super::no_leader_now;

    #[test]
    fn a_removal_waits_only_while_every_member_says_it_is_not_the_leader() {
        let not_leader = "MetadataServerSvc.RemoveNode failed with Internal: command needs to be processed by the metadata cluster leader".to_string();
        let cases: [(&[String], bool); 4] = [
            (&[], false),
            (std::slice::from_ref(&not_leader), true),
            (&[not_leader.clone(), not_leader.clone()], true),
            (
                &[not_leader.clone(), "connection refused".to_string()],
                false,
            ),
        ];
        for (errors, wait) in cases {
            assert_eq!(no_leader_now(errors), wait, "{errors:?}");
        }
    }
}

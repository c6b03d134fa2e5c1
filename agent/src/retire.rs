//! `retire`: what is left on the host of a node removed from its cluster. The service is stopped
//! already (the coordinator did that before the cluster let the node go); here it is disabled
//! and the data directory renamed aside, never deleted: an operator can still look into it, and
//! a restart finds no identity to rejoin with.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use restate_fleet_proto::agent::{AgentError, NodeTarget, RetireReport, ServiceManager};

use crate::setup::System;
use crate::{clock, facts, files};

pub fn retire(node: &NodeTarget, system: &System) -> Result<RetireReport, AgentError> {
    let disabled = match &node.service {
        Some(ServiceManager::Systemd { unit }) => {
            system.systemctl(&["disable", unit])?;
            Some(unit.clone())
        }
        _ => None,
    };
    let data_dir = match facts::find_data_dir(node, system)? {
        Some(dir) => {
            let aside = aside(&dir, SystemTime::now());
            fs::rename(&dir, &aside).map_err(|e| files::io_error("rename", &dir, &e))?;
            Some((dir, aside))
        }
        None => None,
    };
    Ok(RetireReport { disabled, data_dir })
}

/// `<dir>.removed-<UTC stamp>`, beside it.
fn aside(dir: &Path, at: SystemTime) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".removed-{}", clock::file_stamp(at)));
    dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fake::Root;

    #[test]
    fn disables_the_unit_and_keeps_the_data_aside() {
        let root = Root::new("retire");
        let config = root.0.join("etc/restate/restate.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        let base = root.0.join("var/lib/restate");
        fs::write(
            &config,
            format!("node-name = \"n4\"\nbase-dir = \"{}\"\n", base.display()),
        )
        .unwrap();
        fs::create_dir_all(base.join("n4/db")).unwrap();
        let mut node = NodeTarget::new(&config);
        node.service = Some(ServiceManager::Systemd {
            unit: "restate.service".into(),
        });

        let report = retire(&node, &root.system()).unwrap();
        assert_eq!(
            root.calls(),
            "disable restate.service\nshow --property WorkingDirectory --value restate.service\n"
        );
        assert_eq!(report.disabled.as_deref(), Some("restate.service"));
        let (from, to) = report.data_dir.unwrap();
        assert_eq!(from, base.join("n4"));
        assert!(!from.exists() && to.join("db").is_dir(), "{to:?}");
        assert!(
            to.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("n4.removed-"),
            "{to:?}"
        );

        // Again: nothing left to rename, the unit disabled again (idempotent).
        let again = retire(&node, &root.system()).unwrap();
        assert_eq!(again.data_dir, None);
    }
}

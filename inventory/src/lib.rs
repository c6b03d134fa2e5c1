//! The inventory: one TOML file that describes a Restate fleet.
//!
//! [`load`] / [`parse`] turn it into a [`Fleet`] after checking everything that can be checked
//! without touching a host; every problem comes back at once as [`Diagnostics`] with file, line,
//! column, the offending line and a hint. [`ansible`] converts Ansible inventories.

mod address;
pub mod ansible;
pub mod argv;
mod cluster;
mod diagnostic;
mod layer;
mod limit;
mod model;
mod placement;
mod reader;
mod resolve;
mod secret;
mod suggest;
mod tls;
mod tree;
mod value;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use limit::{LimitError, glob};
pub use model::{
    Arch, Cluster, CredentialsIn, DEFAULT_CONFIG_PATH, DEFAULT_INSTALL_PATH, DEFAULT_SSH_PORT,
    DEFAULT_UNIT, FABRIC_PORT, Fleet, Group, Host, RestateServer, Role, ServerBinary, Service,
    Snapshots, SshTarget,
};
pub use placement::{Location, Replication, ReplicationError, parse_replication};
pub use resolve::{Loaded, parse};
pub use secret::Secret;
pub use tls::{DEFAULT_CERT_DAYS, FabricTls, HostFiles, TlsCa, TlsMode};
pub use value::{ConfigEntry, ConfigValue};

/// Reads and parses the inventory at `path`, taking `{ env = "VAR" }` values from this process's
/// environment.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| {
        Diagnostics(vec![Diagnostic {
            severity: Severity::Error,
            file: file_name.clone(),
            line: 0,
            col: 0,
            message: format!("cannot read the inventory: {err}"),
            source_line: None,
            width: 0,
            help: Some("pass the inventory with -i FILE (default: ./inventory.toml)".into()),
        }])
    })?;
    parse(&file_name, &text, &|var| std::env::var(var).ok())
}

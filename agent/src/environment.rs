//! Secrets kept out of restate.toml: an environment file only root reads (systemd reads it before
//! it starts the service as its user) and a drop-in of the unit that names it.

use std::fs;
use std::path::{Path, PathBuf};

use restate_fleet_proto::agent::{AgentError, Environment, ErrorKind};

use crate::files;
use crate::redact::Redactor;
use crate::secrecy::Access;
use crate::setup::System;
use crate::{diff, unit};

const DROP_IN: &str = "restate-fleet-environment.conf";

/// The two files as they are and as they should be.
pub struct Prepared {
    env_path: PathBuf,
    env_old: String,
    env_new: String,
    drop_in_path: PathBuf,
    drop_in_old: String,
    drop_in_new: String,
    redactor: Redactor,
}

pub fn prepare(env: &Environment, system: &System) -> Result<Prepared, AgentError> {
    unit::check_unit_name(&env.unit)?;
    unit::check_path("environment file", &env.path)?;
    let drop_in_path = unit::new_unit_path(&system.root, &format!("{}.d", env.unit)).join(DROP_IN);
    Ok(Prepared {
        env_old: read(&env.path)?,
        env_new: env_text(env)?,
        drop_in_old: read(&drop_in_path)?,
        drop_in_new: drop_in_text(&env.path),
        env_path: env.path.clone(),
        drop_in_path,
        redactor: Redactor::new(env.variables.iter().map(|(name, _)| name.clone())),
    })
}

impl Prepared {
    pub fn changed(&self) -> bool {
        self.env_old != self.env_new || self.drop_in_old != self.drop_in_new
    }

    /// Both files' diffs, every value shown as `<redacted>`.
    pub fn diff(&self) -> String {
        let env = diff::unified(
            &self.env_old,
            &self.env_new,
            &self.env_path.display().to_string(),
            &self.redactor,
        );
        let drop_in = diff::unified(
            &self.drop_in_old,
            &self.drop_in_new,
            &self.drop_in_path.display().to_string(),
            &Redactor::new([]),
        );
        env + &drop_in
    }

    /// Writes what differs; a new drop-in is loaded with `daemon-reload` (the restart that
    /// follows reads the environment file).
    pub fn write(&self, system: &System) -> Result<(), AgentError> {
        if self.env_old != self.env_new {
            // Made 0600 root before a byte of it is written (see `files::temp_file`).
            files::write_atomic_as(&self.env_path, self.env_new.as_bytes(), Access::root(0o600))?;
        }
        if self.drop_in_old != self.drop_in_new {
            files::write_atomic_as(
                &self.drop_in_path,
                self.drop_in_new.as_bytes(),
                Access::root(0o644),
            )?;
            system.systemctl(&["daemon-reload"])?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<String, AgentError> {
    match fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(files::io_error("read", path, &e)),
    }
}

fn env_text(env: &Environment) -> Result<String, AgentError> {
    let mut text = String::from(
        "# Written by restate-fleet: restate-server's secrets, kept out of its config file.\n",
    );
    for (name, value) in &env.variables {
        let good_name = name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !good_name {
            return Err(AgentError::new(
                ErrorKind::BadRequest,
                format!("{name:?} is not an environment variable name"),
            ));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(AgentError::new(
                ErrorKind::BadRequest,
                format!("the value for {name} holds a line break or NUL, which an environment file cannot"),
            )
            .with_hint("check that secret in the inventory"));
        }
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!("{name}=\"{quoted}\"\n"));
    }
    Ok(text)
}

fn drop_in_text(env_file: &Path) -> String {
    format!(
        "# Written by restate-fleet: restate-server's secrets come from this file, not its config.\n\
         [Service]\nEnvironmentFile={}\n",
        env_file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fake::Root;

    fn env(path: &Path, value: &str) -> Environment {
        Environment {
            path: path.to_path_buf(),
            unit: "restate.service".into(),
            variables: vec![
                (
                    "RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID".into(),
                    "AKID".into(),
                ),
                (
                    "RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY".into(),
                    value.into(),
                ),
            ],
        }
    }

    #[test]
    fn written_once_root_only_redacted_in_the_diff_and_reloaded() {
        let root = Root::new("environment");
        let system = root.system();
        let path = root.0.join("etc/restate/restate-fleet.env");
        let wanted = env(&path, r#"s3cr"t\x"#);

        let first = prepare(&wanted, &system).unwrap();
        assert!(first.changed());
        let shown = first.diff();
        assert!(
            !shown.contains("s3cr") && !shown.contains("AKID"),
            "{shown}"
        );
        assert!(shown.contains("EnvironmentFile="), "{shown}");
        first.write(&system).unwrap();
        let written = fs::read_to_string(&path).unwrap();
        assert!(
            written.contains(r#"RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY="s3cr\"t\\x""#),
            "{written}"
        );
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(root.calls(), "daemon-reload\n");

        let again = prepare(&wanted, &system).unwrap();
        assert!(!again.changed());
        again.write(&system).unwrap();
        assert_eq!(
            root.calls(),
            "daemon-reload\n",
            "nothing to reload the second time"
        );

        // A rotated secret changes the file, not the drop-in.
        let rotated = prepare(&env(&path, "new"), &system).unwrap();
        assert!(rotated.changed());
        rotated.write(&system).unwrap();
        assert_eq!(root.calls(), "daemon-reload\n");
    }

    #[test]
    fn a_value_with_a_line_break_or_a_bad_name_is_refused() {
        let root = Root::new("environment-refusals");
        let system = root.system();
        let path = &root.0.join("x.env");
        assert!(prepare(&env(path, "a\nb"), &system).is_err());
        let mut bad = env(path, "v");
        bad.variables[0].0 = "lower; rm".into();
        assert!(prepare(&bad, &system).is_err());
    }
}

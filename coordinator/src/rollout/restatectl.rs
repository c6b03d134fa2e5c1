//! restatectl of the cluster's release on a member that stays, for what Restate offers through
//! restatectl only: a node's worker and storage states and its removal (read-modify-writes of the
//! nodes configuration; restatedev/restate#5195 asks for an RPC). See docs/scale-down.md.

use super::error::StepError;
use super::execute::Executor;
use super::survey::Surveyed;
use crate::server_binary;
use crate::ssh::{Encoding, RemoteFile};

/// Where an uploaded restatectl lives on the member that runs it.
const RESTATECTL_DIR: &str = "/var/lib/restate-fleet/bin";
/// Where operators usually have restatectl when the inventory names none.
const RESTATECTL_FIND: &str = "command -v restatectl || for p in /usr/local/bin/restatectl /usr/bin/restatectl /opt/restate/bin/restatectl; do [ -x \"$p\" ] && echo \"$p\" && exit 0; done; exit 1";
/// restatectl on a member that stays, pointed at that member's own fabric address.
pub(super) struct Restatectl<'a> {
    on: &'a Surveyed,
    binary: String,
}

impl Restatectl<'_> {
    pub(super) async fn run(&self, args: &[&str]) -> Result<String, StepError> {
        let mut argv: Vec<&str> = vec![self.binary.as_str()];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--address", self.address(), "--yes"]);
        Ok(self.exec(&argv).await?.trim().to_string())
    }

    fn address(&self) -> &str {
        self.on.reached.host.advertised_address.as_str()
    }

    /// `argv` on the member; its standard output.
    async fn exec(&self, argv: &[&str]) -> Result<String, StepError> {
        let out = self
            .on
            .reached
            .session
            .exec_checked(argv, b"")
            .await
            .map_err(|e| StepError::host(self.on.name(), format!("restatectl: {e}")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs every call at once in one exec on the member (one restatectl each, as processes, so
    /// that many calls cost about one); returns the calls that failed, with restatectl's last
    /// line. An argument must be one word without glob characters: the script splits each call
    /// on spaces with globbing off.
    pub(super) async fn run_all(
        &self,
        calls: &[Vec<String>],
    ) -> Result<Vec<(usize, String)>, StepError> {
        const SCRIPT: &str = r#"bin=$1; address=$2; shift 2; set -f; i=0
for call in "$@"; do
  (out=$("$bin" $call --address "$address" --yes 2>&1) || echo "$i $(printf '%s\n' "$out" | tail -n 1)") &
  i=$((i + 1))
done
wait"#;
        let word = |a: &String| {
            !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || "*?[]".contains(c))
        };
        if let Some(bad) = calls.iter().flatten().find(|a| !word(a)) {
            return Err(StepError::host(
                self.on.name(),
                format!("restatectl argument {bad:?} is not a single word"),
            ));
        }
        let mut argv = vec![
            "sh",
            "-c",
            SCRIPT,
            "sh",
            self.binary.as_str(),
            self.address(),
        ];
        let joined: Vec<String> = calls.iter().map(|c| c.join(" ")).collect();
        argv.extend(joined.iter().map(String::as_str));
        Ok(self
            .exec(&argv)
            .await?
            .lines()
            .filter_map(|line| {
                let (index, why) = line.split_once(' ').unwrap_or((line, ""));
                Some((index.parse().ok()?, why.to_string()))
            })
            .collect())
    }
}

impl<'a> Executor<'a> {
    /// The first member that stays and runs the admin role, alive in the survey's view.
    fn driver(&self) -> Result<&'a Surveyed, StepError> {
        let view = self.survey.view.as_ref();
        self.survey
            .members()
            .find(|m| {
                m.reached.host.roles.iter().any(|r| r.as_str() == "admin")
                    && view
                        .is_some_and(|v| v.node(&m.reached.host.node_name).is_some_and(|n| n.alive))
            })
            .ok_or_else(|| {
                StepError::cluster(
                    "no member that stays runs the admin role and is alive to run restatectl on",
                )
            })
    }

    /// The inventory's restatectl uploaded to the driver (content-addressed: once per version),
    /// or one installed there.
    pub(super) async fn restatectl(&self) -> Result<Restatectl<'a>, StepError> {
        let on = self.driver()?;
        let session = &on.reached.session;
        let binary = match &self.fleet.cluster.restatectl {
            Some(local) => {
                let sha256 =
                    server_binary::sha256_of(local).map_err(|e| StepError::host("(local)", e))?;
                let remote = RemoteFile {
                    dir: RESTATECTL_DIR,
                    name: "restatectl",
                    sha256: &sha256,
                };
                let path = remote.path();
                let present = session
                    .exec(&["test", "-x", path.as_str()], b"")
                    .await
                    .is_ok_and(|o| o.success());
                if !present {
                    let file = tokio::fs::File::open(local).await.map_err(|e| {
                        StepError::host("(local)", format!("{}: {e}", local.display()))
                    })?;
                    session
                        .upload(&remote, file, Encoding::Plain)
                        .await
                        .map_err(|e| {
                            StepError::host(on.name(), format!("uploading restatectl: {e}"))
                        })?;
                }
                path
            }
            None => {
                let found = session
                    .exec(&["sh", "-c", RESTATECTL_FIND], b"")
                    .await
                    .map_err(crate::reach::ReachError::from)?;
                let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
                if !found.success() || path.is_empty() {
                    return Err(StepError::host(
                        on.name(),
                        "no restatectl to remove nodes with (looked on PATH and in /usr/local/bin, /usr/bin, /opt/restate/bin); install restatectl of the cluster's release there, or name one in the inventory: [cluster] restatectl = \"path/to/restatectl\"",
                    ));
                }
                path
            }
        };
        Ok(Restatectl { on, binary })
    }
}

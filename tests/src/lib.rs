//! The lab: real hosts on one machine for the end-to-end tests and the demo.
//!
//! Each host is a network namespace on one bridge with its own sshd (OpenSSH), host key, hostname
//! and private Restate folders; restate-server and restatectl are the pinned npm builds; snapshots go
//! to a moto S3 store on the bridge. The lab writes an inventory and a known_hosts file for its hosts,
//! ends only the processes it started, and removes everything it created when dropped, also when a
//! test fails or panics.

mod cmd;
pub mod fuzz;
pub mod host;
pub mod http;
mod net;
pub mod paths;
pub mod s3;
mod state;
pub mod systemd;
pub mod user;
pub mod workload;

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use anyhow::{Result, bail};

pub use host::{Host, Kind};
pub use state::{LabState, gc, list, load, running};

/// How long a lab waits for a restate-server to report Alive.
pub const RESTATE_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How many hosts are created at once.
const CREATE_BATCH: usize = 16;

/// What to bring up: hosts `n1..nN`, each of a [`Kind`].
#[derive(Debug, Clone)]
pub struct Spec {
    kinds: Vec<Kind>,
    /// Hosts (by index) whose restate-server is [`paths::OLD_SERVER_VERSION`].
    old_server: Vec<bool>,
    /// Hosts (by index) that boot systemd as PID 1.
    systemd: Vec<bool>,
    persistent: bool,
    laptop_restatectl: bool,
}

impl Spec {
    /// `count` fresh hosts (restate-server installed, not configured).
    pub fn new(count: usize) -> Self {
        Spec {
            kinds: vec![Kind::Fresh; count],
            old_server: vec![false; count],
            systemd: vec![false; count],
            persistent: false,
            laptop_restatectl: false,
        }
    }

    /// restatectl only where Restate's guide has operators run it: on the machine that runs
    /// restate-fleet ([`Lab::laptop_bin`], which the e2e harness puts on the coordinator's
    /// PATH). No host has one, and the inventory names none.
    pub fn restatectl_on_laptop_only(mut self) -> Self {
        self.laptop_restatectl = true;
        self
    }

    /// Host `host` (1-based) boots systemd as PID 1, is reached as the deploy user through
    /// sudo, and runs restate-server under `restate.service` (see [`systemd`]).
    pub fn systemd(mut self, host: usize) -> Self {
        if let Some(slot) = self.systemd.get_mut(host.wrapping_sub(1)) {
            *slot = true;
        }
        self
    }

    /// Every host boots systemd.
    pub fn all_systemd(mut self) -> Self {
        self.systemd.iter_mut().for_each(|slot| *slot = true);
        self
    }

    /// Host `host` (1-based) runs restate-server [`paths::OLD_SERVER_VERSION`] instead of the
    /// current one: the node an upgrade starts from.
    pub fn old_server(mut self, host: usize) -> Self {
        if let Some(slot) = self.old_server.get_mut(host.wrapping_sub(1)) {
            *slot = true;
        }
        self
    }

    pub fn with(mut self, host: usize, kind: Kind) -> Self {
        if let Some(slot) = self.kinds.get_mut(host.wrapping_sub(1)) {
            *slot = kind;
        }
        self
    }

    /// The lab outlives this process (for `restate-lab up`): only `restate-lab down` removes it.
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }
}

pub struct Lab {
    pub state: LabState,
    children: Vec<Child>,
    persistent: bool,
    torn_down: bool,
}

impl Lab {
    pub fn up(spec: Spec) -> Result<Lab> {
        if spec.kinds.is_empty() || spec.kinds.len() > net::MAX_HOSTS {
            bail!(
                "a lab has 1 to {} hosts, not {}",
                net::MAX_HOSTS,
                spec.kinds.len()
            );
        }
        if let Some(index) =
            (0..spec.kinds.len()).find(|&i| spec.old_server[i] && spec.kinds[i] == Kind::Bare)
        {
            bail!(
                "host n{} is bare (no restate-server), so it cannot run an old one",
                index + 1
            );
        }
        let seed = state::seed();
        let id = format!("{seed:06x}");
        let dir = paths::labs_dir().join(&id);
        paths::create_world_readable_dir(&dir)?;
        let bridge = format!("rfb{id}");
        let mut lab = Lab {
            state: LabState {
                id: id.clone(),
                dir: dir.clone(),
                bridge: bridge.clone(),
                gateway: Ipv4Addr::UNSPECIFIED,
                cluster_name: format!("lab-{id}"),
                owner_pid: (!spec.persistent).then(std::process::id),
                moto_pid: None,
                workload_pid: None,
                hosts: Vec::new(),
                users: Vec::new(),
                laptop_restatectl: spec.laptop_restatectl,
            },
            children: Vec::new(),
            persistent: spec.persistent,
            torn_down: false,
        };
        // From here on, Drop cleans up whatever part of the lab exists.
        lab.state.save()?;
        let (subnet, _lock) = net::allocate_subnet(seed, &bridge)?;
        lab.state.gateway = subnet.gateway();
        lab.state.save()?;

        lab.client_key()?;
        let authorized_keys = dir.join("authorized_keys");
        let make = |index: usize| -> Result<(Host, Child)> {
            let name = format!("n{}", index + 1);
            let ns = format!("rf-{id}-{name}");
            let veth = format!("rf{id}v{}", index + 1);
            let address = subnet.host(index);
            net::add_host(&ns, &veth, &bridge, address)?;
            // A host that fails to come up is not recorded, so its link and namespace go here.
            host::create(host::Spec {
                name: &name,
                kind: spec.kinds[index],
                old_server: spec.old_server[index],
                address,
                ns: ns.clone(),
                veth: veth.clone(),
                dir: dir.join("hosts").join(&name),
                authorized_keys: &authorized_keys,
                systemd: spec.systemd[index],
                restatectl: !spec.laptop_restatectl,
            })
            .inspect_err(|_| net::remove_host(&ns, &veth))
        };
        // The first host alone: `ip netns add` sets up the shared /run/netns mount on first use,
        // which concurrent calls would race on. The rest in parallel batches, since a host is
        // mostly waiting on ip, ssh-keygen and sshd (100 hosts one by one take most of a minute).
        let indices: Vec<usize> = (0..spec.kinds.len()).collect();
        let (first, rest) = indices.split_at(1);
        for batch in std::iter::once(first).chain(rest.chunks(CREATE_BATCH)) {
            let made: Vec<Result<(Host, Child)>> = std::thread::scope(|scope| {
                let workers: Vec<_> = batch
                    .iter()
                    .map(|&index| scope.spawn(move || make(index)))
                    .collect();
                workers
                    .into_iter()
                    .map(|worker| {
                        worker.join().unwrap_or_else(|_| {
                            Err(anyhow::anyhow!("creating a lab host panicked"))
                        })
                    })
                    .collect()
            });
            // Every host made is recorded before any error returns, so teardown removes it.
            let mut failure = None;
            for result in made {
                match result {
                    Ok((host, child)) => {
                        lab.children.push(child);
                        lab.state.hosts.push(host);
                    }
                    Err(err) => {
                        failure.get_or_insert(err);
                    }
                }
            }
            lab.state.save()?;
            if let Some(err) = failure {
                return Err(err);
            }
        }
        let moto = s3::start(lab.state.gateway, &dir)?;
        lab.state.moto_pid = Some(moto.id());
        lab.children.push(moto);
        lab.state.save()?;

        lab.write_client_files()?;
        for host in lab.state.hosts.clone() {
            if matches!(host.kind, Kind::Existing | Kind::OldStyle) {
                lab.make_existing(&host)?;
            }
        }
        Ok(lab)
    }

    /// Makes `host` a provisioned single node of the lab's cluster, running.
    fn make_existing(&self, host: &Host) -> Result<()> {
        let config =
            host::existing_config(host, &self.state.cluster_name, host.kind == Kind::OldStyle);
        let path = host.path("/etc/restate/restate.toml")?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(path, config)?;
        if host.systemd {
            systemd::install_operator_unit(host)?;
            host.wait_alive(RESTATE_START_TIMEOUT)?;
        } else {
            host.start_restate(RESTATE_START_TIMEOUT)?;
        }
        // Alive comes before the partitions run; an existing node is one whose logs exist.
        let deadline = std::time::Instant::now() + RESTATE_START_TIMEOUT;
        loop {
            match self.state.restatectl(&host.name, &["logs", "list"]) {
                Ok(_) => return Ok(()),
                Err(err) if std::time::Instant::now() >= deadline => {
                    return Err(err.context(format!("{}: no logs after start", host.name)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn client_key(&self) -> Result<PathBuf> {
        let key = self.state.dir.join("id_ed25519");
        if !key.exists() {
            cmd::ssh_keygen(&key, "restate-lab-client")?;
            // sshd reads it with the rights of the user logging in, who may not be root.
            let authorized = self.state.dir.join("authorized_keys");
            fs::copy(key.with_extension("pub"), &authorized)?;
            fs::set_permissions(&authorized, fs::Permissions::from_mode(0o644))?;
        }
        Ok(key)
    }

    /// known_hosts, an ssh_config for people (`ssh -F <lab>/ssh_config n1`) and the inventory.
    fn write_client_files(&self) -> Result<()> {
        let dir = &self.state.dir;
        let mut known_hosts = String::new();
        let mut ssh_config = String::new();
        for host in &self.state.hosts {
            writeln!(known_hosts, "{}", host.known_hosts_line)?;
            writeln!(
                ssh_config,
                "Host {name}\n  HostName {addr}\n  User root\n  IdentityFile {key}\n  \
                 UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n",
                name = host.name,
                addr = host.address,
                key = dir.join("id_ed25519").display(),
                kh = dir.join("known_hosts").display(),
            )?;
        }
        fs::write(dir.join("known_hosts"), known_hosts)?;
        fs::write(dir.join("ssh_config"), ssh_config)?;
        fs::write(dir.join("inventory.toml"), self.inventory())?;
        Ok(())
    }

    /// The inventory for every host of the lab, in the contract format of design.md.
    pub fn inventory(&self) -> String {
        let s = &self.state;
        let svc = host::SERVICE_SCRIPT;
        // How systemd hosts are reached and run: in [defaults] when every host is one, else
        // in each systemd host's own table.
        let systemd_host = format!(
            "user = \"{user}\"\nbecome = true\n\
             service = {{ manager = \"systemd\", unit = \"{unit}\", user = \"{service}\" }}\n",
            user = systemd::DEPLOY_USER,
            unit = systemd::UNIT,
            service = systemd::SERVICE_USER,
        );
        let all_systemd = s.hosts.iter().all(|h| h.systemd) && !s.hosts.is_empty();
        let access = if all_systemd {
            systemd_host.clone()
        } else {
            format!(
                "user = \"root\"\n\
                 service = {{ manager = \"command\", start = \"{svc} start\", stop = \"{svc} stop\", \
                 restart = \"{svc} restart\", status = \"{svc} status\", \
                 log = \"{}\" }}\n",
                host::SERVICE_LOG
            )
        };
        // restatectl for what only it does (draining a member before its restart, removals),
        // unless the lab keeps it on the laptop alone.
        let restatectl = paths::restatectl()
            .ok()
            .filter(|_| !s.laptop_restatectl)
            .map(|p| format!("restatectl = \"{}\"\n", p.display()))
            .unwrap_or_default();
        let mut text = format!(
            "# Inventory of lab {id}, written by restate-lab.\n\
             [cluster]\n\
             name = \"{cluster}\"\n\
             {restatectl}\
             \n\
             [cluster.snapshots]\n\
             destination = \"s3://{bucket}/{cluster}\"\n\
             aws-region = \"us-east-1\"\n\
             aws-endpoint-url = \"http://{gw}:{port}\"\n\
             aws-allow-http = true\n\
             aws-access-key-id = \"{key_id}\"\n\
             aws-secret-access-key = \"{secret}\"\n\
             \n\
             [defaults]\n\
             identity-file = \"{key}\"\n\
             {access}\
             \n\
             [defaults.config]\n\
             rocksdb-total-memory-size = \"512 MiB\"\n",
            id = s.id,
            cluster = s.cluster_name,
            bucket = s3::BUCKET,
            gw = s.gateway,
            port = s3::PORT,
            key = s.dir.join("id_ed25519").display(),
            key_id = s3::ACCESS_KEY_ID,
            secret = s3::SECRET_ACCESS_KEY,
        );
        for host in &s.hosts {
            let _ = write!(
                text,
                "\n[hosts.{}]\naddress = \"{}\"\n",
                host.name, host.address
            );
            if host.systemd && !all_systemd {
                text.push_str(&systemd_host);
            }
        }
        text
    }

    /// Adds a login user to every host of the lab (they share `/etc/passwd`); removed with the
    /// lab. Its home lives in the lab's folder.
    pub fn add_user(&mut self, spec: &user::UserSpec) -> Result<user::LabUser> {
        let homes = self.state.dir.join("home");
        paths::create_world_readable_dir(&homes)?;
        let user = user::LabUser::named(&self.state.id, &homes, spec)?;
        // Recorded before it exists, so that teardown removes whatever part of it was made.
        self.state.users.push(user.clone());
        self.state.save()?;
        user::create(&user, spec)?;
        Ok(user)
    }

    /// Starts the workload's service on the bridge address and registers it with the cluster
    /// through `via`'s admin API; the lab ends it on teardown.
    pub fn start_workload(&mut self, via: &str) -> Result<()> {
        let child = workload::start_service(&self.state.dir, self.state.gateway)?;
        self.state.workload_pid = Some(child.id());
        self.children.push(child);
        self.state.save()?;
        workload::register(self.host(via).address, self.state.gateway)
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }
    pub fn cluster_name(&self) -> &str {
        &self.state.cluster_name
    }
    pub fn inventory_path(&self) -> PathBuf {
        self.state.dir.join("inventory.toml")
    }
    /// `XDG_STATE_HOME` of the laptop's restate-fleet runs: their journals stay with the lab.
    pub fn state_home(&self) -> PathBuf {
        self.state.dir.join("state")
    }
    /// Where those journals are.
    pub fn journal_dir(&self) -> PathBuf {
        self.state_home().join("restate-fleet/runs")
    }
    pub fn known_hosts_path(&self) -> PathBuf {
        self.state.dir.join("known_hosts")
    }
    pub fn client_key_path(&self) -> PathBuf {
        self.state.dir.join("id_ed25519")
    }
    pub fn s3_address(&self) -> Ipv4Addr {
        self.state.gateway
    }
    pub fn hosts(&self) -> &[Host] {
        &self.state.hosts
    }

    pub fn host(&self, name: &str) -> &Host {
        match self.state.hosts.iter().find(|h| h.name == name) {
            Some(host) => host,
            None => panic!("lab {} has no host {name}", self.state.id),
        }
    }

    /// A folder holding only restatectl, for the coordinator's PATH, when the lab keeps
    /// restatectl on the laptop alone ([`Spec::restatectl_on_laptop_only`]).
    pub fn laptop_bin(&self) -> Result<Option<PathBuf>> {
        if !self.state.laptop_restatectl {
            return Ok(None);
        }
        let bin = self.state.dir.join("laptop-bin");
        if !bin.join("restatectl").exists() {
            fs::create_dir_all(&bin)?;
            std::os::unix::fs::symlink(paths::restatectl()?, bin.join("restatectl"))?;
        }
        Ok(Some(bin))
    }

    /// Runs restatectl against `host`'s fabric port, from the root namespace.
    pub fn restatectl(&self, host: &str, args: &[&str]) -> Result<Output> {
        self.state.restatectl(host, args)
    }

    /// Takes a host's link down (a fault) or up again.
    pub fn set_link(&self, host: &str, up: bool) -> Result<()> {
        net::set_link(&self.host(host).veth, up)
    }

    pub fn down(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        if std::mem::replace(&mut self.torn_down, true) {
            return;
        }
        self.state.teardown();
        for child in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.persistent {
            self.teardown();
        }
    }
}

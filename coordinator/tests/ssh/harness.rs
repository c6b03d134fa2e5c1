//! Real OpenSSH processes for the tests: sshd on 127.0.0.1 with its own host key, ssh-agent,
//! throwaway users. Every process is stopped by pid in Drop, also when a test panics.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use restate_fleet::ssh::{
    Credentials, KnownHosts, Session, SshClient, SshConfig, SshOptions, Target,
};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on, held (bound, never listening) until the socket is dropped: a
/// connection to it is refused, and no other test's server can take it in the meantime, as one
/// could take a port that `free_port` merely found free.
pub fn closed_port() -> (u16, socket2::Socket) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let port = socket
        .local_addr()
        .unwrap()
        .as_socket()
        .map(|a| a.port())
        .unwrap();
    (port, socket)
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `ready` every 20 ms for at most 10 s.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed by pid when dropped.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private sshd on 127.0.0.1.
pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    _process: Guarded,
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with("LogLevel ERROR\n")
    }

    pub fn start_with(extra_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Non-root test users read authorized_keys from here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let host_key = dir.path().join("host_ed25519");
        keygen(&host_key, "ed25519", "");
        let authorized = dir.path().join("authorized_keys");
        fs::write(&authorized, "").unwrap();
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 HostKey {host_key}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized}\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin yes\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 AllowTcpForwarding yes\n\
                 MaxStartups 200\n\
                 MaxSessions 200\n\
                 {extra_config}",
                host_key = host_key.display(),
                pid = dir.path().join("sshd.pid").display(),
                authorized = authorized.display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("sshd.log")).unwrap();
        let process = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let sshd = Self {
            port,
            dir,
            _process: Guarded(process),
        };
        wait_until("sshd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        sshd
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `ssh-keygen` a key of `kind` in the sshd's directory and authorize it.
    pub fn authorized_key(&self, name: &str, kind: &str, passphrase: &str) -> PathBuf {
        let key = new_key(self.dir.path(), name, kind, passphrase);
        self.authorize(&key);
        key
    }

    pub fn authorize(&self, key: &Path) {
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        let path = self.dir.path().join("authorized_keys");
        let mut keys = fs::read_to_string(&path).unwrap();
        keys.push_str(&public);
        fs::write(path, keys).unwrap();
    }

    /// The host key line as known_hosts records it: `[127.0.0.1]:port type base64`.
    pub fn known_hosts_line(&self) -> String {
        let public = fs::read_to_string(self.dir.path().join("host_ed25519.pub")).unwrap();
        let mut fields = public.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}",
            self.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    }

    /// A known_hosts file that trusts this sshd (and any `others`).
    pub fn known_hosts_file(&self, others: &[&Sshd]) -> PathBuf {
        let path = self.dir.path().join("known_hosts");
        let mut text = format!("{}\n", self.known_hosts_line());
        for other in others {
            text.push_str(&other.known_hosts_line());
            text.push('\n');
        }
        fs::write(&path, text).unwrap();
        path
    }

    pub fn target(&self, name: &str, key: Option<&Path>) -> Target {
        Target {
            name: name.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: Some(self.port),
            user: Some("root".to_owned()),
            identity_file: key.map(Path::to_path_buf),
            become_root: false,
        }
    }
}

pub fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut command = Command::new("ssh-keygen");
    command.args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"]);
    command.arg(path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    run(&mut command);
}

pub fn new_key(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    keygen(&path, kind, passphrase);
    path
}

/// Options that use nothing from the operator's own ~/.ssh: no agent, no default keys, short
/// timeouts.
pub fn options(known_hosts: &Path, accept_new: bool) -> SshOptions {
    SshOptions {
        connect_timeout: Duration::from_secs(3),
        keepalive_interval: Duration::from_secs(5),
        forks: 50,
        known_hosts: KnownHosts::new(known_hosts, accept_new),
        ssh_config: SshConfig::default(),
        credentials: Credentials::new(None, Vec::new(), None, false),
    }
}

pub fn client(known_hosts: &Path) -> SshClient {
    SshClient::new(options(known_hosts, false))
}

/// An sshd and a session to it as the test user with a fresh ed25519 key: what most tests start
/// from.
pub async fn connected() -> (Sshd, Session) {
    let sshd = Sshd::start();
    let key = sshd.authorized_key("id", "ed25519", "");
    let session = client(&sshd.known_hosts_file(&[]))
        .connect(&sshd.target("n1", Some(&key)))
        .await
        .unwrap();
    (sshd, session)
}

/// `ssh-agent -D -a <socket>`, with keys added by `ssh-add`.
pub struct Agent {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    _process: Guarded,
}

impl Agent {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let process = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Self {
            socket,
            _dir: dir,
            _process: Guarded(process),
        };
        wait_until("ssh-agent socket", || agent.socket.exists());
        agent
    }

    pub fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.socket)
            .arg("-q")
            .arg(key));
    }
}

/// useradd/userdel lock /etc/passwd and fail instead of waiting when tests overlap.
static USER_DB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A throwaway local user (for sudo tests), removed in Drop with its sudoers file.
pub struct User {
    pub name: String,
    sudoers: PathBuf,
    /// The home with the user's rc files, when it has one.
    _home: Option<tempfile::TempDir>,
}

impl User {
    /// `sudo_rule`: the sudoers line's rule, e.g. `ALL=(ALL) NOPASSWD: ALL`.
    pub fn create(tag: &str, sudo_rule: &str) -> Self {
        Self::with_defaults(tag, sudo_rule, &[])
    }

    /// [`User::create`] with options for a `Defaults:<user>` line, e.g. `requiretty`.
    pub fn with_defaults(tag: &str, sudo_rule: &str, defaults: &[&str]) -> Self {
        Self::make(tag, sudo_rule, defaults, "/bin/sh", &[])
    }

    /// A user with passwordless sudo whose login shell is `shell` and whose home holds `files`
    /// (relative path, content), such as rc files that print banners.
    pub fn login(tag: &str, shell: &str, files: &[(&str, &str)]) -> Self {
        Self::make(tag, "ALL=(ALL) NOPASSWD: ALL", &[], shell, files)
    }

    fn make(
        tag: &str,
        sudo_rule: &str,
        defaults: &[&str],
        shell: &str,
        files: &[(&str, &str)],
    ) -> Self {
        assert!(
            Path::new(shell).is_file(),
            "{shell} is missing: scripts/install-deps installs it"
        );
        let name = format!("rfs{tag}{}", std::process::id());
        let home = (!files.is_empty()).then(|| {
            let home = tempfile::tempdir().unwrap();
            fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
            home
        });
        let user = Self {
            sudoers: PathBuf::from(format!("/etc/sudoers.d/{name}")),
            name,
            _home: home,
        };
        let home_dir = user
            ._home
            .as_ref()
            .map_or(PathBuf::from("/nonexistent"), |h| h.path().to_owned());
        let _lock = USER_DB
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = Command::new("userdel").arg("-f").arg(&user.name).output();
        run(Command::new("useradd")
            .args(["-M", "-d"])
            .arg(&home_dir)
            .args(["-s", shell])
            .arg(&user.name));
        for (relative, content) in files {
            let path = home_dir.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
        }
        if !files.is_empty() {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{0}:{0}", user.name))
                .arg(&home_dir));
        }
        // "!" (locked) would make sshd refuse key logins without PAM; "*" only disables passwords.
        run(Command::new("usermod").args(["-p", "*"]).arg(&user.name));
        let mut sudoers = format!("{} {sudo_rule}\n", user.name);
        if !defaults.is_empty() {
            sudoers.push_str(&format!("Defaults:{} {}\n", user.name, defaults.join(", ")));
        }
        fs::write(&user.sudoers, sudoers).unwrap();
        fs::set_permissions(&user.sudoers, fs::Permissions::from_mode(0o440)).unwrap();
        user
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.sudoers);
        let _lock = USER_DB
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // -f: the user's sshd session processes may still be exiting.
        for _ in 0..50 {
            let removed = Command::new("userdel").arg("-f").arg(&self.name).output();
            if removed.is_ok_and(|output| output.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "could not remove test user {0}; run `userdel -f {0}`",
            self.name
        );
    }
}

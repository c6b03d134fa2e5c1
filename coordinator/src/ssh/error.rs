//! Every SSH failure names the host and tells the operator what to do next.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "{host}: cannot resolve {address}: {source}; check the host's address in the inventory or its HostName in ~/.ssh/config"
    )]
    Dns {
        host: String,
        address: String,
        source: std::io::Error,
    },
    #[error(
        "{host}: connection to {address}:{port} refused; check that sshd runs on the host and listens on port {port}"
    )]
    Refused {
        host: String,
        address: String,
        port: u16,
    },
    #[error(
        "{host}: {stage} with {address}:{port} timed out after {after:?}; check the address, the port and any firewall in between"
    )]
    TimedOut {
        host: String,
        address: String,
        port: u16,
        stage: &'static str,
        after: Duration,
    },
    #[error(
        "{host}: cannot connect to {address}:{port}: {source}; check the network path to the host"
    )]
    Connect {
        host: String,
        address: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("{host}: authentication as {user:?} failed; tried: {}; add the right key to ssh-agent, set identity-file in the inventory, or install your public key in the user's ~/.ssh/authorized_keys", tried.join("; "))]
    AuthFailed {
        host: String,
        user: String,
        /// One entry per method or key, with its outcome.
        tried: Vec<String>,
    },
    #[error("{host}: host key {fingerprint} of {host_port} is not in {}; verify the fingerprint out of band (ssh-keyscan, console), then add it to that file or re-run with --accept-new-host-keys", file.display())]
    HostKeyUnknown {
        host: String,
        host_port: String,
        fingerprint: String,
        file: PathBuf,
    },
    #[error("{host}: HOST KEY CHANGED for {host_port}: it sent {key} but {}:{line} records another key of that type; this may be an attack. If the host was reinstalled, remove line {line} from that file and connect again", file.display())]
    HostKeyChanged {
        host: String,
        host_port: String,
        /// Algorithm and fingerprint of the key the host sent.
        key: String,
        file: PathBuf,
        line: usize,
    },
    #[error("{host}: host key {fingerprint} of {host_port} is marked @revoked at {}:{line}; the host must get a new key", file.display())]
    HostKeyRevoked {
        host: String,
        host_port: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    #[error("cannot read or write known_hosts file {}: {source}; check its permissions", file.display())]
    KnownHostsIo {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read ssh config {}: {source}", file.display())]
    ConfigRead {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}; fix the ssh config file", file.display())]
    ConfigSyntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{host}: {message}; fix ProxyJump in ~/.ssh/config")]
    ProxyJump { host: String, message: String },
    #[error("{host}: SSH failure while {step}: {source}; re-run with -v for the protocol log")]
    Protocol {
        host: String,
        step: &'static str,
        source: russh::Error,
    },
    #[error(
        "{host}: sudo wants a password for {user:?}; configure NOPASSWD sudo for that user (at least for the agent under /var/lib/restate-fleet/agent) or connect as root"
    )]
    SudoNeedsPassword { host: String, user: String },
    #[error(
        "{host}: sudo insists on a terminal for {user:?} (`Defaults requiretty`); allow it without one for that user with a line `Defaults:{user} !requiretty` in a file under /etc/sudoers.d/ (visudo -f), as Ansible's pipelining also needs, or connect as root"
    )]
    SudoRequiresTty { host: String, user: String },
    #[error(
        "{host}: argument {argument:?} contains a NUL byte, which cannot cross a remote shell; fix the inventory value"
    )]
    NulInArgument { host: String, argument: String },
    #[error(
        "{host}: the login shell of {user:?} ended ({status}) without running the command; it printed: {printed:?}. Check that user's shell and its rc files (~/.bashrc, ~/.profile, ~/.zshenv, ~/.config/fish/config.fish) on the host"
    )]
    ShellDidNotRun {
        host: String,
        user: String,
        status: String,
        printed: String,
    },
    #[error("{host}: `{command}` failed with {status}: {stderr}")]
    CommandFailed {
        host: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{host}: {message}")]
    AgentPush { host: String, message: String },
    #[error(
        "{host}: the uploaded agent {path} has sha256 {found}, expected {expected}; refusing to run it. Remove the file on the host and run again to re-upload"
    )]
    AgentHashMismatch {
        host: String,
        path: String,
        expected: String,
        found: String,
    },
    #[error("{host}: tunnel to {target}: {message}")]
    Tunnel {
        host: String,
        target: String,
        message: String,
    },
}

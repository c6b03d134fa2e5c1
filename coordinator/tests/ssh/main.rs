//! The SSH transport against real OpenSSH (sshd, ssh-agent, sudo) on 127.0.0.1.

mod harness;

mod auth;
mod exec;
mod host_keys;
mod jump;
mod push;
mod scale;
mod sudo;
mod tunnel;

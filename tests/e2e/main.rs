//! End-to-end suites on the lab: real sshd, restate-server, restatectl and S3. One test binary with
//! a module per area and a shared harness, as ripgrep's tests/ does. Needs root (namespaces).

mod agent;
mod apply;
mod bad_input;
mod bundle;
mod day_two;
mod fabric_tls;
mod faults;
mod harness;
mod hosts_as_they_are;
mod install;
mod membership;
mod one_file;
mod placement;
mod rollback;
mod scale_down;
mod security;
mod smoke;
mod status;
mod systemd;
mod traffic;
mod transport;

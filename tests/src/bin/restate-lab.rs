//! `restate-lab`: bring a lab up by hand, look around with ssh and restatectl, take it down.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lab::{Kind, Lab, LabState, Spec};

#[derive(Parser)]
#[command(
    name = "restate-lab",
    version,
    about = "Real Restate hosts on one machine, for tests and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring up a lab of COUNT hosts n1..nN (fresh: restate-server installed, not configured).
    Up {
        #[arg(default_value_t = 3)]
        count: usize,
        /// Hosts that already run a provisioned single node (e.g. --existing n1).
        #[arg(long, value_delimiter = ',')]
        existing: Vec<String>,
        /// Hosts that run an old-style single node (local loglet, no log-server role).
        #[arg(long, value_delimiter = ',')]
        old_style: Vec<String>,
        /// Hosts with sshd only, no restate-server.
        #[arg(long, value_delimiter = ',')]
        bare: Vec<String>,
        /// Hosts whose restate-server is the older pinned one (1.6.2), e.g. `--existing n1
        /// --old-server n1` for a node to upgrade.
        #[arg(long, value_delimiter = ',')]
        old_server: Vec<String>,
        /// Hosts that boot systemd as PID 1 (`all` for every host): reached as `admin` through
        /// sudo, restate-server under `restate.service`.
        #[arg(long, value_delimiter = ',')]
        systemd: Vec<String>,
        /// No restatectl on any host and none in the inventory: only in the lab's
        /// `laptop-bin/`, for the coordinator's PATH.
        #[arg(long)]
        restatectl_on_laptop_only: bool,
    },
    /// Take a lab down. --all takes down every lab made by `up` and every lab whose test process
    /// is gone; a lab whose test is still running stays unless --force is given too.
    Down {
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        force: bool,
    },
    /// The labs on this machine, their hosts and files.
    List,
    /// Remove labs whose test process is gone.
    Gc,
    /// Open a shell (or run a command) on a lab host over SSH.
    Ssh {
        host: String,
        #[arg(long)]
        lab: Option<String>,
        #[arg(trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Run restatectl against a lab host's fabric port.
    Restatectl {
        host: String,
        #[arg(long)]
        lab: Option<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("restate-lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            count,
            existing,
            old_style,
            bare,
            old_server,
            systemd,
            restatectl_on_laptop_only,
        } => {
            let mut spec = Spec::new(count).persistent();
            if restatectl_on_laptop_only {
                spec = spec.restatectl_on_laptop_only();
            }
            for (names, kind) in [
                (existing, Kind::Existing),
                (old_style, Kind::OldStyle),
                (bare, Kind::Bare),
            ] {
                for name in names {
                    spec = spec.with(host_index(&name, count)?, kind);
                }
            }
            for name in old_server {
                spec = spec.old_server(host_index(&name, count)?);
            }
            for name in systemd {
                spec = match name.as_str() {
                    "all" => spec.all_systemd(),
                    name => spec.systemd(host_index(name, count)?),
                };
            }
            let lab = Lab::up(spec)?;
            lab.laptop_bin()?;
            describe(&lab.state);
            Ok(())
        }
        Command::Down { id, all, force } => {
            let labs = if all { lab::list() } else { vec![pick(id)?] };
            for lab in labs {
                if all
                    && !force
                    && let Some(pid) = lab.owner_pid.filter(|&pid| lab::running(pid))
                {
                    println!(
                        "lab {} stays: its test (pid {pid}) is still running; --force takes it down",
                        lab.id
                    );
                    continue;
                }
                lab.teardown();
                println!("lab {} is down", lab.id);
            }
            Ok(())
        }
        Command::List => {
            let labs = lab::list();
            if labs.is_empty() {
                println!("no labs");
            }
            labs.iter().for_each(describe);
            Ok(())
        }
        Command::Gc => {
            for id in lab::gc() {
                println!("removed lab {id}");
            }
            Ok(())
        }
        Command::Ssh { host, lab, command } => {
            let lab = pick(lab)?;
            let err = std::process::Command::new("ssh")
                .arg("-F")
                .arg(lab.dir.join("ssh_config"))
                .arg(host)
                .args(command)
                .exec();
            Err(err).context("cannot run ssh")
        }
        Command::Restatectl { host, lab, args } => {
            let lab = pick(lab)?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = lab.restatectl(&host, &args)?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            Ok(())
        }
    }
}

fn host_index(name: &str, count: usize) -> Result<usize> {
    match name.strip_prefix('n').and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if (1..=count).contains(&n) => Ok(n),
        _ => bail!("no host {name} in a lab of {count} hosts (they are n1..n{count})"),
    }
}

/// The lab named, or the only one there is.
fn pick(id: Option<String>) -> Result<LabState> {
    if let Some(id) = id {
        return lab::load(&id);
    }
    let mut labs = lab::list();
    match labs.len() {
        1 => Ok(labs.remove(0)),
        0 => bail!("no lab is up: `restate-lab up 3 --existing n1` makes one"),
        n => bail!("{n} labs are up: name one (`restate-lab list`)"),
    }
}

fn describe(lab: &LabState) {
    println!(
        "lab {}  cluster {}  files {}",
        lab.id,
        lab.cluster_name,
        lab.dir.display()
    );
    for host in &lab.hosts {
        let old = if host.old_server {
            format!("  restate-server {}", lab::paths::OLD_SERVER_VERSION)
        } else {
            String::new()
        };
        let init = if host.systemd { "  systemd" } else { "" };
        println!(
            "  {:<5} {:<15} {:?}{old}{init}",
            host.name, host.address, host.kind
        );
    }
    println!(
        "  s3     http://{}:{}/{}",
        lab.gateway,
        lab::s3::PORT,
        lab::s3::BUCKET
    );
    println!(
        "  inventory    {}",
        lab.dir.join("inventory.toml").display()
    );
    println!("  known_hosts  {}", lab.dir.join("known_hosts").display());
    println!(
        "  ssh          ssh -F {} n1",
        lab.dir.join("ssh_config").display()
    );
}

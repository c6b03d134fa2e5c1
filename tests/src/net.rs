//! The lab's network: one bridge in the root namespace, one network namespace per host joined to it
//! by a veth pair. Addresses come from 198.18.0.0/15, one /24 per lab.

use std::fs::File;
use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths;

/// Host addresses start at .11 so that .1 (the bridge, where the S3 store listens) stands apart.
const FIRST_HOST: u8 = 11;
pub const MAX_HOSTS: usize = 240;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    /// 198.18.0.0/15 holds 512 /24s; `index` picks one.
    pub index: u16,
}

impl Subnet {
    fn octets(&self) -> (u8, u8) {
        (18 + (self.index / 256) as u8, (self.index % 256) as u8)
    }
    pub fn gateway(&self) -> Ipv4Addr {
        let (b, c) = self.octets();
        Ipv4Addr::new(198, b, c, 1)
    }
    pub fn host(&self, n: usize) -> Ipv4Addr {
        let (b, c) = self.octets();
        Ipv4Addr::new(198, b, c, FIRST_HOST + n as u8)
    }
}

/// Picks a /24 no interface on this machine uses yet. Serialised by a lock file, since two labs
/// starting at once would otherwise pick the same one.
pub fn allocate_subnet(seed: u32, bridge: &str) -> Result<(Subnet, File)> {
    paths::create_world_readable_dir(&paths::state_home())?;
    let lock_path = paths::state_home().join("subnets.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let used =
        String::from_utf8_lossy(&cmd::run("ip", ["-4", "-o", "addr", "show"])?.stdout).into_owned();
    for step in 0..512u32 {
        // Index 0 (198.18.0.0/24) is skipped: people use it by hand.
        let index = ((seed.wrapping_add(step)) % 511 + 1) as u16;
        let subnet = Subnet { index };
        let (b, c) = subnet.octets();
        if !used.contains(&format!(" 198.{b}.{c}.")) {
            create_bridge(bridge, &subnet)?;
            return Ok((subnet, lock));
        }
    }
    bail!(
        "every /24 of 198.18.0.0/15 is in use on this machine: take old labs down (restate-lab gc)"
    )
}

fn create_bridge(bridge: &str, subnet: &Subnet) -> Result<()> {
    cmd::run("ip", ["link", "add", bridge, "type", "bridge"])?;
    cmd::run(
        "ip",
        [
            "addr",
            "add",
            &format!("{}/24", subnet.gateway()),
            "dev",
            bridge,
        ],
    )?;
    cmd::run("ip", ["link", "set", bridge, "up"])?;
    // Bridged frames pass the FORWARD chain when br_netfilter is loaded; a DROP policy (Docker sets
    // one) would cut the hosts off from each other.
    cmd::best_effort(
        "iptables",
        ["-I", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"],
    );
    Ok(())
}

pub fn remove_bridge(bridge: &str) {
    if link_exists(bridge) {
        cmd::best_effort(
            "iptables",
            ["-D", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"],
        );
        cmd::best_effort("ip", ["link", "del", bridge]);
    }
}

/// Creates the host's namespace and plugs it into the bridge as `eth0` with its address.
pub fn add_host(ns: &str, veth: &str, bridge: &str, address: Ipv4Addr) -> Result<()> {
    cmd::run("ip", ["netns", "add", ns])?;
    cmd::run(
        "ip",
        [
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    cmd::run("ip", ["link", "set", veth, "master", bridge, "up"])?;
    in_ns(
        ns,
        ["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"],
    )?;
    in_ns(ns, ["ip", "link", "set", "eth0", "up"])?;
    in_ns(ns, ["ip", "link", "set", "lo", "up"])?;
    Ok(())
}

/// Cuts a host off the network (its link down) or brings it back, as a fault for tests.
pub fn set_link(veth: &str, up: bool) -> Result<()> {
    cmd::run("ip", ["link", "set", veth, if up { "up" } else { "down" }])?;
    Ok(())
}

/// The pids of every process inside the namespace: all of them were started by this lab (through
/// its sshd), so ending them ends only what the lab started.
pub fn pids_in(ns: &str) -> Vec<u32> {
    std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn remove_host(ns: &str, veth: &str) {
    // The veth is deleted explicitly: a namespace with lingering sockets can outlive `ip netns del`
    // for minutes, and its veth name with it.
    if link_exists(veth) {
        cmd::best_effort("ip", ["link", "del", veth]);
    }
    if std::path::Path::new("/run/netns").join(ns).exists() {
        cmd::best_effort("ip", ["netns", "del", ns]);
    }
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn in_ns<const N: usize>(ns: &str, argv: [&str; N]) -> Result<()> {
    let mut args = vec!["netns", "exec", ns];
    args.extend(argv);
    cmd::run("ip", args)?;
    Ok(())
}

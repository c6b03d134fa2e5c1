//! Facts about the machine itself (uname, user, accounts).

use std::ffi::CStr;

pub struct Uname {
    pub nodename: String,
    pub machine: String,
}

pub fn uname() -> Option<Uname> {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut buf) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some(Uname {
        nodename: field(&buf.nodename),
        machine: field(&buf.machine),
    })
}

/// `user@host` of whoever runs the agent; through sudo, the user who called sudo.
pub fn default_holder() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
    let host = uname().map_or_else(|| "unknown-host".into(), |u| u.nodename);
    format!("{user}@{host}")
}

/// A user account as the system's user database (NSS) knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in `/etc/passwd`, else through `getent passwd` (the host's own NSS: LDAP,
/// SSSD, ...). Not `getpwnam_r`: the agent is linked statically, and a static glibc's NSS would
/// load the modules of the glibc it was built with, which the host may not have.
pub fn account(name: &str) -> Option<Account> {
    let in_files = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_entry(&passwd, name));
    in_files.or_else(|| passwd_entry(&getent("passwd", name)?, name))
}

/// What `getent DATABASE KEY` prints: the host's own NSS, run as a program of the host.
fn getent(database: &str, key: &str) -> Option<String> {
    let out = std::process::Command::new("getent")
        .args([database, key])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The addresses of a host name: an IP literal as it is, else `/etc/hosts`, else `getent ahosts`
/// (the host's own resolver: DNS, systemd-resolved, ...). Not `getaddrinfo`: in a static binary it
/// would load the NSS modules of the glibc the agent was built with. `None`: no address.
pub fn resolve(name: &str) -> Option<Vec<std::net::IpAddr>> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return Some(vec![ip]);
    }
    let from_files = std::fs::read_to_string("/etc/hosts")
        .ok()
        .map(|hosts| hosts_entries(&hosts, name))
        .filter(|found| !found.is_empty());
    from_files
        .or_else(|| {
            let mut found: Vec<std::net::IpAddr> = getent("ahosts", name)?
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            found.dedup();
            Some(found)
        })
        .or_else(|| (name == "localhost").then(|| vec![std::net::Ipv4Addr::LOCALHOST.into()]))
        .filter(|found| !found.is_empty())
}

/// The addresses hosts(5) text gives `name` (case-insensitive, aliases included), in file order.
fn hosts_entries(hosts: &str, name: &str) -> Vec<std::net::IpAddr> {
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip = fields.next()?.parse().ok()?;
            fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// `name`'s uid and gid in passwd(5) text.
fn passwd_entry(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let (_password, uid, gid) = (fields.next()?, fields.next()?, fields.next()?);
        Some(Account {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_entries_are_read_by_exact_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      restate-old:x:998:997::/var/lib/x:/usr/sbin/nologin\n\
                      restate:x:999:996:Restate:/var/lib/restate:/usr/sbin/nologin\n\
                      broken:x:notanumber:1::/:/bin/sh\n";
        assert_eq!(
            passwd_entry(passwd, "restate"),
            Some(Account { uid: 999, gid: 996 })
        );
        assert_eq!(
            passwd_entry(passwd, "root"),
            Some(Account { uid: 0, gid: 0 })
        );
        assert_eq!(passwd_entry(passwd, "resta"), None);
        assert_eq!(passwd_entry(passwd, "broken"), None);
        // The real database: root is always there.
        assert_eq!(account("root").map(|a| a.uid), Some(0));
        assert_eq!(account("no-such-user-here"), None);
    }

    #[test]
    fn names_resolve_without_getaddrinfo() {
        let hosts =
            "127.0.0.1 localhost\n10.0.0.5 n1.lab n1 # the first\n10.0.0.6 N2\n::1 ip6-localhost\n";
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(hosts_entries(hosts, "n1"), [ip("10.0.0.5")]);
        assert_eq!(hosts_entries(hosts, "n2"), [ip("10.0.0.6")]);
        assert!(hosts_entries(hosts, "first").is_empty());
        assert_eq!(resolve("192.0.2.7"), Some(vec![ip("192.0.2.7")]));
        assert_eq!(resolve("[::1]"), Some(vec![ip("::1")]));
        assert!(resolve("localhost").is_some_and(|a| a.iter().all(|ip| ip.is_loopback())));
        assert_eq!(resolve("no-such-host.invalid"), None);
    }
}

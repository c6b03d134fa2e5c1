//! Facts about the machine itself (uname, user).

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

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

/// Looks `name` up with `getpwnam_r`; `None` when there is no such user (or the lookup failed).
pub fn account(name: &str) -> Option<Account> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data filled by getpwnam_r, whose strings point into `buf`, which
    // outlives every use; only the numeric fields are read.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(Account {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

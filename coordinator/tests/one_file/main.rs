//! The agent `restate-fleet` carries inside it (see build.rs): self-contained, so it runs on any
//! x86_64 Linux whatever its glibc. Needs root (a mount namespace and chroot).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use restate_fleet::ssh::EMBEDDED_AGENT;

fn agent() -> &'static [u8] {
    EMBEDDED_AGENT.expect("this x86_64 Linux build embeds the agent (build.rs)")
}

/// The ELF program header types of `elf` (64-bit, little-endian).
fn program_headers(elf: &[u8]) -> Vec<u32> {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().expect("8 bytes"));
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let (offset, size, count) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..count).map(|i| u32_at(offset + i * size)).collect()
}

#[test]
fn the_embedded_agent_needs_no_dynamic_loader() {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    let headers = program_headers(agent());
    assert!(!headers.is_empty());
    assert!(
        !headers.contains(&PT_INTERP) && !headers.contains(&PT_DYNAMIC),
        "no interpreter, no dynamic section: {headers:?}"
    );
    // The agent is uploaded to every host: keep an eye on its size (see docs/agent.md).
    assert!(agent().len() < 2_500_000, "{} bytes", agent().len());
}

/// A directory holding only the agent, `/proc` and `/dev/null`, removed at the end.
struct EmptyRoot(PathBuf);

impl Drop for EmptyRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_embedded_agent_gathers_facts_in_an_empty_root() {
    // /proc/self belongs to the process's effective user.
    let euid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("proc"));
    assert_eq!(
        euid, 0,
        "this test needs root (chroot, a mount namespace); scripts/test runs it as root"
    );
    let root =
        EmptyRoot(std::env::temp_dir().join(format!("rf-empty-root-{}", std::process::id())));
    for dir in ["proc", "dev"] {
        std::fs::create_dir_all(root.0.join(dir)).expect("mkdir");
    }
    std::fs::write(root.0.join("dev/null"), b"").expect("a mount point for /dev/null");
    let binary = root.0.join("restate-fleet-agent");
    std::fs::write(&binary, agent()).expect("write the agent");
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let script = r#"mount -t proc proc "$1/proc" && mount --bind /dev/null "$1/dev/null" && exec chroot "$1" /restate-fleet-agent"#;
    let mut child = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&root.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"protocol": 2, "op": "facts", "config_path": "/etc/restate/restate.toml"}"#)
        .expect("send the request");
    let out = child.wait_with_output().expect("the agent ends");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains(r#""op":"facts""#) && answer.contains(r#""os":"linux""#),
        "facts from a root with nothing but the agent: {answer}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

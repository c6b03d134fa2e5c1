//! ELF headers: which CPU a binary is built for, so that nothing is uploaded to a host that
//! cannot run it.

use std::path::Path;

/// ELF `e_machine` values for `uname -m` names.
pub fn elf_machine_for(arch: &str) -> Option<u16> {
    Some(match arch {
        "x86_64" | "amd64" => 62,
        "aarch64" | "arm64" => 183,
        "armv7l" | "armv6l" | "armhf" => 40,
        "riscv64" => 243,
        "i386" | "i686" => 3,
        "ppc64le" | "ppc64" => 21,
        "s390x" => 22,
        _ => return None,
    })
}

pub fn read_elf_machine(path: &Path) -> std::io::Result<u16> {
    use std::io::Read;
    let mut header = [0u8; 20];
    let mut file = std::fs::File::open(path)?;
    let complete = match file.read_exact(&mut header) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(err) => return Err(err),
    };
    if !complete || &header[..4] != b"\x7fELF" {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an ELF executable",
        ));
    }
    let bytes = [header[18], header[19]];
    Ok(match header[5] {
        2 => u16::from_be_bytes(bytes),
        _ => u16::from_le_bytes(bytes),
    })
}

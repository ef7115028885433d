//! Whether a file is a Linux executable for a given architecture, read from
//! its ELF header alone (the first 20 bytes), so both the coordinator
//! (`geolb binary put`) and an agent (before it switches) can refuse a file
//! that would never start.

/// Bytes of the header this check reads.
pub const HEADER_LEN: usize = 20;

/// Why a file is not an executable for an architecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRunnable {
    /// No ELF magic: a script, a text file, an archive...
    #[error("it is not an ELF executable (a script, an archive or data?)")]
    NotElf,
    /// An ELF file that is not a program (an object file, a core dump).
    #[error("it is an ELF file but not a program (type {0})")]
    NotProgram(u16),
    /// A program for another architecture.
    #[error("it is built for {found}, not {wanted}")]
    OtherArch {
        /// What the header says.
        found: String,
        /// What runs here.
        wanted: String,
    },
}

/// The ELF machine number and class (64-bit or not) of a Rust
/// `std::env::consts::ARCH` name.
fn machine_of(arch: &str) -> Option<(u16, bool)> {
    Some(match arch {
        "x86_64" => (62, true),
        "x86" => (3, false),
        "aarch64" => (183, true),
        "arm" => (40, false),
        "riscv64" => (243, true),
        "powerpc64" => (21, true),
        "s390x" => (22, true),
        "loongarch64" => (258, true),
        _ => return None,
    })
}

/// The Rust name of an ELF machine number, or `machine <n>`.
fn arch_of(machine: u16, is_64: bool) -> String {
    let known = [
        "x86_64",
        "x86",
        "aarch64",
        "arm",
        "riscv64",
        "powerpc64",
        "s390x",
        "loongarch64",
    ];
    known
        .into_iter()
        .find(|a| machine_of(a) == Some((machine, is_64)))
        .map(String::from)
        .unwrap_or_else(|| format!("machine {machine}"))
}

/// Checks that `header` (the file's first bytes) starts a little- or
/// big-endian ELF program (executable or position-independent) for `arch`.
pub fn check(header: &[u8], arch: &str) -> Result<(), NotRunnable> {
    if header.len() < HEADER_LEN || &header[..4] != b"\x7fELF" {
        return Err(NotRunnable::NotElf);
    }
    let is_64 = header[4] == 2;
    let read = |at: usize| match header[5] {
        2 => u16::from_be_bytes([header[at], header[at + 1]]),
        _ => u16::from_le_bytes([header[at], header[at + 1]]),
    };
    let (kind, machine) = (read(16), read(18));
    // ET_EXEC or ET_DYN (PIE programs, static-pie included).
    if kind != 2 && kind != 3 {
        return Err(NotRunnable::NotProgram(kind));
    }
    if machine_of(arch) != Some((machine, is_64)) {
        return Err(NotRunnable::OtherArch {
            found: arch_of(machine, is_64),
            wanted: arch.to_string(),
        });
    }
    Ok(())
}

/// A minimal ELF header for `arch` (tests of refusals build files with it).
pub fn header_for(arch: &str) -> Option<[u8; HEADER_LEN]> {
    let (machine, is_64) = machine_of(arch)?;
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = if is_64 { 2 } else { 1 };
    header[5] = 1;
    header[6] = 1;
    header[16..18].copy_from_slice(&2u16.to_le_bytes());
    header[18..20].copy_from_slice(&machine.to_le_bytes());
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_programs_of_the_architecture_only() {
        let x86 = header_for("x86_64").unwrap();
        assert_eq!(check(&x86, "x86_64"), Ok(()));
        let arm = header_for("aarch64").unwrap();
        assert_eq!(
            check(&arm, "x86_64"),
            Err(NotRunnable::OtherArch {
                found: "aarch64".into(),
                wanted: "x86_64".into()
            })
        );
        assert_eq!(
            check(b"#!/bin/sh\necho hi\n  ", "x86_64"),
            Err(NotRunnable::NotElf)
        );
        assert_eq!(check(b"\x7fELF", "x86_64"), Err(NotRunnable::NotElf));
        let mut object = x86;
        object[16] = 1; // ET_REL
        assert_eq!(check(&object, "x86_64"), Err(NotRunnable::NotProgram(1)));
        let mut odd = x86;
        odd[18..20].copy_from_slice(&9999u16.to_le_bytes());
        assert!(matches!(
            check(&odd, "x86_64"),
            Err(NotRunnable::OtherArch { found, .. }) if found == "machine 9999"
        ));
    }

    #[test]
    fn reads_the_running_binary() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(check(&me[..HEADER_LEN], std::env::consts::ARCH), Ok(()));
    }
}

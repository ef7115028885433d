//! What `geolb binary put` checks of a file before it stores it: an ELF
//! program for this machine's architecture (the fleet's, as geolb assumes),
//! and the version it reports when run with `--version`.

use geolb_proto::elf;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long `FILE --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a file is not stored as a binary.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not an executable for this architecture.
    #[error(
        "{path} is not an executable for {arch}: {why}; give a nats-server binary built for {arch}"
    )]
    NotRunnable {
        /// The file.
        path: String,
        /// This machine's architecture.
        arch: &'static str,
        /// What its header says.
        why: elf::NotRunnable,
    },
    /// It has the header of one but does not start here.
    #[error("{path} does not start here ({reason}); is it built for this system (libc, loader)?")]
    CannotRun {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Checks the header of `path`, then runs it with `--version`; returns the
/// version it reports, if it reports one.
pub async fn binary(path: &Path) -> Result<Option<String>, InspectError> {
    let shown = path.display().to_string();
    let mut header = [0u8; elf::HEADER_LEN];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        let n = f.read(&mut header)?;
        Ok(n)
    });
    let n = read.map_err(|source| InspectError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    elf::check(&header[..n], std::env::consts::ARCH).map_err(|why| InspectError::NotRunnable {
        path: shown.clone(),
        arch: std::env::consts::ARCH,
        why,
    })?;
    let mut command = tokio::process::Command::new(path);
    command
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| InspectError::CannotRun {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    match tokio::time::timeout(VERSION_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Ok(version_in(&text))
        }
        Ok(Err(e)) => Err(InspectError::CannotRun {
            path: shown,
            reason: e.to_string(),
        }),
        // A program that does not know `--version` and keeps running: no version.
        Err(_) => Ok(None),
    }
}

/// The first word that looks like a version (`v2.14.6`, `2.15.0-RC.1`), without its `v`.
pub fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|word| word.trim_end_matches([':', ';', '.']))
        .map(|word| word.strip_prefix('v').unwrap_or(word))
        .find(|word| {
            let mut parts = word.split('.');
            let numeric = |p: Option<&str>| {
                p.is_some_and(|p| {
                    !p.is_empty() && p.bytes().take_while(u8::is_ascii_digit).count() > 0
                })
            };
            word.as_bytes().first().is_some_and(u8::is_ascii_digit)
                && numeric(parts.next())
                && numeric(parts.next())
        })
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_in_what_programs_print() {
        assert_eq!(
            version_in("nats-server: v2.14.6\n").as_deref(),
            Some("2.14.6")
        );
        assert_eq!(
            version_in("nats-server: v2.15.0-RC.1\n").as_deref(),
            Some("2.15.0-RC.1")
        );
        assert_eq!(version_in("geolb 0.1.0\n").as_deref(), Some("0.1.0"));
        assert_eq!(
            version_in("tool version 3.2, built 2026").as_deref(),
            Some("3.2")
        );
        assert_eq!(version_in("usage: x [-h]\n"), None);
        assert_eq!(version_in("built on 2026\n"), None);
    }

    #[tokio::test]
    async fn refuses_scripts_and_reads_real_versions() {
        let dir = std::env::temp_dir().join(format!("geolb-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script");
        std::fs::write(&script, "#!/bin/sh\necho v1.2.3\n").unwrap();
        assert!(matches!(
            binary(&script).await,
            Err(InspectError::NotRunnable {
                why: elf::NotRunnable::NotElf,
                ..
            })
        ));
        assert!(matches!(
            binary(&dir.join("absent")).await,
            Err(InspectError::Unreadable { .. })
        ));
        let me = std::env::current_exe().unwrap();
        // A test binary is an ELF program of this machine; it does not know --version.
        assert!(binary(&me).await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

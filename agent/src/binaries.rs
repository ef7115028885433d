//! Finds the nats-server binary an `upgrade` asks for: an installed version
//! under the servers directory (`<dir>/<version>/nats-server`, as `make
//! tools` lays them out), or a path to a binary.

use geolb_proto::{ErrorKind, ReplyError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Resolves `to` to an executable file, before anything is stopped.
pub fn resolve(to: &str, servers_dir: &Path) -> Result<PathBuf, ReplyError> {
    let to = to.trim();
    let looks_like_path = to.contains('/');
    let candidate = if looks_like_path {
        PathBuf::from(to)
    } else {
        servers_dir.join(to).join("nats-server")
    };
    if is_executable(&candidate) {
        return Ok(candidate);
    }
    let message = if looks_like_path {
        format!("{to} is not an executable file; give an installed version or a binary path")
    } else {
        let installed = installed_versions(servers_dir);
        format!(
            "nats-server {to} is not installed in {} (installed: {}); run `make tools` or pass a binary path",
            servers_dir.display(),
            if installed.is_empty() { "none".to_string() } else { installed.join(", ") }
        )
    };
    Err(ReplyError::new(ErrorKind::NotInstalled, message))
}

/// Versions found under `servers_dir`, sorted.
pub fn installed_versions(servers_dir: &Path) -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir(servers_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| is_executable(&entry.path().join("nats-server")))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    versions.sort();
    versions
}

/// The version a binary path names when it lies in `<dir>/<version>/nats-server`.
pub fn version_of_path(program: &Path) -> Option<String> {
    let parent = program.parent()?.file_name()?.to_str()?;
    parent
        .chars()
        .next()
        .filter(char::is_ascii_digit)
        .map(|_| parent.to_string())
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tools() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("geolb-binaries-{}", std::process::id()));
        for version in ["2.12.8", "2.14.6"] {
            let bin = dir.join(version).join("nats-server");
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::write(&bin, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        dir
    }

    #[test]
    fn resolves_versions_and_paths() {
        let dir = fake_tools();
        let path = resolve("2.14.6", &dir).unwrap();
        assert_eq!(path, dir.join("2.14.6/nats-server"));
        assert_eq!(resolve(path.to_str().unwrap(), &dir).unwrap(), path);
        assert_eq!(version_of_path(&path).as_deref(), Some("2.14.6"));
        assert_eq!(installed_versions(&dir), vec!["2.12.8", "2.14.6"]);

        let err = resolve("9.9.9", &dir).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotInstalled);
        assert!(err.message.contains("2.12.8, 2.14.6"), "{}", err.message);
        assert_eq!(
            resolve("empty", &dir).unwrap_err().kind,
            ErrorKind::NotInstalled
        );
        assert_eq!(
            resolve("/no/such/bin", &dir).unwrap_err().kind,
            ErrorKind::NotInstalled
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

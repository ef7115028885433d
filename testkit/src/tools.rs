//! Where the binaries the tests run live: pinned nats-server builds under `.tools/`
//! (installed by `make tools`) and our own binaries under the cargo target directory.

use std::path::{Path, PathBuf};

/// The nats-server version the lab and most tests run ([`geolb_proto::DEFAULT_NATS_VERSION`]).
pub fn default_version() -> &'static str {
    geolb_proto::DEFAULT_NATS_VERSION
}

/// The nats-server version rolling upgrades move to (a different minor from the default).
pub fn upgrade_version() -> &'static str {
    "2.14.6"
}

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent directory")
        .to_path_buf()
}

/// The folder holding one sub-folder per installed nats-server version.
pub fn tools_dir() -> PathBuf {
    repo_root().join(".tools").join("nats-server")
}

/// Path of the nats-server binary of `version`; panics with what to run if it is missing.
pub fn nats_server_bin(version: &str) -> PathBuf {
    let bin = tools_dir().join(version).join("nats-server");
    if !bin.is_file() {
        panic!("nats-server {version} not found in .tools/; run `make tools`");
    }
    bin
}

/// Installed nats-server versions, oldest first.
pub fn installed_versions() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(tools_dir()) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("nats-server").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    versions.sort_by_key(|v| version_key(v));
    versions
}

/// Numeric sort key of a dotted version ("2.12.8" -> [2, 12, 8]).
fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the repo root) or `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// Path of the debug `geolb-agent` binary; panics with what to run if it is missing.
pub fn agent_bin() -> PathBuf {
    debug_bin("geolb-agent")
}

/// Path of the debug `geolb` coordinator binary; panics with what to run if it is missing.
pub fn geolb_bin() -> PathBuf {
    debug_bin("geolb")
}

/// A binary of this workspace in the debug profile, which must already be built.
fn debug_bin(name: &str) -> PathBuf {
    let bin = target_dir().join("debug").join(name);
    if !bin.is_file() {
        panic!(
            "{} not found; run `cargo build --workspace --bins` or `make test`",
            bin.display()
        );
    }
    bin
}

/// The static agent the images ship (`make static-agent`), if built.
pub fn static_agent_bin() -> Option<PathBuf> {
    let bin = target_dir()
        .join("x86_64-unknown-linux-gnu")
        .join("release")
        .join("geolb-agent");
    bin.is_file().then_some(bin)
}

/// Path of a binary of this workspace in the release profile (benchmarks), or an
/// error saying what to run when it is not built.
pub fn release_bin(name: &str) -> Result<PathBuf, String> {
    let bin = target_dir().join("release").join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found; run `cargo build --release --workspace --bins` or `make bench`",
            bin.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let mut v = vec!["2.9.0", "2.12.8", "2.11.11", "2.10.1"];
        v.sort_by_key(|v| version_key(v));
        assert_eq!(v, ["2.9.0", "2.10.1", "2.11.11", "2.12.8"]);
    }

    #[test]
    fn default_and_upgrade_differ_in_minor() {
        let minor = |v: &str| version_key(v)[1];
        assert_ne!(minor(default_version()), minor(upgrade_version()));
    }
}

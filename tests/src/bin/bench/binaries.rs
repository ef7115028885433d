//! `agent_binary_size_mib`, `geolb_binary_size_mib`: the release binaries on disk
//! (the release profile strips them); `image_*_mb`: the Docker images `make
//! images` builds, when the engine has them.

use crate::agents::Bench;
use crate::report::Report;
use anyhow::Context as _;
use std::path::Path;

/// The agent must stay small enough to ship in any container image.
const AGENT_TARGET_MIB: f64 = 8.0;

/// Measures both binaries.
pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    for (name, path, target) in [
        (
            "agent_binary_size_mib",
            &bench.agent,
            Some(AGENT_TARGET_MIB),
        ),
        ("geolb_binary_size_mib", &bench.geolb, None),
    ] {
        let bytes = size(path)?;
        let mib = bytes as f64 / (1024.0 * 1024.0);
        let detail = format!("{bytes} bytes, {} (stripped release build)", path.display());
        report.add(name, mib, "MiB", target, detail);
    }
    for image in ["geolb-server", "geolb-client"] {
        let reference = format!("{image}:latest");
        match geolb_tests::docker::docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Size}}",
            &reference,
        ]) {
            Ok(bytes) => {
                let mb = bytes.parse::<f64>().unwrap_or(f64::NAN) / 1e6;
                let name = format!("image_{}_mb", image.trim_start_matches("geolb-"));
                report.add(&name, mb, "MB", None, format!("{reference}, FROM scratch"));
            }
            Err(e) => println!("  {reference}: not measured ({e}); `make images` builds it"),
        }
    }
    Ok(())
}

fn size(path: &Path) -> anyhow::Result<u64> {
    let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok(meta.len())
}

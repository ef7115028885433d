//! The archive and the lab: the `[archive]` section of `lab.toml`, checked
//! at `lab up` before anything starts; the `geolb archive` process the lab
//! runs beside its control plane (identity `archiver`); and the export of
//! every report a scenario run saves.

use super::cli::ExportArgs;
use super::credentials::Credentials;
use super::store::{Archive, S3Config, DEFAULT_REGION};
use super::url::S3Url;
use crate::lab::state::LabState;
use crate::report::Report;
use geolb_proto::connect::ControlArgs;
use geolb_proto::WireDuration;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[archive]` of `lab.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Where: `s3://BUCKET/PREFIX`.
    pub to: String,
    /// S3 endpoint URL (default AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region (default us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS credentials file (else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
    /// Run `geolb archive` beside the lab (false: export reports only).
    #[serde(default = "yes")]
    pub telemetry: bool,
    /// The archiver's `--flush-interval`.
    #[serde(default = "flush_interval")]
    pub flush_interval: WireDuration,
    /// The archiver's `--max-batch-bytes`.
    #[serde(default = "max_batch_bytes")]
    pub max_batch_bytes: u64,
}

fn yes() -> bool {
    true
}

fn flush_interval() -> WireDuration {
    WireDuration::from_millis(60_000)
}

fn max_batch_bytes() -> u64 {
    10 << 20
}

impl ArchiveConfig {
    /// Checks the URL and the values (no I/O).
    pub fn validate(&self) -> Result<S3Url, String> {
        let url: S3Url = self.to.parse().map_err(|e| format!("archive.to: {e}"))?;
        if self.flush_interval.0 < std::time::Duration::from_millis(100) {
            return Err("archive.flush_interval: use 100ms or more".into());
        }
        if self.max_batch_bytes == 0 {
            return Err("archive.max_batch_bytes: use 1 or more".into());
        }
        Ok(url)
    }

    /// The store settings, credentials read now.
    pub fn s3_config(&self) -> anyhow::Result<S3Config> {
        let url = self.validate().map_err(anyhow::Error::msg)?;
        Ok(S3Config {
            url,
            endpoint: self.endpoint.clone(),
            region: self.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
            credentials: Credentials::load(self.credentials_file.as_deref(), "default")?,
        })
    }
}

/// At `lab up`: the bucket answers to the credentials, or one line says why.
pub async fn check(config: &ArchiveConfig) -> anyhow::Result<()> {
    let archive = Archive::open(&config.s3_config()?)?;
    archive
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("the lab's [archive]: {e}"))
}

/// The `geolb archive` arguments of the lab's archiver.
pub fn archiver_args(config: &ArchiveConfig, control_url: &str, seed: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--control",
        control_url,
        "--nkey-file",
        seed,
        "archive",
        "--to",
        &config.to,
        "--flush-interval",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("{}ms", config.flush_interval.0.as_millis()));
    args.extend([
        "--max-batch-bytes".into(),
        config.max_batch_bytes.to_string(),
    ]);
    if let Some(endpoint) = &config.endpoint {
        args.extend(["--endpoint".into(), endpoint.clone()]);
    }
    if let Some(region) = &config.region {
        args.extend(["--region".into(), region.clone()]);
    }
    if let Some(file) = &config.credentials_file {
        args.extend(["--s3-credentials".into(), file.display().to_string()]);
    }
    args
}

/// The lab's control plane as its `archiver` identity (the coordinator for labs older than it).
pub fn control_args() -> anyhow::Result<ControlArgs> {
    LabState::current()?.control_args(&["archiver", "coordinator"])
}

/// After a scenario run: exports `report` to `--export`, else to the lab's
/// `[archive]` (`lab`: the run was on the lab), else nowhere. Prints where
/// it went on stderr.
pub async fn after_run(
    args: &ExportArgs,
    lab: Option<&ArchiveConfig>,
    report: &Report,
) -> anyhow::Result<()> {
    let url = match (&args.export, lab) {
        (Some(url), _) => url.clone(),
        (None, Some(config)) => config.validate().map_err(anyhow::Error::msg)?,
        (None, None) => return Ok(()),
    };
    let region = args
        .region
        .clone()
        .or_else(|| lab.and_then(|c| c.region.clone()))
        .unwrap_or_else(|| DEFAULT_REGION.into());
    let file = args
        .credentials
        .clone()
        .or_else(|| lab.and_then(|c| c.credentials_file.clone()));
    let config = S3Config {
        url,
        endpoint: args
            .endpoint
            .clone()
            .or_else(|| lab.and_then(|c| c.endpoint.clone())),
        region,
        credentials: Credentials::load(file.as_deref(), "default")?,
    };
    let archive = Archive::open(&config)?;
    let done = super::export::export(&archive, report).await.map_err(|e| {
        anyhow::anyhow!(
            "report {} is kept in JetStream but was not exported: {e}",
            report.id
        )
    })?;
    eprintln!(
        "geolb: exported report {} to s3://{}/{}",
        report.id, config.url.bucket, done.report_key
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archiver_runs_as_the_archiver_identity() {
        let config: ArchiveConfig = toml::from_str(
            "to = \"s3://geolb/lab\"\nendpoint = \"http://127.0.0.1:8333\"\nflush_interval = \"2s\"",
        )
        .unwrap();
        assert!(config.telemetry);
        assert_eq!(config.max_batch_bytes, 10 << 20);
        let args = archiver_args(&config, "nats://127.0.0.1:14000", "/lab/keys/archiver.nk");
        assert_eq!(
            args.join(" "),
            "--control nats://127.0.0.1:14000 --nkey-file /lab/keys/archiver.nk archive --to s3://geolb/lab --flush-interval 2000ms --max-batch-bytes 10485760 --endpoint http://127.0.0.1:8333"
        );
        let bad: ArchiveConfig = toml::from_str("to = \"geolb/lab\"").unwrap();
        assert!(bad.validate().unwrap_err().contains("archive.to"));
        assert!(toml::from_str::<ArchiveConfig>("to = \"s3://geolb\"\ncolour = 1").is_err());
    }
}

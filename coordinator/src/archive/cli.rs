//! `geolb archive --to s3://BUCKET/PREFIX` (the long-running archiver),
//! `geolb report export ID|--all --to s3://...`, and the S3 flags every
//! command that writes to S3 shares (`--endpoint`, `--region`,
//! `--s3-credentials`, each with a `GEOLB_S3_*` variable).

use super::archiver::{self, Options};
use super::batch::Limits;
use super::credentials::{Credentials, CredentialsError};
use super::metrics::{self, Metrics};
use super::store::{Archive, S3Config, DEFAULT_REGION};
use super::stream::{self, StreamLimits, DURABLE};
use super::url::S3Url;
use crate::control::Control;
use crate::UsageError;
use geolb_proto::connect::ControlArgs;
use geolb_proto::WireDuration;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The S3 endpoint, region and credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// S3 endpoint URL (default AWS, https://s3.<region>.amazonaws.com; Backblaze B2: https://s3.<region>.backblazeb2.com).
    #[arg(long, visible_alias = "s3-endpoint", env = "GEOLB_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3 region (B2: the one in its endpoint, e.g. us-west-004).
    #[arg(long, visible_alias = "s3-region", env = "GEOLB_S3_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
    /// AWS credentials file (else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long = "s3-credentials", env = "GEOLB_S3_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// Profile of the credentials file.
    #[arg(
        long = "s3-profile",
        env = "GEOLB_S3_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
}

impl S3Args {
    /// The store settings for `url`, credentials read now.
    pub fn config(&self, url: S3Url) -> Result<S3Config, CredentialsError> {
        Ok(S3Config {
            url,
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            credentials: Credentials::load(self.credentials.as_deref(), &self.profile)?,
        })
    }
}

/// Parses `s3://BUCKET/PREFIX` for clap.
pub fn parse_url(text: &str) -> Result<S3Url, String> {
    text.parse()
        .map_err(|e: super::url::BadS3Url| e.to_string())
}

/// Parses `10MiB`, `512KiB`, `1GiB`, `10MB` or a number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size: use e.g. 10MiB, 512KiB or 1048576"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{other:?} is not a size unit: use KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    n.checked_mul(scale)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// `geolb archive`: the telemetry stream to S3, until SIGTERM.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// Where: s3://BUCKET/PREFIX.
    #[arg(long, env = "GEOLB_ARCHIVE_TO", value_parser = parse_url)]
    pub to: S3Url,
    /// Endpoint, region, credentials.
    #[command(flatten)]
    pub s3: S3Args,
    /// Name of the durable consumer (one per archive).
    #[arg(long, env = "GEOLB_ARCHIVE_DURABLE", default_value = DURABLE)]
    pub durable: String,
    /// Store a batch once it holds this much NDJSON (before gzip).
    #[arg(long, env = "GEOLB_ARCHIVE_MAX_BATCH_BYTES", default_value = "10MiB", value_parser = parse_size)]
    pub max_batch_bytes: u64,
    /// Store a batch at the latest this long after its first message.
    #[arg(long, env = "GEOLB_ARCHIVE_FLUSH_INTERVAL", default_value = "60s")]
    pub flush_interval: WireDuration,
    /// After SIGTERM, how long storing the last batch may take.
    #[arg(long, env = "GEOLB_ARCHIVE_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: WireDuration,
    /// Longest wait between two attempts of a failing S3 request (the backoff starts at 0.5 s).
    #[arg(long, env = "GEOLB_ARCHIVE_MAX_RETRY_DELAY", default_value = "30s")]
    pub max_retry_delay: WireDuration,
    /// Serve the archiver's metrics (Prometheus text) at http://ADDR/metrics.
    #[arg(long, env = "GEOLB_ARCHIVE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// When the stream is created here: oldest message it keeps.
    #[arg(long, default_value = "24h")]
    pub stream_max_age: WireDuration,
    /// When the stream is created here: bytes it keeps.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub stream_max_bytes: u64,
}

/// Messages in one batch at most; the consumer allows twice as many unacknowledged.
pub const MAX_BATCH_MESSAGES: usize = 100_000;

impl ArchiveArgs {
    fn options(&self) -> Result<Options, UsageError> {
        geolb_proto::subject::validate_name("durable", &self.durable)
            .map_err(|e| UsageError(e.to_string()))?;
        if self.flush_interval.0 < Duration::from_millis(100) {
            return Err(UsageError("--flush-interval: use 100ms or more".into()));
        }
        Ok(Options {
            durable: self.durable.clone(),
            limits: Limits {
                max_bytes: self.max_batch_bytes as usize,
                max_messages: MAX_BATCH_MESSAGES,
                max_age: self.flush_interval.0,
            },
            flush_interval: self.flush_interval.0,
            shutdown_timeout: self.shutdown_timeout.0,
            max_retry_delay: self.max_retry_delay.0.max(Duration::from_millis(500)),
        })
    }
}

/// Runs `geolb archive`; the control plane from `control`, or the lab's.
pub async fn run(control: &ControlArgs, args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let archive = Archive::open(&args.s3.config(args.to.clone())?)?;
    archive.check().await?;
    let control = match control.url {
        Some(_) => control.clone(),
        None => super::lab::control_args()?,
    };
    let (control, violations) = super::connect::connect(&control).await?;
    let limits = StreamLimits {
        max_age: args.stream_max_age.0,
        max_bytes: args.stream_max_bytes as i64,
    };
    let stream = stream::ensure(&control, limits, Some(&violations)).await?;
    let ack_wait = options.flush_interval * 2 + options.shutdown_timeout + Duration::from_secs(60);
    let pending = (MAX_BATCH_MESSAGES * 2) as i64;
    let consumer = stream::consumer(
        &control,
        &stream,
        &options.durable,
        ack_wait,
        pending,
        Some(&violations),
    )
    .await?;
    let metrics = Metrics::default();
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        tokio::spawn(metrics::serve(listener, metrics.clone()));
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    let outcome = archiver::run(
        &control, &stream, consumer, &archive, &options, &metrics, shutdown,
    )
    .await;
    let s = metrics.snapshot();
    tracing::info!(summary = ?s, "The archiver stopped.");
    eprintln!(
        "geolb: archived {} messages in {} objects ({} bytes, {} retries) to {}",
        s.messages, s.objects, s.bytes_stored, s.retries, args.to
    );
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `token` on SIGTERM or SIGINT.
async fn on_signal(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("Stopping: storing the batch held, then exiting.");
    token.cancel();
}

/// `geolb report export ID|--all --to s3://...`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportReportArgs {
    /// The report id (from `report ls`).
    #[arg(required_unless_present = "all")]
    pub id: Option<String>,
    /// Every stored report.
    #[arg(long, conflicts_with = "id")]
    pub all: bool,
    /// Where: s3://BUCKET/PREFIX.
    #[arg(long, env = "GEOLB_ARCHIVE_TO", value_parser = parse_url)]
    pub to: S3Url,
    /// Endpoint, region, credentials.
    #[command(flatten)]
    pub s3: S3Args,
}

/// Runs `geolb report export`.
pub async fn export_reports(
    control: &Control,
    args: &ExportReportArgs,
) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(&args.s3.config(args.to.clone())?)?;
    let reports = match &args.id {
        Some(id) => vec![crate::report::store::get(control, id).await?],
        None => crate::report::store::list(control).await?,
    };
    if reports.is_empty() {
        eprintln!("geolb: no report is stored on {}", control.url());
    }
    for report in &reports {
        let done = super::export::export(&archive, report).await?;
        crate::emit(&format!(
            "{} s3://{}/{}\n",
            report.id,
            archive.url().bucket,
            done.report_key
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--export s3://...` of `scenario run`, and its S3 flags (named `--s3-*`
/// there, since `--region` names a region of the lab).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExportArgs {
    /// Also export the report to s3://BUCKET/PREFIX (default: the lab's [archive] `to`).
    #[arg(long, global = true, env = "GEOLB_EXPORT", value_parser = parse_url)]
    pub export: Option<S3Url>,
    /// S3 endpoint URL for --export.
    #[arg(long = "s3-endpoint", global = true, env = "GEOLB_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3 region for --export.
    #[arg(long = "s3-region", global = true, env = "GEOLB_S3_REGION")]
    pub region: Option<String>,
    /// AWS credentials file for --export (else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long = "s3-credentials", global = true, env = "GEOLB_S3_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        let cases = [
            ("10MiB", Some(10 << 20)),
            ("512KiB", Some(512 << 10)),
            ("1GiB", Some(1 << 30)),
            ("10MB", Some(10_000_000)),
            ("4096", Some(4096)),
            ("0", None),
            ("ten", None),
            ("10XB", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).ok(), want, "{text}");
        }
    }
}

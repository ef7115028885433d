//! Logging set-up shared by both binaries: text or JSON lines on stderr,
//! colour only on a terminal, the level from `RUST_LOG`.

use std::io::IsTerminal;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log output format (`--log-format`, `GEOLB_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber; `default_level` applies when `RUST_LOG`
/// is unset or not a list of `level` and `target=level` directives.
///
/// A [`Targets`] filter, not an `EnvFilter`: that one compiles regular
/// expressions at start, and the half a megabyte of regex code it runs
/// stays resident in every idle agent (the bench's `agent_idle` finding).
pub fn init(format: LogFormat, default_level: &str) {
    let wanted = std::env::var("RUST_LOG").ok();
    let (filter, refused) = match wanted.as_deref().map(str::parse::<Targets>) {
        Some(Ok(filter)) => (filter, None),
        refused => (
            default_level.parse().unwrap_or_default(),
            refused.and(wanted),
        ),
    };
    // The builder's own filter (INFO by default) lets all through: `filter` decides.
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.finish().with(filter).init(),
        LogFormat::Json => builder.json().finish().with(filter).init(),
    }
    if let Some(refused) = refused {
        tracing::warn!(
            rust_log = %refused,
            "RUST_LOG is not a list of level and target=level directives; logging at {default_level}."
        );
    }
}

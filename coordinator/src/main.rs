//! `geolb`: parse the command line, set up logging, run, print errors as one line.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match geolb::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing(cli.log_format);
    match geolb::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => geolb::cli::report(&error),
    }
}

fn init_tracing(format: geolb::cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        geolb::cli::LogFormat::Text => builder.init(),
        geolb::cli::LogFormat::Json => builder.json().init(),
    }
}

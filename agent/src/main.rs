//! `geolb-agent`: parse flags, set up logging, run.

use clap::Parser;
use geolb_agent::cli::{Cli, Command, LogFormat};
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => geolb_agent::run::run(*args).await,
        }
    });
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("geolb-agent: {message}");
    std::process::exit(2)
}

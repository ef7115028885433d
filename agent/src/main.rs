//! `geolb-agent`: parse flags, set up logging, run.

use clap::Parser;
use geolb_agent::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    // hickory-server logs every query at info.
    geolb_proto::logging::init(cli.log_format, "info,hickory_server=warn");
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
            Command::Client(args) => geolb_client::run(*args).await,
            Command::Wan(args) => geolb_agent::wan::run(*args).await,
            Command::Geodns(args) => geolb_agent::geodns::run(*args).await,
            Command::Anycast(args) => geolb_agent::anycast::run(*args).await,
            Command::FlyServer(args) => geolb_agent::fly::run(*args).await,
        }
    });
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("geolb-agent: {message}");
    std::process::exit(2)
}

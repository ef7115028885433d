//! `geolb`: parse the command line, set up logging, run, print errors as one line.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match geolb::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    geolb_proto::logging::init(cli.log_format, "warn");
    match geolb::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => geolb::cli::report(&error),
    }
}

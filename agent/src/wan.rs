//! `geolb-agent wan`: runs the WAN link emulator (`geolb-wan`) for the links
//! in a file and, given a control plane, obeys `list` and `set` on
//! `geolb.wan.<id>.<verb>` as the micro service `geolb-wan` ([`crate::links`]),
//! so scenarios cut, reset, slow and heal links through the back channel.

use crate::links::Links;
use anyhow::Context as _;
use geolb_proto::connect::ControlArgs;
use geolb_proto::wan::LinkSpec;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

/// Flags of `geolb-agent wan`.
#[derive(Debug, clap::Args)]
pub struct WanArgs {
    /// Emulator id on the control plane.
    #[arg(long, env = "GEOLB_ID", default_value = "wan")]
    pub id: String,
    /// JSON file with the links: `[{"name", "listen", "target", "config", "path"}]`.
    #[arg(long, env = "GEOLB_WAN_LINKS")]
    pub links: PathBuf,
    /// Control-plane connection; without --control the links only run.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Runs the links until SIGTERM or SIGINT.
pub async fn run(args: WanArgs) -> anyhow::Result<i32> {
    geolb_proto::subject::validate_name("emulator id", &args.id)?;
    let text = std::fs::read_to_string(&args.links)
        .with_context(|| format!("cannot read the links file {}", args.links.display()))?;
    let specs: Vec<LinkSpec> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of links", args.links.display()))?;
    let mut links = Links::new();
    for spec in &specs {
        links.add(spec).await?;
    }
    tracing::info!(links = specs.len(), "WAN links up.");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stopped = async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    match args.control.url.is_some() {
        true => tokio::select! {
            served = serve(&args, &links) => served?,
            _ = stopped => {}
        },
        false => stopped.await,
    }
    tracing::info!("WAN links stopping.");
    Ok(0)
}

async fn serve(args: &WanArgs, links: &Links) -> anyhow::Result<()> {
    let client = args
        .control
        .options(&format!("geolb-wan {}", args.id))
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(args.control.url.clone().unwrap_or_default())
        .await?;
    links.serve(&client, &args.id).await
}

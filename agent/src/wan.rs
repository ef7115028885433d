//! `geolb-agent wan`: runs the WAN link emulator (`geolb-wan`) for the links
//! in a file and, given a control plane, obeys `list` and `set` on
//! `geolb.wan.<id>.<verb>` as the micro service `geolb-wan`, so scenarios
//! cut, reset, slow and heal links through the back channel.

use anyhow::Context as _;
use async_nats::service::{Request, ServiceExt};
use futures::StreamExt;
use geolb_proto::connect::ControlArgs;
use geolb_proto::wan::{self, LinkSpec, LinkView, SetLinks, WanReply};
use geolb_proto::{Command, ErrorKind, ReplyError, PROTOCOL_VERSION};
use geolb_wan::Emulator;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

/// Flags of `geolb-agent wan`.
#[derive(Debug, clap::Args)]
pub struct WanArgs {
    /// Emulator id on the control plane.
    #[arg(long, env = "GEOLB_ID", default_value = "wan")]
    pub id: String,
    /// JSON file with the links: `[{"name", "listen", "target", "config"}]`.
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
    let emulator = Emulator::new();
    for spec in &specs {
        let listen = spec
            .listen
            .parse()
            .with_context(|| format!("link {}: bad listen address", spec.name))?;
        // A name (a container's, in `lab up --docker`) is resolved at each
        // connection, so a target may start after the emulator.
        let target = &spec.target;
        emulator
            .add(&spec.name, listen, target, spec.config)
            .await?;
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
            served = serve(&args, &emulator) => served?,
            _ = stopped => {}
        },
        false => stopped.await,
    }
    tracing::info!("WAN links stopping.");
    Ok(0)
}

async fn serve(args: &WanArgs, emulator: &Emulator) -> anyhow::Result<()> {
    let client = args
        .control
        .options(&format!("geolb-wan {}", args.id))
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(args.control.url.clone().unwrap_or_default())
        .await?;
    let service = client
        .service_builder()
        .description("nats-geolb WAN link emulator")
        .start(wan::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot register the emulator service: {e}"))?;
    let group = service.group(format!("geolb.wan.{}", args.id));
    let list = group
        .endpoint("list")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let set = group
        .endpoint("set")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut requests = futures::stream::select(list.map(|r| (false, r)), set.map(|r| (true, r)));
    while let Some((is_set, request)) = requests.next().await {
        let reply = answer(emulator, is_set, &request);
        let _ = request
            .respond(Ok(serde_json::to_vec(&reply)?.into()))
            .await;
    }
    Ok(())
}

fn answer(emulator: &Emulator, is_set: bool, request: &Request) -> WanReply {
    let (id, outcome) = match Command::decode(&request.message.payload) {
        Err(e) => (String::new(), Err(e)),
        Ok(command) if is_set => (command.id.clone(), set(emulator, &command)),
        Ok(command) => (command.id, Ok(emulator.names())),
    };
    let (links, error) = match outcome {
        Ok(names) => (views(emulator, &names), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    WanReply {
        v: PROTOCOL_VERSION,
        id,
        ok: error.is_none(),
        error,
        links,
    }
}

/// Applies a `set` to every matching link; nothing changes when none match.
fn set(emulator: &Emulator, command: &Command) -> Result<Vec<String>, ReplyError> {
    let args: SetLinks = serde_json::from_value(command.args.clone()).map_err(|e| {
        ReplyError::new(
            ErrorKind::InvalidArgument,
            format!("bad arguments for set: {e}"),
        )
    })?;
    let names: Vec<String> = emulator
        .names()
        .into_iter()
        .filter(|n| args.matches(n))
        .collect();
    if names.is_empty() {
        return Err(ReplyError::new(
            ErrorKind::InvalidArgument,
            format!("no link matches {:?}; `list` shows the links", args.links),
        ));
    }
    for name in &names {
        let _ = emulator.set(name, args.config);
    }
    tracing::info!(links = names.len(), config = ?args.config, "Links changed.");
    Ok(names)
}

fn views(emulator: &Emulator, names: &[String]) -> Vec<LinkView> {
    emulator
        .list()
        .into_iter()
        .filter(|l| names.contains(&l.name))
        .map(|l| LinkView {
            name: l.name,
            listen: l.listen.to_string(),
            target: l.target.to_string(),
            config: l.config,
            open: l.stats.open,
        })
        .collect()
}

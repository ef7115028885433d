//! `geolb-agent anycast`: runs the lab's anycast router
//! ([`geolb_wan::anycast`]) from a configuration file and, given a control
//! plane, serves `state`, `withdraw`, `announce` and `set` on
//! `geolb.anycast.<id>.<verb>` as the micro service `geolb-anycast`, and
//! publishes its changes (health, withdrawals, flips) on
//! `geolb.routing.<id>.<kind>`.
//!
//! It is its own process rather than more links of `geolb-agent wan`: its
//! vantages forward to the emulator's links (which carry the delay and the
//! partitions), so it is one hop the emulator measures like any client; and
//! it has its own identity on the control plane, with only its own rights.

use crate::routing;
use geolb_proto::connect::ControlArgs;
use geolb_proto::routing::anycast::{
    self, AnycastConfig, AnycastReply, AnycastState, RegionArgs, SetAnycast,
};
use geolb_proto::{Command, ErrorKind, ReplyError, PROTOCOL_VERSION};
use geolb_wan::anycast::Router;
use std::path::PathBuf;

/// Flags of `geolb-agent anycast`.
#[derive(Debug, clap::Args)]
pub struct AnycastArgs {
    /// Router id on the control plane.
    #[arg(long, env = "GEOLB_ID", default_value = "anycast")]
    pub id: String,
    /// JSON file with the mode, vantages, servers, latency matrix and flip distribution.
    #[arg(long, env = "GEOLB_ANYCAST_CONFIG")]
    pub config: PathBuf,
    /// Control-plane connection; without --control the router only routes.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Routes until SIGTERM or SIGINT.
pub async fn run(args: AnycastArgs) -> anyhow::Result<i32> {
    geolb_proto::subject::validate_name("anycast router id", &args.id)?;
    let config: AnycastConfig = routing::read_config(&args.config, "anycast configuration")?;
    let router = Router::start(config).await?;
    let serve = async {
        if args.control.url.is_none() {
            return std::future::pending().await;
        }
        let client = routing::connect(&args.control, &format!("geolb-anycast {}", args.id)).await?;
        tokio::spawn(routing::publish_changes(
            client.clone(),
            args.id.clone(),
            geolb_proto::routing::Component::Anycast,
            router.changes(),
        ));
        let group = format!("geolb.anycast.{}", args.id);
        let verbs = ["state", "withdraw", "announce", "set"];
        let answer = |verb: &str, command| reply(&router, verb, command);
        routing::serve(
            &client,
            anycast::SERVICE_NAME,
            "nats-geolb anycast router",
            group,
            &verbs,
            answer,
        )
        .await
    };
    tokio::select! {
        served = serve => served?,
        stopped = routing::stopped() => stopped?,
    }
    tracing::info!("Anycast router stopping.");
    Ok(0)
}

/// The reply to one request.
fn reply(router: &Router, verb: &str, command: Result<Command, ReplyError>) -> AnycastReply {
    let (id, outcome) = match command {
        Err(e) => (String::new(), Err(e)),
        Ok(command) => (command.id.clone(), apply(router, verb, &command)),
    };
    AnycastReply {
        v: PROTOCOL_VERSION,
        id,
        ok: outcome.is_ok(),
        error: outcome.as_ref().err().cloned(),
        state: outcome.ok(),
    }
}

fn apply(router: &Router, verb: &str, command: &Command) -> Result<AnycastState, ReplyError> {
    let bad = |e: String| ReplyError::new(ErrorKind::InvalidArgument, e);
    let args = || command.args.clone();
    match verb {
        "withdraw" | "announce" => {
            let region: RegionArgs = serde_json::from_value(args())
                .map_err(|e| bad(format!("bad arguments for {verb}: {e}")))?;
            let outcome = match verb {
                "withdraw" => router.withdraw(&region.region),
                _ => router.announce(&region.region),
            };
            outcome.map_err(|e| bad(e.to_string()))
        }
        "set" => {
            let set: SetAnycast = serde_json::from_value(args())
                .map_err(|e| bad(format!("bad arguments for set: {e}")))?;
            Ok(router.set(&set))
        }
        _ => Ok(router.state()),
    }
}

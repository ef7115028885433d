//! `geolb-agent geodns`: runs the lab's GeoDNS ([`geolb_geodns`]) from a
//! configuration file and, given a control plane, serves `state` and `set`
//! on `geolb.dns.<id>.<verb>` as the micro service `geolb-dns`, and
//! publishes its changes (health, answers, faults) on
//! `geolb.routing.<id>.<kind>`.

use crate::routing;
use geolb_geodns::GeoDns;
use geolb_proto::connect::ControlArgs;
use geolb_proto::routing::dns::{self, DnsConfig, DnsFaults, DnsReply};
use geolb_proto::{Command, ErrorKind, ReplyError, PROTOCOL_VERSION};
use std::path::PathBuf;

/// Flags of `geolb-agent geodns`.
#[derive(Debug, clap::Args)]
pub struct GeoDnsArgs {
    /// GeoDNS id on the control plane.
    #[arg(long, env = "GEOLB_ID", default_value = "dns")]
    pub id: String,
    /// JSON file with the name, TTL, policy, health checks, listeners and servers.
    #[arg(long, env = "GEOLB_DNS_CONFIG")]
    pub config: PathBuf,
    /// Control-plane connection; without --control the GeoDNS only answers.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Answers until SIGTERM or SIGINT.
pub async fn run(args: GeoDnsArgs) -> anyhow::Result<i32> {
    geolb_proto::subject::validate_name("GeoDNS id", &args.id)?;
    let config: DnsConfig = routing::read_config(&args.config, "GeoDNS configuration")?;
    let dns = GeoDns::start(config).await?;
    let serve = async {
        if args.control.url.is_none() {
            return std::future::pending().await;
        }
        let client = routing::connect(&args.control, &format!("geolb-dns {}", args.id)).await?;
        tokio::spawn(routing::publish_changes(
            client.clone(),
            args.id.clone(),
            geolb_proto::routing::Component::Dns,
            dns.changes(),
        ));
        let group = format!("geolb.dns.{}", args.id);
        let answer = |verb: &str, command| reply(&dns, verb, command);
        routing::serve(
            &client,
            dns::SERVICE_NAME,
            "nats-geolb GeoDNS",
            group,
            &["state", "set"],
            answer,
        )
        .await
    };
    tokio::select! {
        served = serve => served?,
        stopped = routing::stopped() => stopped?,
    }
    tracing::info!("GeoDNS stopping.");
    dns.stop().await;
    Ok(0)
}

/// The reply to one request.
fn reply(dns: &GeoDns, verb: &str, command: Result<Command, ReplyError>) -> DnsReply {
    let (id, outcome) = match command {
        Err(e) => (String::new(), Err(e)),
        Ok(command) if verb == "set" => (command.id.clone(), set(dns, &command)),
        Ok(command) => (command.id, Ok(dns.state())),
    };
    DnsReply {
        v: PROTOCOL_VERSION,
        id,
        ok: outcome.is_ok(),
        error: outcome.as_ref().err().cloned(),
        state: outcome.ok(),
    }
}

fn set(dns: &GeoDns, command: &Command) -> Result<dns::DnsState, ReplyError> {
    let faults: DnsFaults = serde_json::from_value(command.args.clone()).map_err(|e| {
        ReplyError::new(
            ErrorKind::InvalidArgument,
            format!("bad arguments for set: {e}"),
        )
    })?;
    dns.set_faults(faults)
        .map_err(|e| ReplyError::new(ErrorKind::InvalidArgument, e.to_string()))
}

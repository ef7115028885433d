//! Command-line flags of `geolb-agent`; every flag also reads a `GEOLB_*`
//! environment variable, so containers configure the agent without a
//! command line. On Fly.io, `FLY_MACHINE_ID` and `FLY_REGION` fill in the
//! id and region when they are not given.

use crate::supervisor::RestartPolicy;
use clap::{Parser, Subcommand};
pub use geolb_client::ClientArgs;
use geolb_proto::connect::ControlArgs;
pub use geolb_proto::logging::LogFormat;
use geolb_proto::{Role, WireDuration, MAX_REPLICAS};
use std::ffi::OsString;
use std::path::PathBuf;

/// The nats-geolb sidecar: supervises nats-server or a test client and obeys
/// the back channel.
#[derive(Debug, Parser)]
#[command(name = "geolb-agent", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "GEOLB_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The agent's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Supervise CMD (after `--`) and obey the control plane.
    Run(Box<RunArgs>),
    /// Run the headless NATS test client (elects a server, sends and measures traffic).
    Client(Box<ClientArgs>),
    /// Run the WAN link emulator for the links in a file, driven over the control plane.
    Wan(Box<crate::wan::WanArgs>),
    /// Run the lab's GeoDNS (an authoritative DNS server per client region), driven over the control plane.
    Geodns(Box<crate::geodns::GeoDnsArgs>),
    /// Run the lab's anycast router (BGP with withdrawals and flips, or an edge proxy), driven over the control plane.
    Anycast(Box<crate::anycast::AnycastArgs>),
    /// On Fly.io: write nats-server's configuration from Fly's private DNS, then `run` it.
    FlyServer(Box<crate::fly::FlyServerArgs>),
}

/// Flags of `geolb-agent run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Agent id, unique in the fleet (default: FLY_MACHINE_ID, else the host name).
    #[arg(long, env = "GEOLB_ID")]
    pub id: Option<String>,
    /// Region (default: FLY_REGION, else "local").
    #[arg(long, env = "GEOLB_REGION")]
    pub region: Option<String>,
    /// What the child is.
    #[arg(long, env = "GEOLB_ROLE", default_value = "server")]
    pub role: Role,
    /// Control-plane connection; without --control the agent only supervises.
    #[command(flatten)]
    pub control: ControlArgs,
    /// Public nkey whose signed commands are obeyed (repeatable; GEOLB_TRUST comma separated).
    /// Without any, unsigned commands are obeyed too (dev mode).
    #[arg(
        long = "trust",
        env = "GEOLB_TRUST",
        value_delimiter = ',',
        value_name = "PUBKEY"
    )]
    pub trust: Vec<String>,
    /// Longest validity accepted for a signed command (expires_at - issued_at).
    #[arg(long, env = "GEOLB_COMMAND_VALIDITY", default_value = "60s")]
    pub command_validity: WireDuration,
    /// Clock difference tolerated between the coordinator and this agent.
    #[arg(long, env = "GEOLB_CLOCK_SKEW", default_value = "30s")]
    pub clock_skew: WireDuration,
    /// Commands accepted per second; more are answered `rate_limited`.
    #[arg(long, env = "GEOLB_COMMAND_RATE", default_value_t = crate::admission::gate::DEFAULT_RATE)]
    pub command_rate: u32,
    /// Commands accepted in a burst above the rate.
    #[arg(long, env = "GEOLB_COMMAND_BURST", default_value_t = crate::admission::gate::DEFAULT_BURST)]
    pub command_burst: u32,
    /// When a child that exited on its own is started again.
    #[arg(long, env = "GEOLB_RESTART", value_enum, default_value = "on-failure")]
    pub restart: RestartPolicy,
    /// nats-server monitoring URL (http://HOST:PORT), for metrics and health gates.
    #[arg(long, env = "GEOLB_MONITOR")]
    pub monitor: Option<String>,
    /// Heartbeat interval.
    #[arg(long, env = "GEOLB_HEARTBEAT", default_value = "1s")]
    pub heartbeat: WireDuration,
    /// Metrics interval.
    #[arg(long, env = "GEOLB_METRICS_INTERVAL", default_value = "5s")]
    pub metrics_interval: WireDuration,
    /// Replicas of CMD to supervise (each gets GEOLB_REPLICA=<index>).
    #[arg(long, env = "GEOLB_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=MAX_REPLICAS as i64))]
    pub replicas: u32,
    /// Where installed nats-server versions live, as <dir>/<version>/nats-server.
    #[arg(long, env = "GEOLB_SERVERS_DIR", default_value = ".tools/nats-server")]
    pub servers_dir: PathBuf,
    /// Where binaries fetched for `upgrade --to obj:NAME` are kept [default: <servers-dir>/obj].
    #[arg(long, env = "GEOLB_OBJECTS_DIR")]
    pub objects_dir: Option<PathBuf>,
    /// What a SIGTERM to the agent does: forward it, or drain the children
    /// in lame-duck mode (for `docker stop` and Fly stops of a server).
    #[arg(long, env = "GEOLB_ON_TERM", value_enum, default_value = "forward")]
    pub on_term: OnTerm,
    /// With `--on-term drain`: SIGINT after this long if clients are still
    /// connected; keep it under the container's stop timeout (Docker: 10 s).
    #[arg(long, env = "GEOLB_TERM_DRAIN_GRACE", default_value = "8s")]
    pub term_drain_grace: WireDuration,
    /// Grace before SIGKILL for `term` stops.
    #[arg(long, env = "GEOLB_TERM_GRACE", default_value = "10s")]
    pub term_grace: WireDuration,
    /// Grace before SIGKILL for lame-duck (`ldm`) stops.
    #[arg(long, env = "GEOLB_LDM_GRACE", default_value = "2m")]
    pub ldm_grace: WireDuration,
    /// How long an upgrade's health gate may take.
    #[arg(long, env = "GEOLB_UPGRADE_TIMEOUT", default_value = "60s")]
    pub upgrade_timeout: WireDuration,
    /// Smallest restart backoff.
    #[arg(long, env = "GEOLB_BACKOFF_MIN", default_value = "200ms")]
    pub backoff_min: WireDuration,
    /// Largest restart backoff.
    #[arg(long, env = "GEOLB_BACKOFF_MAX", default_value = "30s")]
    pub backoff_max: WireDuration,
    /// How long the control plane may stay away (or unreached since the
    /// start) before the agent logs an ERROR with the reason and its
    /// `/healthz` (on --prometheus-listen) fails; the agent keeps retrying.
    #[arg(long, env = "GEOLB_CONTROL_ALARM", default_value = "30s")]
    pub control_alarm: WireDuration,
    /// Events kept while the control plane is away; the oldest are dropped beyond.
    #[arg(long, env = "GEOLB_OUTBOX", default_value_t = 10_000)]
    pub outbox: usize,
    /// Serve Prometheus metrics on `GET /metrics` at this IP:PORT (e.g. `[::]:9091`).
    #[arg(long, env = "GEOLB_PROMETHEUS_LISTEN", value_name = "ADDR")]
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Put a listener of the child behind the agent's own emulated link:
    /// KIND=LISTEN->TARGET (KIND client, websocket, leafnode or gateway;
    /// repeatable; GEOLB_FRONT comma separated), e.g.
    /// `client=0.0.0.0:4222->127.0.0.1:14222`. Announced on the control plane
    /// as the links of emulator <id>, so scenarios can partition or degrade
    /// this region on any host.
    #[arg(
        long = "front",
        env = "GEOLB_FRONT",
        value_delimiter = ',',
        value_name = "KIND=LISTEN->TARGET"
    )]
    pub front: Vec<crate::front::Front>,
    /// How long a front link's target may stay closed before the agent says so (ERROR and an event).
    #[arg(long, env = "GEOLB_FRONT_TIMEOUT", default_value = "30s")]
    pub front_timeout: WireDuration,
    /// Supervise this sibling Docker container (name or id) instead of CMD,
    /// through the Docker API (DOCKER_HOST, default the local socket). Its
    /// exits are reported, restarts are left to Docker's restart policy, and
    /// a SIGTERM to the agent ends the agent only. Needs the `docker` feature.
    #[arg(
        long,
        env = "GEOLB_CONTAINER",
        value_name = "NAME",
        conflicts_with = "command"
    )]
    pub container: Option<String>,
    /// The command to supervise (none with --container).
    #[arg(required_unless_present = "container", last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// What a SIGTERM received by the agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnTerm {
    /// Pass it on to the children, like the other signals.
    Forward,
    /// Stop the children in lame-duck mode (nats-server drains its clients).
    Drain,
}

impl RunArgs {
    /// Where fetched binaries are kept: `--objects-dir`, else `<servers-dir>/obj`.
    pub fn objects_dir(&self) -> PathBuf {
        self.objects_dir
            .clone()
            .unwrap_or_else(|| self.servers_dir.join("obj"))
    }

    /// The id: the flag, else FLY_MACHINE_ID.
    pub fn id(&self) -> Option<String> {
        self.id.clone().or_else(|| {
            std::env::var("FLY_MACHINE_ID")
                .ok()
                .filter(|s| !s.is_empty())
        })
    }

    /// The region: the flag, else FLY_REGION, else "local".
    pub fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| std::env::var("FLY_REGION").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "local".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_command_line() {
        let cli = Cli::try_parse_from([
            "geolb-agent",
            "run",
            "--id",
            "lon-1",
            "--region",
            "lon",
            "--role",
            "server",
            "--control",
            "nats://127.0.0.1:4222",
            "--restart",
            "always",
            "--heartbeat",
            "500ms",
            "--replicas",
            "2",
            "--",
            "nats-server",
            "-c",
            "x.conf",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("a run command")
        };
        assert_eq!(run.id().as_deref(), Some("lon-1"));
        assert_eq!(run.region(), "lon");
        assert_eq!(run.restart, RestartPolicy::Always);
        assert_eq!(run.heartbeat, WireDuration::from_millis(500));
        assert_eq!(run.command, ["nats-server", "-c", "x.conf"]);
    }

    #[test]
    fn refuses_bad_flags() {
        let bad: [&[&str]; 5] = [
            &["geolb-agent", "run"],
            &["geolb-agent", "run", "--replicas", "0", "--", "sleep", "1"],
            &[
                "geolb-agent",
                "run",
                "--replicas",
                "5000",
                "--",
                "sleep",
                "1",
            ],
            &[
                "geolb-agent",
                "run",
                "--heartbeat",
                "-1s",
                "--",
                "sleep",
                "1",
            ],
            &["geolb-agent", "run", "--role", "router", "--", "sleep", "1"],
        ];
        for args in bad {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}

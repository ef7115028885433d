//! Flags of `geolb-agent client`, each with a `GEOLB_CLIENT_*` variable
//! (`GEOLB_ID` and `GEOLB_REGION` as for `run`), and the identity they give.

use geolb_proto::client::MAX_COUNT;
use geolb_proto::WireDuration;

/// How the client chooses its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Ours: probe every candidate, lowest RTT wins, hysteresis.
    Rtt,
    /// Stock async-nats: every URL, shuffled.
    Random,
    /// Stock async-nats with `retain_servers_order`: the first that answers.
    Ordered,
    /// A GeoDNS name (`--target`), resolved by the client itself on every
    /// connection attempt (`--resolver`); the answers dialled in order.
    Dns,
    /// One address announced from every region (`--target`); the network
    /// picks the site.
    Anycast,
}

impl Strategy {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Rtt => "rtt",
            Strategy::Random => "random",
            Strategy::Ordered => "ordered",
            Strategy::Dns => "dns",
            Strategy::Anycast => "anycast",
        }
    }

    /// Whether the routing system, not the client, picks the server
    /// (`--target` instead of `--server`).
    pub fn routed(self) -> bool {
        matches!(self, Strategy::Dns | Strategy::Anycast)
    }
}

/// The traffic a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Small JSON-like messages: 200 B at 10/s.
    Json,
    /// HTML pages: 20 KiB at 2/s.
    Html,
    /// A video-like stream of large chunks: 32 KiB at 30/s.
    Video,
}

impl Profile {
    /// Default payload size in bytes.
    pub fn size(self) -> usize {
        match self {
            Profile::Json => 200,
            Profile::Html => 20 * 1024,
            Profile::Video => 32 * 1024,
        }
    }

    /// Default messages per second.
    pub fn rate(self) -> f64 {
        match self {
            Profile::Json => 10.0,
            Profile::Html => 2.0,
            Profile::Video => 30.0,
        }
    }
}

/// How the client reaches servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// NATS over TCP (`nats://`).
    Tcp,
    /// NATS over WebSocket (`ws://`), the browser-like path.
    Ws,
}

/// Flags of `geolb-agent client`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// A data-plane server as REGION=URL; repeat for every server of every
    /// region (rtt, random, ordered; for dns and anycast, servers to probe
    /// only, if any).
    #[arg(long = "server", env = "GEOLB_CLIENT_SERVERS", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// dns and anycast: the one URL the client dials, e.g.
    /// `nats://nats.geo.lab:4222` (dns resolves its host itself) or an
    /// anycast address.
    #[arg(long, env = "GEOLB_CLIENT_TARGET", value_name = "URL")]
    pub target: Option<String>,
    /// dns: where lookups go: system, google, cloudflare or IP:PORT.
    #[arg(long, env = "GEOLB_CLIENT_RESOLVER", default_value = "system")]
    pub resolver: crate::resolve::ResolverSpec,
    /// dns: keep every answer at least this long, past its TTL (a resolver
    /// or client that holds answers too long).
    #[arg(long, env = "GEOLB_CLIENT_DNS_KEEP_STALE", default_value = "0s")]
    pub dns_keep_stale: WireDuration,
    /// The region the client lives in (default: FLY_REGION, or the only region given).
    #[arg(long, env = "GEOLB_REGION")]
    pub region: Option<String>,
    /// Client id (default: FLY_MACHINE_ID, else the host name); `-<GEOLB_REPLICA>` is appended.
    #[arg(long, env = "GEOLB_ID")]
    pub id: Option<String>,
    /// Independent clients in this process, each with its own connections,
    /// probes, election, traffic and records; with more than one, each id
    /// is the client id with `-<index>` appended (0 to N-1).
    #[arg(long, env = "GEOLB_CLIENT_COUNT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=MAX_COUNT as i64))]
    pub count: u32,
    /// How the server is chosen.
    #[arg(long, env = "GEOLB_CLIENT_STRATEGY", value_enum, default_value = "rtt")]
    pub strategy: Strategy,
    /// Traffic profile.
    #[arg(long, env = "GEOLB_CLIENT_PROFILE", value_enum, default_value = "json")]
    pub profile: Profile,
    /// Messages per second (default: the profile's; 0 only receives).
    #[arg(long, env = "GEOLB_CLIENT_RATE")]
    pub rate: Option<f64>,
    /// Payload bytes per message (default: the profile's; at least the header).
    #[arg(long, env = "GEOLB_CLIENT_SIZE")]
    pub size: Option<usize>,
    /// What messages carry after their header: a file, or obj:NAME stored with
    /// `geolb data put` (read over --control as agent --id), cut or repeated to --size.
    #[arg(long, env = "GEOLB_CLIENT_PAYLOAD", value_name = "FILE|obj:NAME")]
    pub payload: Option<String>,
    /// The control plane holding `--payload obj:NAME`.
    #[command(flatten)]
    pub control: geolb_proto::connect::ControlArgs,
    /// Receive only from these client ids (default: every sender of the client's shard).
    #[arg(long, env = "GEOLB_CLIENT_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Shards senders are spread over; a client hears every sender of its own shard.
    #[arg(long, env = "GEOLB_CLIENT_SHARDS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// Transport to the servers.
    #[arg(
        long,
        env = "GEOLB_CLIENT_TRANSPORT",
        value_enum,
        default_value = "tcp"
    )]
    pub transport: Transport,
    /// Status record interval.
    #[arg(long, env = "GEOLB_CLIENT_REPORT_INTERVAL", default_value = "1s")]
    pub report_interval: WireDuration,
    /// Stop by itself after this long (default: run until SIGTERM/SIGINT).
    #[arg(long, env = "GEOLB_CLIENT_DURATION")]
    pub duration: Option<WireDuration>,
    /// Probe PING interval.
    #[arg(long, env = "GEOLB_CLIENT_PROBE_INTERVAL", default_value = "200ms")]
    pub probe_interval: WireDuration,
    /// Once elected, the other candidates are probed this often instead (the
    /// elected one keeps `--probe-interval`; when it goes silent, every
    /// candidate gets a PING at once); equal to `--probe-interval` turns it off.
    #[arg(long, env = "GEOLB_CLIENT_PROBE_IDLE_INTERVAL", default_value = "2s")]
    pub probe_idle_interval: WireDuration,
    /// `rtt`: keep a connection open (unsubscribed) to the best server of
    /// the other regions, so a move there after a region's outage is only
    /// a subscription (`--standby false`: connect when moving).
    #[arg(long, env = "GEOLB_CLIENT_STANDBY", default_value_t = true, action = clap::ArgAction::Set)]
    pub standby: bool,
    /// A PING unanswered this long (or 3 x the server's average RTT, if longer) marks it unresponsive.
    #[arg(long, env = "GEOLB_CLIENT_PROBE_TIMEOUT", default_value = "600ms")]
    pub probe_timeout: WireDuration,
    /// A probe connection silent this long is closed and dialled again.
    #[arg(long, env = "GEOLB_CLIENT_PROBE_GIVEUP", default_value = "5s")]
    pub probe_giveup: WireDuration,
    /// Samples in the rolling RTT window (a candidate's RTT is their lowest).
    #[arg(long, env = "GEOLB_CLIENT_RTT_WINDOW", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rtt_window: u32,
    /// Samples a candidate needs within the election window to be elected.
    #[arg(long, env = "GEOLB_CLIENT_MIN_SAMPLES", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub min_samples: u32,
    /// How long the first election probes before choosing; also the freshness window of samples.
    #[arg(long, env = "GEOLB_CLIENT_ELECTION_WINDOW", default_value = "2s")]
    pub election_window: WireDuration,
    /// A better server must beat the current one by this percentage...
    #[arg(long, env = "GEOLB_CLIENT_HYSTERESIS_PCT", default_value_t = 20.0)]
    pub hysteresis_pct: f64,
    /// ...and by at least this much...
    #[arg(long, env = "GEOLB_CLIENT_HYSTERESIS_MIN", default_value = "2ms")]
    pub hysteresis_min: WireDuration,
    /// ...continuously for this long before the client moves to it.
    #[arg(long, env = "GEOLB_CLIENT_HOLD", default_value = "5s")]
    pub hold: WireDuration,
    /// Smallest delay before dialling a silent server again (jittered, doubling).
    #[arg(long, env = "GEOLB_CLIENT_BACKOFF_MIN", default_value = "250ms")]
    pub backoff_min: WireDuration,
    /// Largest delay before dialling a silent server again.
    #[arg(long, env = "GEOLB_CLIENT_BACKOFF_MAX", default_value = "5s")]
    pub backoff_max: WireDuration,
    /// Time allowed to open a connection (probe or data plane).
    #[arg(long, env = "GEOLB_CLIENT_CONNECT_TIMEOUT", default_value = "2s")]
    pub connect_timeout: WireDuration,
    /// Run no probes for `random`/`ordered` (their candidates then show no RTT).
    #[arg(long, env = "GEOLB_CLIENT_NO_PROBES")]
    pub no_probes: bool,
}

impl ClientArgs {
    /// The client id: the flag, else FLY_MACHINE_ID, else the host name;
    /// `-<GEOLB_REPLICA>` appended when that is set.
    pub fn id(&self) -> String {
        let base = self.base_id();
        match env_nonempty("GEOLB_REPLICA") {
            Some(replica) => format!("{base}-{replica}"),
            None => base,
        }
    }

    /// The ids of this process's clients: [`ClientArgs::id`] alone, or
    /// with `-<index>` appended to each of `--count`.
    pub fn ids(&self) -> Vec<String> {
        let id = self.id();
        match self.count {
            1 => vec![id],
            n => (0..n).map(|i| format!("{id}-{i}")).collect(),
        }
    }

    /// The id without the replica suffix: the agent's, under `run --replicas`.
    pub fn base_id(&self) -> String {
        self.id
            .clone()
            .or_else(|| env_nonempty("FLY_MACHINE_ID"))
            .unwrap_or_else(|| sanitise(&host_name()))
    }

    /// The region flag, else FLY_REGION.
    pub fn region(&self) -> Option<String> {
        self.region.clone().or_else(|| env_nonempty("FLY_REGION"))
    }

    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.rate.unwrap_or_else(|| self.profile.rate())
    }

    /// Payload size in bytes.
    pub fn size(&self) -> usize {
        self.size.unwrap_or_else(|| self.profile.size())
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "client".to_string())
}

/// Makes a host name a subject token.
fn sanitise(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '-',
            },
        )
        .take(56)
        .collect();
    match cleaned.is_empty() {
        true => "client".to_string(),
        false => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_the_documented_sizes_and_rates() {
        assert_eq!((Profile::Json.size(), Profile::Json.rate()), (200, 10.0));
        assert_eq!((Profile::Html.size(), Profile::Html.rate()), (20480, 2.0));
        assert_eq!(
            (Profile::Video.size(), Profile::Video.rate()),
            (32768, 30.0)
        );
    }

    #[test]
    fn many_clients_append_their_index() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ClientArgs,
        }
        let ids = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.args.ids());
        assert_eq!(ids(&["c", "--id", "lon-rtt"]).unwrap(), ["lon-rtt"]);
        assert_eq!(
            ids(&["c", "--id", "lon-rtt", "--count", "3"]).unwrap(),
            ["lon-rtt-0", "lon-rtt-1", "lon-rtt-2"]
        );
        assert!(ids(&["c", "--count", "0"]).is_err());
        assert!(ids(&["c", "--count", "5001"]).is_err());
    }

    #[test]
    fn host_names_become_tokens() {
        assert_eq!(sanitise("box.example.com"), "box-example-com");
        assert_eq!(sanitise(""), "client");
    }
}

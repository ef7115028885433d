//! Turns the flags into a checked plan before anything starts: every
//! error here names the flag to fix.

use super::args::ClientArgs;
use super::backoff::Backoff;
use super::candidates::{self, CandidateServer};
use super::election::Policy;
use super::message;
use super::probe::ProbeParams;
use super::rtt::RttParams;
use super::session::LinkOptions;
use super::traffic::Outgoing;
use anyhow::{bail, Context as _};
use geolb_proto::subject::validate_name;
use std::time::Duration;

/// Largest payload accepted (nats-server's default `max_payload`).
pub const MAX_SIZE: usize = 1024 * 1024;

/// Everything the client needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Client id (with the replica suffix).
    pub id: String,
    /// The client's region.
    pub region: String,
    /// Candidates, in `--server` order.
    pub servers: Vec<CandidateServer>,
    /// What to publish.
    pub outgoing: Outgoing,
    /// How data-plane connections are opened.
    pub link: LinkOptions,
    /// Probe parameters.
    pub probe: ProbeParams,
    /// `rtt` driver parameters.
    pub rtt: RttParams,
    /// `dns` and `anycast`: what the client dials.
    pub routed: Option<RoutedPlan>,
}

/// What a `dns` or `anycast` client dials, and how.
#[derive(Debug, Clone)]
pub struct RoutedPlan {
    /// `--target` as given.
    pub target: String,
    /// Its scheme (`nats` or `ws`).
    pub scheme: String,
    /// Its host: a name to resolve (dns), or an address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// dns: where lookups go.
    pub resolver: crate::resolve::ResolverSpec,
    /// dns: the least time an answer is kept.
    pub keep_stale: Duration,
    /// Between rounds that found no server.
    pub backoff: Backoff,
}

/// Parses `--target`: `nats://HOST:PORT` (port 4222 when absent) or `ws://HOST:PORT`.
fn parse_target(target: &str) -> anyhow::Result<(String, String, u16)> {
    let usage = "give --target nats://HOST:PORT";
    let (scheme, rest) = target
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("--target {target:?} has no scheme; {usage}"))?;
    if !matches!(scheme, "nats" | "ws") {
        bail!("--target {target:?}: the scheme must be nats or ws; {usage}");
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("--target {target:?}: bad port {port:?}; {usage}"))?,
        ),
        None => (rest, 4222),
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        bail!("--target {target:?}: bad host {host:?}; {usage}");
    }
    Ok((scheme.to_string(), host.to_string(), port))
}

impl Plan {
    /// Checks the flags, for the client `id` (one of [`ClientArgs::ids`]).
    pub fn for_client(args: &ClientArgs, id: String) -> anyhow::Result<Plan> {
        let routed = args.strategy.routed();
        let (servers, region) = match (routed, args.servers.is_empty()) {
            (true, true) => {
                let region = args.region().ok_or_else(|| {
                    anyhow::anyhow!(
                        "a {} client needs --region (where it lives)",
                        args.strategy.name()
                    )
                })?;
                validate_name("region", &region).context("pass --region as one name")?;
                (Vec::new(), region)
            }
            _ => {
                let servers = candidates::parse_all(&args.servers, args.transport)?;
                let region = candidates::choose_region(args.region().as_deref(), &servers)?;
                (servers, region)
            }
        };
        let routed = match (routed, &args.target) {
            (true, Some(target)) => {
                let (scheme, host, port) = parse_target(target)?;
                Some(RoutedPlan {
                    target: target.clone(),
                    scheme,
                    host,
                    port,
                    resolver: args.resolver.clone(),
                    keep_stale: args.dns_keep_stale.0,
                    backoff: Backoff::new(args.backoff_min.0, args.backoff_max.0),
                })
            }
            (true, None) => bail!(
                "a {} client needs --target URL (the name or address it dials)",
                args.strategy.name()
            ),
            (false, Some(_)) => bail!(
                "--target is for the dns and anycast strategies; {} takes --server REGION=URL",
                args.strategy.name()
            ),
            (false, None) => None,
        };
        validate_name("client id", &id).context("pass --id with 1 to 64 of A-Z a-z 0-9 _ -")?;
        for peer in &args.peers {
            validate_name("peer id", peer).context("--peers takes client ids")?;
        }
        let rate = args.rate();
        if !rate.is_finite() || !(0.0..=10_000.0).contains(&rate) {
            bail!("--rate {rate} must be between 0 and 10000 messages per second");
        }
        if args.size() > MAX_SIZE {
            bail!(
                "--size {} is larger than the servers' max_payload ({MAX_SIZE})",
                args.size()
            );
        }
        positive("--probe-interval", args.probe_interval.0)?;
        positive("--probe-timeout", args.probe_timeout.0)?;
        if args.probe_idle_interval.0 < args.probe_interval.0 {
            bail!("--probe-idle-interval must be at least --probe-interval");
        }
        positive("--report-interval", args.report_interval.0)?;
        positive("--connect-timeout", args.connect_timeout.0)?;
        if args.probe_giveup.0 <= args.probe_timeout.0 {
            bail!("--probe-giveup must be longer than --probe-timeout");
        }
        if !args.hysteresis_pct.is_finite() || args.hysteresis_pct < 0.0 {
            bail!("--hysteresis-pct must be 0 or more");
        }
        let shard = message::shard(&id, args.shards);
        let link = LinkOptions {
            name: id.clone(),
            connect_timeout: args.connect_timeout.0,
            subjects: message::subscriptions(shard, &args.peers),
        };
        let probe = ProbeParams {
            interval: args.probe_interval.0,
            idle_interval: args.probe_idle_interval.0,
            timeout: args.probe_timeout.0,
            giveup: args.probe_giveup.0,
            connect_timeout: args.connect_timeout.0,
            backoff_min: args.backoff_min.0,
            backoff_max: args.backoff_max.0,
            transport: args.transport,
        };
        let rtt = RttParams {
            policy: Policy {
                min_samples: args.min_samples,
                hysteresis_pct: args.hysteresis_pct,
                hysteresis_min_ms: args.hysteresis_min.0.as_secs_f64() * 1000.0,
                hold: args.hold.0,
            },
            interval: args.probe_interval.0,
            election_window: args.election_window.0,
            backoff: Backoff::new(args.backoff_min.0, args.backoff_max.0),
            link: link.clone(),
            standby: args.standby,
        };
        let outgoing = Outgoing {
            subject: message::publish_subject(&region, shard, &id),
            id: id.clone(),
            size: args.size(),
            rate,
            payload: Default::default(),
        };
        Ok(Plan {
            id,
            region,
            servers,
            outgoing,
            link,
            probe,
            rtt,
            routed,
        })
    }
}

fn positive(flag: &str, value: Duration) -> anyhow::Result<()> {
    match value.is_zero() {
        true => bail!("{flag} must be longer than 0"),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The client's flags as `geolb-agent client` parses them.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::ClientArgs,
    }

    fn plan(extra: &[&str]) -> anyhow::Result<Plan> {
        let mut argv = vec!["geolb-agent client", "--id", "c1"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv)?;
        Plan::for_client(&cli.args, cli.args.id())
    }

    #[test]
    fn routed_clients_take_a_target() {
        let plan = plan(&[
            "--strategy",
            "dns",
            "--region",
            "lon",
            "--target",
            "nats://nats.geo.lab:4333",
        ])
        .unwrap();
        let routed = plan.routed.unwrap();
        assert_eq!((routed.host.as_str(), routed.port), ("nats.geo.lab", 4333));
        assert!(plan.servers.is_empty());
        let plan = self::plan(&[
            "--strategy",
            "anycast",
            "--region",
            "lon",
            "--target",
            "nats://127.0.0.1",
        ])
        .unwrap();
        assert_eq!(plan.routed.unwrap().port, 4222);
        for (args, says) in [
            (
                vec!["--strategy", "dns", "--region", "lon"],
                "needs --target",
            ),
            (
                vec!["--strategy", "dns", "--target", "nats://a:1"],
                "needs --region",
            ),
            (
                vec!["--strategy", "dns", "--region", "lon", "--target", "a:1"],
                "no scheme",
            ),
            (
                vec![
                    "--strategy",
                    "dns",
                    "--region",
                    "lon",
                    "--target",
                    "http://a:1",
                ],
                "nats or ws",
            ),
            (
                vec![
                    "--strategy",
                    "dns",
                    "--region",
                    "lon",
                    "--target",
                    "nats://a:x",
                ],
                "bad port",
            ),
            (
                vec![
                    "--strategy",
                    "rtt",
                    "--server",
                    "lon=nats://a:1",
                    "--target",
                    "nats://a:1",
                ],
                "for the dns and anycast",
            ),
        ] {
            let err = self::plan(&args).unwrap_err().to_string();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        let err = self::plan(&[
            "--strategy",
            "dns",
            "--region",
            "lon",
            "--target",
            "nats://a",
            "--resolver",
            "8.8.8.8",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("IP:PORT"), "{err}");
    }

    #[test]
    fn builds_a_plan() {
        let p = plan(&[
            "--region",
            "a",
            "--server",
            "a=h:1",
            "--server",
            "b=ws://h:2",
            "--transport",
            "tcp",
        ]);
        assert!(p.unwrap_err().to_string().contains("use nats://"));
        let p = plan(&[
            "--region",
            "b",
            "--server",
            "a=h:1",
            "--server",
            "b=h:2",
            "--profile",
            "video",
        ])
        .unwrap();
        assert_eq!(p.region, "b");
        assert_eq!((p.outgoing.size, p.outgoing.rate), (32 * 1024, 30.0));
        let shard = message::shard("c1", 8);
        assert_eq!(p.outgoing.subject, format!("geolb.traffic.b.{shard}.c1"));
        assert_eq!(p.link.subjects, [format!("geolb.traffic.*.{shard}.*")]);
        let p = plan(&["--server", "a=h:1", "--peers", "x,y", "--rate", "0"]).unwrap();
        assert_eq!(p.region, "a");
        assert_eq!(p.link.subjects.len(), 2);
    }

    #[test]
    fn refuses_bad_input() {
        let cases: [(&[&str], &str); 7] = [
            (&["--server", "a=h:1", "--region", "z"], "known regions: a"),
            (&["--server", "a=h:1", "--server", "b=h:1"], "given twice"),
            (&["--server", "a=nats://h:x"], "malformed"),
            (
                &["--server", "a=h:1", "--server", "b=h:2"],
                "--region is required",
            ),
            (&["--server", "a=h:1", "--rate=-1"], "--rate"),
            (&["--server", "a=h:1", "--size", "2000000"], "max_payload"),
            (&["--server", "a=h:1", "--peers", "a.b"], "--peers"),
        ];
        for (args, want) in cases {
            let err = format!("{:#}", plan(args).unwrap_err());
            assert!(err.contains(want), "{args:?}: {err}");
        }
        assert!(plan(&[]).is_err(), "no --server");
    }
}

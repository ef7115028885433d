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
}

impl Plan {
    /// Checks the flags.
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Plan> {
        let servers = candidates::parse_all(&args.servers, args.transport)?;
        let region = candidates::choose_region(args.region().as_deref(), &servers)?;
        let id = args.id();
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
                recent: args.probe_interval.0 * 2,
            },
            interval: args.probe_interval.0,
            election_window: args.election_window.0,
            backoff: Backoff::new(args.backoff_min.0, args.backoff_max.0),
            link: link.clone(),
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
        Plan::from_args(&cli.args)
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

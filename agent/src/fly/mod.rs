//! `geolb-agent fly-server`: nats-server on Fly.io. It derives the server's
//! configuration from Fly's environment and private DNS, writes it, and then
//! runs exactly as `geolb-agent run ... -- nats-server -c <file>`.
//!
//! # The layout it builds
//! - One cluster per Fly region, named after it (`FLY_REGION`); the server
//!   is named after its machine (`FLY_MACHINE_ID`).
//! - Routes to `nats-route://<region>.<app>.internal:6222`: Fly's private DNS
//!   answers with every started machine of the app in that region.
//!   nats-server resolves the name itself and picks one address, never its
//!   own; once it has one route, gossip finds the rest. But when the name
//!   lists only itself (machines started together), it drops the route for
//!   good: the agent re-resolves the name and, when DNS lists servers
//!   nats-server has not found, adds a route to each address and reloads it
//!   ([`routes`]).
//! - A gateway to every other region of `--fly-regions` at
//!   `nats://<region>.<app>.internal:7222`.
//! - Every listener on `[::]` (dual stack), since Fly's private network
//!   (6PN) is IPv6; with `FLY_PRIVATE_IP` the server advertises that address
//!   for clients, routes and gateways, so what it gossips is reachable.
//! - Monitoring on 8222 (the agent reads it on 127.0.0.1), lame-duck
//!   duration 30 s, JetStream under `/data` (a Fly volume there keeps it).
//!
//! [`config::render`] is a pure function of [`FlyEnv`] (and the addresses
//! [`routes`] adds); [`run`] reads the environment, writes the file and
//! hands over to [`crate::run::run_with`], with the route watch beside it.

pub mod config;
pub mod routes;

pub use config::render;

use crate::cli::RunArgs;
use geolb_proto::WireDuration;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Client port.
pub const CLIENT_PORT: u16 = 4222;
/// Cluster (route) port.
pub const CLUSTER_PORT: u16 = 6222;
/// Gateway port.
pub const GATEWAY_PORT: u16 = 7222;
/// Monitoring (HTTP) port.
pub const MONITOR_PORT: u16 = 8222;
/// nats-server's lame-duck duration (it refuses less than 30 s).
pub const LAME_DUCK_DURATION: &str = "30s";

/// Flags of `geolb-agent fly-server`: the Fly settings, then every flag of `run`.
#[derive(Debug, clap::Args)]
pub struct FlyServerArgs {
    /// Every region the app runs in (GEOLB_FLY_REGIONS comma separated, e.g. "lhr,ams,dfw"); a gateway goes to each.
    #[arg(
        long = "fly-regions",
        env = "GEOLB_FLY_REGIONS",
        value_delimiter = ',',
        required = true,
        value_name = "REGION"
    )]
    pub fly_regions: Vec<String>,
    /// The Fly app, whose `<region>.<app>.internal` names find the servers (set by Fly).
    #[arg(long = "fly-app", env = "FLY_APP_NAME")]
    pub fly_app: Option<String>,
    /// This machine's region: the cluster and gateway name (set by Fly).
    #[arg(long = "fly-region", env = "FLY_REGION")]
    pub fly_region: Option<String>,
    /// This machine's id: the server name (set by Fly).
    #[arg(long = "fly-machine-id", env = "FLY_MACHINE_ID")]
    pub fly_machine_id: Option<String>,
    /// This machine's 6PN address, advertised to clients, routes and gateways (set by Fly).
    #[arg(long = "fly-private-ip", env = "FLY_PRIVATE_IP")]
    pub fly_private_ip: Option<IpAddr>,
    /// Where the generated nats-server configuration is written.
    #[arg(
        long = "fly-config",
        env = "GEOLB_FLY_CONFIG",
        default_value = "/tmp/nats-server-fly.conf"
    )]
    pub fly_config: PathBuf,
    /// JetStream's store folder (mount a Fly volume on /data to keep it across restarts).
    #[arg(
        long = "fly-store-dir",
        env = "GEOLB_FLY_STORE_DIR",
        default_value = "/data/jetstream"
    )]
    pub fly_store_dir: PathBuf,
    /// How often the agent re-resolves `<region>.<app>.internal` to find the
    /// region's servers nats-server has no route to (Fly's DNS TTL is 5 s).
    #[arg(
        long = "fly-route-check",
        env = "GEOLB_FLY_ROUTE_CHECK",
        default_value = "5s"
    )]
    pub fly_route_check: WireDuration,
    /// Print the generated configuration and exit without starting anything.
    #[arg(long)]
    pub print_config: bool,
    /// The flags of `run`; CMD (after `--`) is the nats-server program, `-c <config>` is appended.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Everything the configuration depends on: Fly's environment, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlyEnv {
    /// `FLY_APP_NAME`.
    pub app: String,
    /// `FLY_REGION`: cluster and gateway name.
    pub region: String,
    /// `FLY_MACHINE_ID`: server name.
    pub machine_id: String,
    /// `GEOLB_FLY_REGIONS`: every region of the super-cluster.
    pub regions: Vec<String>,
    /// `FLY_PRIVATE_IP`: the address advertised, when known.
    pub private_ip: Option<IpAddr>,
    /// JetStream's store folder.
    pub store_dir: PathBuf,
}

/// Why the Fly settings cannot make a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlyError {
    /// A value Fly sets is missing.
    #[error("{var} is not set: `fly-server` runs on a Fly.io machine; elsewhere pass {flag}")]
    Missing {
        /// The environment variable.
        var: &'static str,
        /// The flag that replaces it.
        flag: &'static str,
    },
    /// A name that is not a DNS label (lowercase letters, digits, '-').
    #[error("{what} {value:?} is not a DNS label (lowercase letters, digits and '-', at most 63)")]
    BadName {
        /// What the name is.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// No regions.
    #[error("no regions given; set GEOLB_FLY_REGIONS to the app's regions, e.g. \"lhr,ams,dfw\"")]
    NoRegions,
}

impl FlyEnv {
    /// Checks the flags (and the FLY_* variables behind them).
    pub fn from_args(args: &FlyServerArgs) -> Result<FlyEnv, FlyError> {
        let need = |value: &Option<String>, var, flag| {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or(FlyError::Missing { var, flag })
        };
        let app = need(&args.fly_app, "FLY_APP_NAME", "--fly-app")?;
        let region = need(&args.fly_region, "FLY_REGION", "--fly-region")?;
        let machine_id = need(&args.fly_machine_id, "FLY_MACHINE_ID", "--fly-machine-id")?;
        let mut regions: Vec<String> = Vec::new();
        for r in args
            .fly_regions
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
        {
            if !regions.iter().any(|seen| seen == r) {
                regions.push(r.to_string());
            }
        }
        if regions.is_empty() {
            return Err(FlyError::NoRegions);
        }
        dns_label("app", &app)?;
        dns_label("region", &region)?;
        dns_label("machine id", &machine_id.to_ascii_lowercase())?;
        for r in &regions {
            dns_label("region", r)?;
        }
        Ok(FlyEnv {
            app,
            region,
            machine_id,
            regions,
            private_ip: args.fly_private_ip,
            store_dir: args.fly_store_dir.clone(),
        })
    }

    /// Whether this machine's region is one of `regions` (else no other
    /// region dials it; it still dials them).
    pub fn region_listed(&self) -> bool {
        self.regions.contains(&self.region)
    }

    /// `<region>.<app>.internal`: every machine of the app in `region`.
    pub fn internal(&self, region: &str) -> String {
        format!("{region}.{}.internal", self.app)
    }
}

fn dns_label(what: &'static str, value: &str) -> Result<(), FlyError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match ok {
        true => Ok(()),
        false => Err(FlyError::BadName {
            what,
            value: value.to_string(),
        }),
    }
}

/// The `run` flags with the generated configuration appended to CMD and the
/// machine's id and region as the agent's (unless given).
fn run_args(mut run: RunArgs, env: &FlyEnv, config: &Path) -> RunArgs {
    run.id = run.id.or_else(|| Some(env.machine_id.clone()));
    run.region = run.region.or_else(|| Some(env.region.clone()));
    run.command.push("-c".into());
    run.command.push(config.as_os_str().to_owned());
    run
}

/// Writes `text` to `path` through a temporary file, so nats-server never reads half of it.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: {e}; point --fly-config (GEOLB_FLY_CONFIG) at a writable file",
                path.display()
            )
        })
}

/// Writes the configuration and runs the agent around nats-server, with the
/// route watch beside it; returns the exit code.
pub async fn run(args: FlyServerArgs) -> anyhow::Result<i32> {
    let env = FlyEnv::from_args(&args)?;
    if args.run.command.is_empty() {
        anyhow::bail!("fly-server runs nats-server itself: give the program after `--` (e.g. `-- nats-server`)");
    }
    let config = render(&env, &[]);
    if args.print_config {
        print!("{config}");
        return Ok(0);
    }
    if let Some(dir) = args
        .fly_config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    write_config(&args.fly_config, &config)?;
    if !env.region_listed() {
        tracing::warn!(region = %env.region, regions = ?env.regions, "This machine's region is not in GEOLB_FLY_REGIONS: no other region will dial it.");
    }
    tracing::info!(
        config = %args.fly_config.display(),
        app = %env.app,
        region = %env.region,
        regions = ?env.regions,
        "nats-server configuration written for Fly.io."
    );
    let watch = routes::RouteWatch {
        env: env.clone(),
        config: args.fly_config.clone(),
        interval: args
            .fly_route_check
            .0
            .max(std::time::Duration::from_millis(100)),
    };
    let sidecar: crate::run::Sidecar =
        Box::new(move |ctx, token| Box::pin(routes::watch(watch, ctx, token)));
    crate::run::run_with(run_args(args.run, &env, &args.fly_config), Some(sidecar)).await
}

#[cfg(test)]
mod tests;

//! `Cluster`: n nats-servers of one region joined by routes.

use std::collections::HashSet;
use std::time::Duration;

use crate::config::{ClusterBlock, ServerConfig};
use crate::ports::free_port;
use crate::server::NatsServer;
use crate::wait::wait_for_blocking;

/// How long routes (and gateways) may take to form once every server is ready.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// Servers `<name>-0` .. `<name>-<n-1>` with routes to each other; dropped together.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    servers: Vec<NatsServer>,
}

impl Cluster {
    /// Starts `n` servers of `version` and waits until every one routes to all others.
    pub fn start(name: &str, n: usize, version: &str, jetstream: bool) -> Cluster {
        Self::start_with(name, n, version, |_, cfg| cfg.jetstream = jetstream)
    }

    /// Like [`Cluster::start`], letting `configure(index, config)` adjust each server.
    pub fn start_with(
        name: &str,
        n: usize,
        version: &str,
        mut configure: impl FnMut(usize, &mut ServerConfig),
    ) -> Cluster {
        let mut configs = Self::configs(name, n);
        for (i, cfg) in configs.iter_mut().enumerate() {
            configure(i, cfg);
        }
        let mut cluster = Self::spawn(name, version, configs);
        cluster.wait_formed();
        cluster
    }

    /// Configs of `n` members with fixed route ports and routes to every other member.
    pub fn configs(name: &str, n: usize) -> Vec<ServerConfig> {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let url = |p: &u16| format!("nats-route://127.0.0.1:{p}");
        (0..n)
            .map(|i| {
                let routes = ports.iter().enumerate().filter(|(j, _)| *j != i);
                let routes = routes.map(|(_, p)| url(p)).collect();
                let cluster = ClusterBlock {
                    name: name.to_string(),
                    port: ports[i],
                    routes,
                };
                ServerConfig {
                    server_name: format!("{name}-{i}"),
                    cluster: Some(cluster),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// Spawns every member without waiting (see [`Cluster::wait_formed`]).
    pub fn spawn(name: &str, version: &str, configs: Vec<ServerConfig>) -> Cluster {
        let servers = configs
            .into_iter()
            .map(|c| NatsServer::spawn(version, c))
            .collect();
        Cluster {
            name: name.to_string(),
            servers,
        }
    }

    /// Waits until every member is ready and routes to all the others.
    pub fn wait_formed(&mut self) {
        for server in &mut self.servers {
            server.wait_ready();
        }
        self.wait_routes();
    }

    /// Waits until each member's `/routez` shows a route to each other member.
    pub fn wait_routes(&self) {
        let want = self.servers.len().saturating_sub(1);
        for server in &self.servers {
            let what = format!("{} to route to {want} servers", server.name());
            wait_for_blocking(&what, FORM_TIMEOUT, || {
                (route_peers(server) >= want).then_some(())
            });
        }
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members, in index order.
    pub fn servers(&self) -> &[NatsServer] {
        &self.servers
    }

    /// Member `i`.
    pub fn server(&self, i: usize) -> &NatsServer {
        &self.servers[i]
    }

    /// Member `i`, mutably (to restart or kill it).
    pub fn server_mut(&mut self, i: usize) -> &mut NatsServer {
        &mut self.servers[i]
    }

    /// Client URLs of every member.
    pub fn client_urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.client_url()).collect()
    }
}

/// Distinct remote servers in `/routez` (route pooling opens several routes per peer).
pub fn route_peers(server: &NatsServer) -> usize {
    let Ok(routez) = server.monitor("routez") else {
        return 0;
    };
    let routes = routez["routes"].as_array().cloned().unwrap_or_default();
    let ids: HashSet<String> = routes
        .iter()
        .filter_map(|r| r["remote_id"].as_str().map(String::from))
        .collect();
    ids.len()
}

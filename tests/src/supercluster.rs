//! `SuperCluster`: one `Cluster` per region, every region joined to every other by gateways.

use std::collections::HashSet;

use crate::cluster::{Cluster, FORM_TIMEOUT};
use crate::config::{GatewayBlock, ServerConfig};
use crate::ports::free_port;
use crate::server::NatsServer;
use crate::wait::wait_for_blocking;

/// Regions joined by gateways; every server is killed on `Drop`.
#[derive(Debug)]
pub struct SuperCluster {
    regions: Vec<Cluster>,
}

impl SuperCluster {
    /// Starts `per_region` servers in each region and waits for routes and gateways.
    pub fn start(regions: &[&str], per_region: usize, version: &str) -> SuperCluster {
        Self::start_with(regions, per_region, version, |_, _, _| {})
    }

    /// Like [`SuperCluster::start`], letting `configure(region, index, config)` adjust each
    /// server after its cluster and gateway blocks are filled in.
    pub fn start_with(
        regions: &[&str],
        per_region: usize,
        version: &str,
        mut configure: impl FnMut(&str, usize, &mut ServerConfig),
    ) -> SuperCluster {
        let mut configs: Vec<Vec<ServerConfig>> = regions
            .iter()
            .map(|r| Cluster::configs(r, per_region))
            .collect();
        let mut table = Vec::new();
        for (region, cfgs) in regions.iter().zip(&mut configs) {
            let ports: Vec<u16> = cfgs.iter().map(|_| free_port()).collect();
            for (cfg, port) in cfgs.iter_mut().zip(&ports) {
                let name = region.to_string();
                cfg.gateway = Some(GatewayBlock {
                    name,
                    port: *port,
                    gateways: Vec::new(),
                    advertise: None,
                    authorization: None,
                });
            }
            let urls = ports
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            table.push((region.to_string(), urls));
        }
        for (region, cfgs) in regions.iter().zip(&mut configs) {
            for (i, cfg) in cfgs.iter_mut().enumerate() {
                cfg.gateway.as_mut().expect("gateway set above").gateways = table.clone();
                configure(region, i, cfg);
            }
        }
        let clusters = regions.iter().zip(configs);
        let regions = clusters
            .map(|(r, cfgs)| Cluster::spawn(r, version, cfgs))
            .collect();
        let mut sc = SuperCluster { regions };
        for cluster in &mut sc.regions {
            cluster.wait_formed();
        }
        sc.wait_gateways();
        sc
    }

    /// Joins clusters spawned elsewhere (their configs already name their
    /// gateways); waits until every server is ready and routed, and every
    /// gateway is up.
    pub fn from_clusters(regions: Vec<Cluster>) -> SuperCluster {
        let mut sc = SuperCluster { regions };
        for cluster in &mut sc.regions {
            cluster.wait_formed();
        }
        sc.wait_gateways();
        sc
    }

    /// Waits until every server has an outbound gateway to every other region.
    pub fn wait_gateways(&self) {
        let names: Vec<&str> = self.regions.iter().map(|c| c.name()).collect();
        for server in self.servers() {
            let own = server.config().gateway.as_ref().map(|g| g.name.as_str());
            let want: Vec<&str> = names.iter().copied().filter(|n| Some(*n) != own).collect();
            let what = format!("{} to open gateways to {want:?}", server.name());
            wait_for_blocking(&what, FORM_TIMEOUT, || {
                let have = outbound_gateways(server);
                want.iter().all(|n| have.contains(*n)).then_some(())
            });
        }
    }

    /// The cluster of `region`; panics if there is none.
    pub fn region(&self, region: &str) -> &Cluster {
        let found = self.regions.iter().find(|c| c.name() == region);
        found.unwrap_or_else(|| panic!("no region {region} in {:?}", self.region_names()))
    }

    /// The cluster of `region`, mutably; panics if there is none.
    pub fn region_mut(&mut self, region: &str) -> &mut Cluster {
        let names = self.region_names().join(", ");
        let found = self.regions.iter_mut().find(|c| c.name() == region);
        found.unwrap_or_else(|| panic!("no region {region} in [{names}]"))
    }

    /// Every region's cluster, in start order.
    pub fn regions(&self) -> &[Cluster] {
        &self.regions
    }

    /// Region names, in start order.
    pub fn region_names(&self) -> Vec<String> {
        self.regions.iter().map(|c| c.name().to_string()).collect()
    }

    /// Every server of every region.
    pub fn servers(&self) -> impl Iterator<Item = &NatsServer> {
        self.regions.iter().flat_map(|c| c.servers())
    }
}

/// Names of the gateways `server` has an outbound connection to, from `/gatewayz`.
pub fn outbound_gateways(server: &NatsServer) -> HashSet<String> {
    let Ok(gatewayz) = server.monitor("gatewayz") else {
        return HashSet::new();
    };
    let Some(outbound) = gatewayz["outbound_gateways"].as_object() else {
        return HashSet::new();
    };
    let connected = outbound
        .iter()
        .filter(|(_, gw)| gw["connection"].is_object());
    connected.map(|(name, _)| name.clone()).collect()
}

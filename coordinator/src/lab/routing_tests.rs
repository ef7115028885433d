//! Tests of `routing.rs`: the GeoDNS's and the router's plan.
use super::*;
use crate::lab::topology::Topology;

#[test]
fn every_server_has_an_address_per_region_on_one_port() {
    let config = LabConfig::default();
    let t = Topology::plan(&config);
    let dns = t.routing.dns.as_ref().unwrap();
    assert_eq!(dns.target(), format!("nats://nats.geolb.lab:{}", dns.port));
    assert_eq!(
        (dns.config.ttl_s, dns.config.health.interval.0.as_secs()),
        (30, 10)
    );
    assert_eq!(
        (dns.config.health.threshold, dns.config.health.recovery),
        (3, 3)
    );
    let lon2 = &dns.config.servers[1];
    assert_eq!(lon2.id, "lon-2");
    assert_eq!(lon2.answers["dfw"], answer_ip(2, 1));
    assert_eq!(lon2.checks.len(), 3, "checked from every region");
    let link = t.links.iter().find(|l| l.name == "dns:dfw->lon-2").unwrap();
    assert_eq!(link.listen, format!("127.22.1.1:{}", dns.port));
    assert_eq!(link.config.rtt(), std::time::Duration::from_millis(105));
    let path = link.path.as_ref().unwrap();
    assert_eq!(
        (path.from.as_deref(), path.to.as_str()),
        (Some("dfw"), "lon")
    );
    assert!(path.into_or_out_of("lon"), "a partition of lon cuts it");
    let mut addrs: Vec<&str> = t
        .links
        .iter()
        .filter(|l| l.name.starts_with("dns:"))
        .map(|l| l.listen.as_str())
        .collect();
    let n = addrs.len();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "no address twice");
    assert!(dns.config.validate().is_ok());
}

#[test]
fn clients_get_their_region_s_resolver_and_vantage() {
    let config = LabConfig::default();
    let t = Topology::plan(&config);
    let dns = t.routing.dns.as_ref().unwrap();
    let lon = t.clients.iter().find(|c| c.agent_id == "lon-dns").unwrap();
    assert_eq!(
        lon.args,
        [
            "--target",
            &dns.target(),
            "--resolver",
            dns.listener("lon").unwrap()
        ]
    );
    let stale: Vec<_> = t
        .clients
        .iter()
        .filter(|c| c.args.contains(&"--dns-keep-stale".to_string()))
        .collect();
    assert_eq!(stale.len(), 1, "10 % of 6, rounded");
    let keep = stale[0].args.last().unwrap();
    let secs: u64 = keep.trim_end_matches('s').parse().unwrap();
    assert!((40..=2000).contains(&secs), "{keep}");
    let router = t.routing.anycast.as_ref().unwrap();
    let vantage = &router.vantages[1];
    assert_eq!(
        (vantage.id.as_str(), vantage.region.as_str()),
        ("ams-anycast", "ams")
    );
    let group = t
        .clients
        .iter()
        .find(|c| c.agent_id == "ams-anycast")
        .unwrap();
    assert_eq!(
        group.args,
        ["--target".to_string(), format!("nats://{}", vantage.listen)]
    );
    assert_eq!(group.replicas, 2);
    // Each vantage region reaches a server through that region's client link.
    let dfw1 = router.servers.iter().find(|s| s.id == "dfw-1").unwrap();
    let via = t.links.iter().find(|l| l.name == "cl:lon->dfw-1").unwrap();
    assert_eq!(dfw1.dial["lon"], via.listen);
    let home = t.links.iter().find(|l| l.name == "cl:dfw->dfw-1").unwrap();
    assert_eq!(dfw1.check, home.listen);
    assert!(router.validate().is_ok());
}

#[test]
fn the_same_seed_picks_the_same_stale_clients() {
    let mut config = LabConfig::default();
    config.clients.dns = Some(10);
    config.dns.stale.share = 0.5;
    let a = Topology::plan(&config).clients;
    let b = Topology::plan(&config).clients;
    assert_eq!(a, b);
    let stale = a.iter().filter(|c| c.agent_id.contains("stale")).count();
    assert_eq!(stale, 15);
    config.dns.stale.seed = 2;
    assert_ne!(Topology::plan(&config).clients, a);
    config.dns.stale.share = 0.0;
    let none = Topology::plan(&config).clients;
    assert!(!none.iter().any(|c| c.agent_id.contains("stale")));
}

#[test]
fn containers_and_zero_counts_plan_no_routing_clients() {
    let config = LabConfig::default();
    let t = Topology::plan_for(&config, Placement::Containers);
    assert!(t.routing.dns.is_none() && t.routing.anycast.is_none());
    assert!(!t.links.iter().any(|l| l.name.starts_with("dns:")));
    let mut config = LabConfig::default();
    config.clients.dns = Some(0);
    config.clients.anycast = Some(0);
    let t = Topology::plan(&config);
    assert!(
        t.routing.dns.is_some(),
        "the GeoDNS runs without dns clients too"
    );
    assert!(!t
        .clients
        .iter()
        .any(|c| c.strategy == "dns" || c.strategy == "anycast"));
    let refused = LabConfig::parse("[clients]\ndns = 2")
        .unwrap()
        .clients
        .for_containers();
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("without --docker"));
    let default = LabConfig::default().clients.for_containers().unwrap();
    assert_eq!((default.dns(), default.anycast()), (0, 0));
}

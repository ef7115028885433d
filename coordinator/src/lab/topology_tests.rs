//! Tests of `topology.rs`.
use super::*;
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn plans_the_default_lab() {
    let config = LabConfig::default();
    let t = Topology::plan(&config);
    assert_eq!(t.servers.len(), 9);
    assert_eq!(
        t.links.len(),
        3 * 6 + 3 * 9 + 3 * 9,
        "gateway links, then client links, then the GeoDNS's links"
    );
    let mut ports: Vec<u16> = vec![t.control_port, t.control_http_port];
    for s in &t.servers {
        ports.extend([s.client_port, s.http_port, s.route_port, s.gateway_port]);
    }
    let port = |listen: &str| listen.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    ports.extend(
        t.links
            .iter()
            .filter(|l| !l.name.starts_with("dns:"))
            .map(|l| port(&l.listen)),
    );
    // The dns links share one port (each on its own address), then a
    // GeoDNS listener and an anycast vantage per region.
    let dns = t.routing.dns.as_ref().unwrap();
    ports.push(dns.port);
    ports.extend(dns.config.listeners.iter().map(|l| port(&l.listen)));
    ports.extend(
        t.routing
            .anycast
            .as_ref()
            .unwrap()
            .vantages
            .iter()
            .map(|v| port(&v.listen)),
    );
    assert_eq!(ports.len(), config.ports_needed());
    assert_eq!(
        ports.iter().collect::<HashSet<_>>().len(),
        ports.len(),
        "no port twice"
    );

    let lon_ams = t.links.iter().find(|l| l.name == "gw:lon->ams/0").unwrap();
    assert_eq!(lon_ams.config.rtt(), Duration::from_millis(8));
    let ams1 = t.servers.iter().find(|s| s.id == "ams-1").unwrap();
    assert_eq!(lon_ams.target, format!("127.0.0.1:{}", ams1.gateway_port));
    let cl = t.links.iter().find(|l| l.name == "cl:dfw->lon-2").unwrap();
    assert_eq!(cl.config.rtt(), Duration::from_millis(105));
    assert_eq!(t.client_servers("ams").len(), 9);
    assert_eq!(
        t.clients
            .iter()
            .map(|c| c.agent_id.as_str())
            .collect::<Vec<_>>(),
        [
            "lon-rtt",
            "lon-random",
            "ams-rtt",
            "ams-random",
            "dfw-rtt",
            "dfw-random",
            "lon-dns",
            "ams-dns",
            "dfw-dns",
            "dfw-dns-stale-0",
            "lon-anycast",
            "ams-anycast",
            "dfw-anycast"
        ]
    );
    let per_strategy = |strategy: &str| -> u32 {
        t.clients
            .iter()
            .filter(|c| c.strategy == strategy)
            .map(|c| c.replicas)
            .sum()
    };
    assert_eq!([per_strategy("dns"), per_strategy("anycast")], [6, 6]);
}

#[test]
fn containers_dial_by_name_through_the_emulator() {
    let config = LabConfig::default();
    let t = Topology::plan_for(&config, Placement::Containers);
    let lon1 = &t.servers[0];
    assert_eq!((lon1.host.as_str(), lon1.client_port), ("lon-1", 4222));
    let link = t.links.iter().find(|l| l.name == "gw:lon->ams/0").unwrap();
    assert_eq!(link.target, "ams-1:7222");
    assert!(link.listen.starts_with("0.0.0.0:"), "{}", link.listen);
    let port = link.listen.rsplit(':').next().unwrap();
    assert_eq!(t.link_addr("gw:lon->ams/0").unwrap(), format!("wan:{port}"));
    assert!(t.client_servers("dfw")[0].starts_with("lon=nats://wan:"));
    let text = t.server_config(&config, lon1, Path::new("/data/jetstream"), "s3");
    assert!(text.contains("listen: \"0.0.0.0:4222\""), "{text}");
    assert!(text.contains("\"nats-route://lon-2:6222\""), "{text}");
    assert!(
        text.contains(&format!("nats://gw-ams:s3-ams@wan:{port}")),
        "{text}"
    );
}

#[test]
fn partition_cuts_every_path_to_the_region() {
    let t = Topology::plan(&LabConfig::default());
    let cut = t.partition_links("lon");
    assert!(cut.contains(&"gw:lon->ams/0".to_string()));
    assert!(cut.contains(&"gw:dfw->lon/2".to_string()));
    assert!(cut.contains(&"cl:ams->lon-3".to_string()));
    assert!(cut.contains(&"cl:lon->lon-1".to_string()));
    assert!(
        !cut.contains(&"cl:lon->ams-1".to_string()),
        "lon's clients can still leave"
    );
    assert!(!cut.contains(&"gw:ams->dfw/0".to_string()));
    assert!(cut.contains(&"dns:dfw->lon-2".to_string()));
    assert_eq!(cut.len(), 6 + 6 + 9 + 9);
}

#[test]
fn server_config_goes_through_the_emulator() {
    let config = LabConfig::default();
    let t = Topology::plan(&config);
    let text = t.server_config(&config, &t.servers[0], Path::new("/tmp/js"), "s3");
    assert!(text.contains("advertise: \"127.0.0.1:1\""));
    assert!(
        text.contains("authorization { user: \"gw-lon\", password: \"s3-lon\" }"),
        "{text}"
    );
    assert!(text.contains("no_advertise: true"));
    let via = t.link_addr("gw:lon->dfw/1").unwrap();
    assert!(
        text.contains(&format!("nats://gw-dfw:s3-dfw@{via}")),
        "{text}"
    );
    assert_eq!(text.matches("nats-route://").count(), 2);
}

#[test]
fn processes_split_the_links_by_the_diallers_region_containers_keep_one_emulator() {
    let mut config = LabConfig::default();
    config.clients.rtt = 300;
    config.clients.per_process = 100;
    let t = Topology::plan(&config);
    let emulators = t.emulators();
    let ids: Vec<&str> = emulators.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["wan-ams", "wan-dfw", "wan-lon"]);
    let served: usize = emulators.iter().map(|(_, links)| links.len()).sum();
    assert_eq!(served, t.links.len());
    for (id, links) in &emulators {
        for link in links {
            let from = link.path.as_ref().and_then(|p| p.from.as_deref());
            assert_eq!(Some(&id[4..]), from, "{}", link.name);
        }
    }
    let rtt = t.clients.iter().find(|g| g.agent_id == "lon-rtt").unwrap();
    assert_eq!((rtt.replicas, rtt.per_process), (300, 100));
    let containers = Topology::plan_for(&config, Placement::Containers);
    let one = containers.emulators();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].0.as_str(), one[0].1.len()),
        ("wan", containers.links.len())
    );
}

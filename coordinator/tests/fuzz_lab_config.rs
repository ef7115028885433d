//! Property-based fuzzing of the lab configuration decoder (`lab.toml`):
//! arbitrary text and mutations of the template must never panic, and every
//! configuration it accepts must plan a lab (every port distinct, within
//! the range it claims, every region pair with one round-trip time).
//!
//! `cargo test -p geolb --test fuzz_lab_config` runs a quick pass; `make
//! fuzz` runs it in release with `PROPTEST_CASES` cases a property.

use geolb::lab::config::{LabConfig, TEMPLATE};
use geolb::lab::topology::Topology;
use proptest::prelude::*;
use std::collections::HashSet;

/// Whatever `text` is, parsing returns; an accepted config plans a lab.
fn check(text: &str) {
    let Ok(config) = LabConfig::parse(text) else {
        return;
    };
    let t = Topology::plan(&config);
    let mut ports: Vec<u16> = vec![t.control_port, t.control_http_port];
    for s in &t.servers {
        ports.extend([s.client_port, s.http_port, s.route_port, s.gateway_port]);
    }
    let port = |listen: &str| -> u16 {
        let port = listen.rsplit(':').next().and_then(|p| p.parse().ok());
        port.expect("a port")
    };
    // The GeoDNS's links share one port, each on its own address.
    for link in t.links.iter().filter(|l| !l.name.starts_with("dns:")) {
        ports.push(port(&link.listen));
    }
    let dns = t.routing.dns.as_ref().expect("a process lab has a GeoDNS");
    ports.push(dns.port);
    ports.extend(dns.config.listeners.iter().map(|l| port(&l.listen)));
    let router = t
        .routing
        .anycast
        .as_ref()
        .expect("a process lab has a router");
    ports.extend(router.vantages.iter().map(|v| port(&v.listen)));
    let dns_addrs: HashSet<&str> = t
        .links
        .iter()
        .filter(|l| l.name.starts_with("dns:"))
        .map(|l| l.listen.as_str())
        .collect();
    assert_eq!(
        dns_addrs.len(),
        t.servers.len() * config.regions.len(),
        "{text}"
    );
    assert!(
        dns.config.validate().is_ok() && router.validate().is_ok(),
        "{text}"
    );
    assert_eq!(ports.len(), config.ports_needed(), "{text}");
    let distinct: HashSet<&u16> = ports.iter().collect();
    assert_eq!(distinct.len(), ports.len(), "ports repeat: {text}");
    assert!(ports.iter().all(|p| *p >= config.ports_base), "{text}");
    for a in &config.regions {
        for b in config.regions.iter().filter(|b| *b != a) {
            assert_eq!(config.rtt(a, b), config.rtt(b, a), "{text}");
        }
    }
}

/// The template with up to three lines replaced by something plausible.
fn mutated() -> impl Strategy<Value = String> {
    let lines: Vec<String> = TEMPLATE.lines().map(String::from).collect();
    let n = lines.len();
    let values = prop_oneof![
        Just("regions = []".to_string()),
        "[a-z]{1,4}".prop_map(|r| format!("regions = [\"{r}\", \"lon\"]")),
        (0u32..20).prop_map(|n| format!("servers_per_region = {n}")),
        any::<u16>().prop_map(|p| format!("ports_base = {p}")),
        (-5i64..200).prop_map(|ms| format!("\"lon-ams\" = \"{ms}ms\"")),
        "[a-z-]{1,9}".prop_map(|k| format!("\"{k}\" = \"1ms\"")),
        any::<f64>().prop_map(|r| format!("rate = {r}")),
        (0u32..300).prop_map(|n| format!("rtt = {n}")),
        (0u32..40).prop_map(|n| format!("dns = {n}")),
        (-5i64..100).prop_map(|s| format!("ttl = \"{s}s\"")),
        any::<f64>().prop_map(|s| format!("share = {s}")),
        Just("policy = \"nearest-first\"".to_string()),
        Just("mode = \"proxy\"".to_string()),
        ".{0,20}",
    ];
    prop::collection::vec((0..n, values), 1..4).prop_map(move |edits| {
        let mut lines = lines.clone();
        for (at, value) in edits {
            lines[at] = value;
        }
        lines.join("\n")
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        check(&text);
    }

    #[test]
    fn mutated_templates_never_panic(text in mutated()) {
        check(&text);
    }
}

#[test]
fn the_template_plans_the_default_lab() {
    check(TEMPLATE);
    check("");
}

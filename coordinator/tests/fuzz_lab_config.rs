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
    for link in &t.links {
        let port = link.listen.rsplit(':').next().and_then(|p| p.parse().ok());
        ports.push(port.expect("a link port"));
    }
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

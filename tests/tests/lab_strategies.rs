//! Every strategy side by side in one run: a lab with `rtt`, `random`,
//! `dns` and `anycast` clients (its GeoDNS and anycast router at quicker
//! settings than the real-world defaults, so the test stays short), a
//! region killed, and the report carrying each strategy's figures: gaps
//! and landing for all, DNS staleness and dead attempts, anycast flips,
//! and when the GeoDNS and the router noticed.

use geolb_tests::lab_dir::{stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use serde_json::Value;

fn lab_config(ports_base: u16) -> String {
    format!(
        r#"regions = ["lon", "ams"]
servers_per_region = 2
ports_base = {ports_base}
[clients]
rtt = 2
random = 1
dns = 2
anycast = 2
[latency.pairs]
"lon-ams" = "8ms"
[dns]
ttl = "3s"
interval = "1s"
threshold = 2
recovery = 2
[dns.stale]
share = 0.0
"#
    )
}

fn strategy<'a>(report: &'a Value, name: &str) -> &'a Value {
    &report["summary"]["by_strategy"][name]
}

#[test]
fn a_region_outage_shows_every_strategy_side_by_side() {
    let lab = LabDir::new("strategies");
    let config = lab.config(&lab_config(LAB_PORTS.start + 1200));
    let up = lab.geolb(&["lab", "up", "--config", &config]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let status = lab.json(&["lab", "status", "--json"]);
    assert!(
        status["dns"]["listeners"].is_array() || status["dns"].is_object(),
        "{}",
        status["dns"]
    );

    let report = lab.scenario(
        "dc-outage",
        &["--region", "lon", "--mode", "kill", "--duration", "20s"],
    );
    for name in ["rtt", "random", "dns", "anycast"] {
        let s = strategy(&report, name);
        assert!(s["clients"].as_u64().unwrap() > 0, "{name}: {s}");
        assert!(
            s["first_connect_ms"]["p50"].as_f64().unwrap() > 0.0,
            "{name} connected at some point: {s}"
        );
        assert!(!s["home_at_start_pct"].is_null(), "{name}: {s}");
    }
    let routing = &report["routing"];
    let marked = routing["dns_marked_down_ms"]
        .as_u64()
        .expect("the GeoDNS noticed");
    assert!(marked < 20_000, "{routing}");
    assert!(
        routing["anycast_withdrawn_ms"].as_u64().is_some(),
        "{routing}"
    );

    let lon = |name: &str| -> Vec<Value> {
        report["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["region"] == "lon" && c["strategy"] == name)
            .cloned()
            .collect()
    };
    for c in lon("dns") {
        assert!(c["dead_attempts"].as_u64().is_some(), "{c}");
        assert!(
            c["stale_ms"].as_u64().is_some() || c["stale_at_end"] == true,
            "each dns client either got the new answer or is marked stale: {c}"
        );
        assert_eq!(c["expected_region"], "ams", "{c}");
    }
    for c in lon("anycast") {
        assert!(c["flip_ms"].as_u64().is_some(), "its vantage flipped: {c}");
        // The kill resets its connection; the flip back once lon is
        // announced again (the run waits for it) may reset it once more, as
        // a route change does to TCP on real anycast.
        let lost = c["lost_connections"].as_u64().unwrap_or(0);
        assert!(
            (1..=2).contains(&lost),
            "the kill reset its connection: {c}"
        );
    }
    let timeline = report["timeline"].as_array().unwrap();
    for kind in ["health", "answers", "withdrawn", "flipped"] {
        assert!(
            timeline.iter().any(|t| t["kind"] == kind),
            "the routing systems' {kind} changes are on the timeline"
        );
    }
    let shown = lab.geolb(&["report", "show", report["id"].as_str().unwrap()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("STALE P50/P99") && text.contains("FLIP P50/P99"),
        "{text}"
    );
}

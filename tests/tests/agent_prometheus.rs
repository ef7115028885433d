//! `--prometheus-listen`: an agent around a real nats-server, with no control
//! plane, answers `GET /metrics` in Prometheus text with its identity, the
//! child's state and the server's `/varz` figures, as Fly's scraper sees it.

use geolb_tests::agent::AgentBuilder;
use geolb_tests::http::http_get;
use geolb_tests::wait::wait_for_blocking;
use geolb_tests::{default_version, free_port, ServerConfig};
use std::time::Duration;

#[test]
fn an_agent_serves_prometheus_metrics_of_its_server() {
    let port = free_port();
    let (_agent, _server) = AgentBuilder::new("prom-1", "lhr")
        .arg("--prometheus-listen")
        .arg(format!("127.0.0.1:{port}"))
        .server(
            default_version(),
            ServerConfig::default().server_name("prom-1"),
        );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let id = r#"agent="prom-1",region="lhr",role="server""#;
    let healthy = format!("geolb_nats_healthy{{{id}}} 1");
    let body = wait_for_blocking(
        "metrics of a healthy server",
        Duration::from_secs(10),
        || match http_get(&url) {
            Ok((200, body)) if body.lines().any(|l| l == healthy) => Some(body),
            _ => None,
        },
    );
    for line in [
        format!("geolb_child_state{{{id},state=\"running\"}} 1"),
        format!("geolb_child_restarts_total{{{id}}} 0"),
        format!("geolb_nats_monitor_up{{{id}}} 1"),
        format!("geolb_nats_connections{{{id}}} 0"),
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line:?} missing in\n{body}"
        );
    }
    let version = default_version();
    assert!(
        body.lines().any(|l| l.starts_with("geolb_nats_info{")
            && l.contains("server_name=\"prom-1\"")
            && l.contains(&format!("version=\"{version}\""))),
        "{body}"
    );
    assert!(body.contains("# TYPE geolb_process_resident_memory_bytes gauge"));
    assert!(body.contains("process=\"child\",replica=\"0\"}"), "{body}");
    let (status, _) = http_get(&format!("http://127.0.0.1:{port}/")).unwrap();
    assert_eq!(status, 404);
}

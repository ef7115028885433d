//! Tests of [`super`]: the text, the routes and a real request.
use super::*;
use geolb_proto::connect::{Failure, FailureKind, Trust};
use geolb_proto::{ChildState, GatewayMetric, Role};

fn figures() -> Figures {
    let mut status = AgentStatus::example("148e272f4d9589", "lhr", Role::Server);
    status.version = Some("2.12.8".into());
    status.program = "/opt/nats-server/2.12.8/nats-server \"x\"".into();
    status.restarts = 2;
    status.replicas = vec![geolb_proto::ReplicaStatus {
        index: 0,
        state: ChildState::Running,
        pid: Some(7),
        restarts: 2,
        started_at_ms: None,
        last_exit: None,
    }];
    Figures {
        status,
        outbox: OutboxStats {
            buffered: 3,
            dropped: 1,
            capacity: 10,
        },
        host: HostMetrics {
            cpu_pct: 12.5,
            cpus: 2,
            mem_used_bytes: 1000,
            mem_total_bytes: 4000,
            load1: 0.25,
        },
        agent: Some(ProcessMetrics {
            replica: None,
            pid: 1,
            cpu_pct: 0.5,
            rss_bytes: 200,
        }),
        children: vec![ProcessMetrics {
            replica: Some(0),
            pid: 7,
            cpu_pct: f32::NAN,
            rss_bytes: 300,
        }],
        server: Some(ServerMetrics {
            healthy: true,
            healthz_status: 200,
            version: "2.12.8".into(),
            server_id: "NABC".into(),
            server_name: "148e272f4d9589".into(),
            cluster: "lhr".into(),
            connections: 42,
            in_msgs: 10,
            routes: 2,
            gateways: vec![GatewayMetric {
                name: "ams".into(),
                outbound: true,
                inbound: 2,
            }],
            ..Default::default()
        }),
        control: Some(View {
            url: "tls://connect.ngs.global".into(),
            connected: false,
            ever_connected: true,
            away: Duration::from_secs(45),
            alarmed: true,
            failure: Some(Failure {
                kind: FailureKind::Tls,
                reason: "invalid peer certificate: UnknownIssuer".into(),
            }),
            trust: Trust {
                compiled: 146,
                ..Trust::default()
            },
        }),
    }
}

const ID: &str = r#"agent="148e272f4d9589",region="lhr",role="server""#;

#[test]
fn renders_identity_state_processes_and_varz() {
    let text = render(&figures());
    for line in [
        format!("geolb_child_state{{{ID},state=\"running\"}} 1"),
        format!("geolb_child_state{{{ID},state=\"paused\"}} 0"),
        format!("geolb_child_restarts_total{{{ID}}} 2"),
        format!("geolb_child_replicas_running{{{ID}}} 1"),
        format!("geolb_host_cpu_percent{{{ID}}} 12.5"),
        format!("geolb_host_memory_total_bytes{{{ID}}} 4000"),
        format!("geolb_process_cpu_percent{{{ID},process=\"agent\"}} 0.5"),
        format!("geolb_process_cpu_percent{{{ID},process=\"child\",replica=\"0\"}} NaN"),
        format!("geolb_process_resident_memory_bytes{{{ID},process=\"child\",replica=\"0\"}} 300"),
        format!("geolb_outbox_dropped_total{{{ID}}} 1"),
        format!("geolb_nats_connections{{{ID}}} 42"),
        format!("geolb_nats_in_msgs_total{{{ID}}} 10"),
        format!("geolb_nats_routes{{{ID}}} 2"),
        format!("geolb_nats_gateway_outbound{{{ID},gateway=\"ams\"}} 1"),
        format!("geolb_nats_gateway_inbound{{{ID},gateway=\"ams\"}} 2"),
        format!("geolb_control_connected{{{ID}}} 0"),
        format!("geolb_control_away_seconds{{{ID}}} 45"),
        format!("geolb_control_alarm{{{ID}}} 1"),
        format!("geolb_control_failure_info{{{ID},kind=\"tls\",reason=\"invalid peer certificate: UnknownIssuer\"}} 1"),
        format!("geolb_control_tls_roots{{{ID},source=\"compiled\"}} 146"),
        format!("geolb_control_tls_roots{{{ID},source=\"tls_ca\"}} 0"),
        "# TYPE geolb_nats_in_msgs_total counter".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    assert!(
        text.contains(r#"program="/opt/nats-server/2.12.8/nats-server \"x\"""#),
        "{text}"
    );
    well_formed(&text);
}

#[test]
fn a_client_or_an_unreachable_monitor_shows_no_varz() {
    let mut f = figures();
    f.server = None;
    f.control = None;
    assert!(!render(&f).contains("geolb_nats_"));
    assert!(!render(&f).contains("geolb_control_"));
    f.server = Some(ServerMetrics {
        error: Some("connection refused".into()),
        ..Default::default()
    });
    let text = render(&f);
    assert!(
        text.contains(&format!("geolb_nats_monitor_up{{{ID}}} 0")),
        "{text}"
    );
    assert!(!text.contains("geolb_nats_connections"), "{text}");
    well_formed(&text);
}

/// Each family declared once, before its samples, which all follow it.
fn well_formed(text: &str) {
    let mut declared = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(declared.insert(name.clone()), "{name} declared twice");
            current = name;
        } else if !line.starts_with("# HELP ") {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "sample outside its family: {line}");
            assert!(line.rsplit(' ').next().is_some_and(|v| !v.is_empty()));
        }
    }
}

#[test]
fn routes_requests() {
    assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
    assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
    assert_eq!(route(b"GET /healthz HTTP/1.1\r\n\r\n"), Route::Health);
    assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
    assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
    assert_eq!(route(b"garbage"), Route::Bad);
    assert_eq!(route(b""), Route::Bad);
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("answered in time")
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    raw
}

#[tokio::test]
async fn serves_metrics_over_http() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let scrape: Scrape = Arc::new(|| Box::pin(async { render(&figures()) }));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    let check: Check = Arc::new(move || {
        let view = figures().control.unwrap();
        match flag.load(std::sync::atomic::Ordering::SeqCst) {
            true => Ok("control plane connected".into()),
            false => view.check(),
        }
    });
    let server = tokio::spawn(serve(listener, scrape, check, token.clone()));

    let raw = within(get(addr, "/metrics")).await;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Type: {CONTENT_TYPE}")),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(body, render(&figures()));

    let raw = within(get(addr, "/nope")).await;
    assert!(raw.starts_with("HTTP/1.1 404 "), "{raw}");

    let raw = within(get(addr, "/healthz")).await;
    assert!(raw.starts_with("HTTP/1.1 503 "), "{raw}");
    assert!(
        raw.ends_with("away for 45s: tls: invalid peer certificate: UnknownIssuer; check --tls-ca (GEOLB_TLS_CA: the CA that signed the server's certificate; without it Mozilla's roots are trusted) and --tls-cert/--tls-key\n"),
        "{raw}"
    );
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let raw = within(get(addr, "/healthz")).await;
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");

    token.cancel();
    within(server).await.unwrap();
}

//! The dashboard's bad input and security, over plain HTTP: a
//! non-loopback `--listen` needs `--token`; with a token nothing is served
//! without it, and it is never written into a page; no control-plane
//! secret reaches a page or an event stream; and readers of the event
//! stream that never read cannot grow the dashboard's memory.

use geolb_tests::dashboard::DashboardProc;
use geolb_tests::procfs::rss_kib;
use geolb_tests::tools::geolb_bin;
use geolb_tests::{default_version, NatsServer, ServerConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn request(base: &str, head: &str) -> String {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "{head}Host: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).to_string()
}

#[test]
fn a_public_address_needs_a_token_of_some_length() {
    for (args, needle) in [
        (vec!["--listen", "0.0.0.0:0"], "not a loopback address"),
        (
            vec!["--listen", "127.0.0.1:0", "--token", "short"],
            "at least 16",
        ),
    ] {
        let out = Command::new(geolb_bin())
            .args(["--control", "nats://127.0.0.1:1", "dashboard"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn with_a_token_nothing_is_served_without_it_and_it_is_never_in_a_page() {
    let token = "dashboard-token-0123456789";
    let nats_token = "nats-secret-token-9876543210";
    let mut config = ServerConfig::default().jetstream();
    config.extra = format!("authorization {{ token: \"{nats_token}\" }}\n");
    let cp = NatsServer::start(default_version(), config);
    let dash = DashboardProc::start(
        &["--control", &cp.client_url(), "--token", nats_token],
        &["--token", token],
    );

    let denied = request(&dash.url, "GET / HTTP/1.1\r\n");
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(!denied.contains(token) && !denied.contains(nats_token));
    let events = request(&dash.url, "GET /events/fleet HTTP/1.1\r\n");
    assert!(
        events.starts_with("HTTP/1.1 401"),
        "the streams too: {events}"
    );

    let given = request(&dash.url, &format!("GET /runs?token={token} HTTP/1.1\r\n"));
    assert!(given.starts_with("HTTP/1.1 303"), "{given}");
    assert!(
        given.contains("location: /runs\r\n"),
        "the token leaves the address: {given}"
    );
    assert!(given.contains("HttpOnly; SameSite=Strict"), "{given}");

    let cookie = format!("Cookie: geolb_dashboard={token}\r\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let page = request(&dash.url, &format!("GET / HTTP/1.1\r\n{cookie}"));
        if !page.contains("id=\"unreachable\"") || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    let bearer = request(
        &dash.url,
        &format!("GET /runs HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"),
    );
    assert!(bearer.starts_with("HTTP/1.1 200"), "{bearer}");
    for path in ["/", "/runs", "/agent/none", "/static/dashboard.js"] {
        let body = request(&dash.url, &format!("GET {path} HTTP/1.1\r\n{cookie}"));
        assert!(!body.contains(token), "{path} holds the dashboard token");
        assert!(
            !body.contains(nats_token),
            "{path} holds the control plane's token"
        );
    }
    let host = dash.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&host).unwrap();
    write!(
        s,
        "GET /events/fleet HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let stream = String::from_utf8_lossy(&raw);
    assert!(stream.contains("event: part"), "{stream}");
    assert!(!stream.contains(nats_token) && !stream.contains(token));
}

fn heartbeat(id: &str, region: &str, seq: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1, "at_ms": geolb_proto::now_ms(), "interval_ms": 1000,
        "status": {"id": id, "region": region, "role": "client", "host": "h", "agent_version": "0.1.0",
                   "state": "running", "program": "sleep", "restarts": seq % 7, "desired_replicas": 1,
                   "replicas": [], "uptime_ms": seq},
        "outbox": {"buffered": 0, "dropped": 0, "capacity": 1000}
    }))
    .unwrap()
}

#[tokio::test]
async fn readers_that_never_read_cannot_grow_the_dashboards_memory() {
    let cp = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let dash = DashboardProc::start(&["--control", &cp.client_url()], &[]);
    dash.wait_connected().await;
    let nats = async_nats::connect(cp.client_url()).await.unwrap();
    let pid = dash.guard.pid() as i32;
    // 500 agents, heartbeating, and an event from one of them every 50 ms
    // (every event makes the next tick render the fleet part again).
    let beat = |round: u64| {
        let nats = nats.clone();
        async move {
            for i in 0..500 {
                let id = format!("agent-{i:03}");
                let subject = format!("geolb.hb.r{}.{id}", i % 5);
                nats.publish(
                    subject,
                    heartbeat(&id, &format!("r{}", i % 5), round).into(),
                )
                .await
                .unwrap();
            }
            let event = serde_json::json!({"v": 1, "seq": round, "at_ms": geolb_proto::now_ms(), "agent": "agent-000",
                "region": "r0", "role": "client", "event": {"kind": "scaled", "from": 1, "to": 1}});
            nats.publish(
                "geolb.evt.r0.agent-000",
                serde_json::to_vec(&event).unwrap().into(),
            )
            .await
            .unwrap();
            nats.flush().await.unwrap();
        }
    };
    beat(0).await;
    // Ten readers that ask for the stream and never read a byte.
    let host = dash.url.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&host).unwrap();
        write!(s, "GET /events/fleet HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        stalled.push(s);
    }
    let mut round = 1;
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(3) {
        beat(round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rss_kib(pid).unwrap();
    let (_, page) = dash.get("/");
    let part = page.len();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        beat(round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = rss_kib(pid).unwrap();
    let unbounded_kib = 10 * 4 * 12 * part as u64 / 1024;
    println!("fleet page {part} bytes; RSS {before} KiB -> {after} KiB over 12 s with 10 stalled readers (queueing every render would add about {unbounded_kib} KiB)");
    assert!(
        after < before + 24 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let (status, _) = dash.get("/");
    assert_eq!(status, 200, "still serving");
    drop(stalled);
}

//! An agent whose control plane stays away says so: after `--control-alarm`
//! an ERROR naming the URL and the reason, `geolb_control_*` in `/metrics`
//! and a 503 on `/healthz`, while its child keeps running; once the control
//! plane is there, `/healthz` turns 200 and the agent says it is back.

use geolb_tests::agent::AgentBuilder;
use geolb_tests::http::http_get;
use geolb_tests::{default_version, free_port, wait_for, NatsServer, ServerConfig};
use std::process::Stdio;
use std::time::Duration;

const STEP: Duration = Duration::from_secs(20);

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn an_agent_alone_raises_the_alarm_and_lowers_it_when_the_control_plane_comes() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let prometheus = format!("127.0.0.1:{}", free_port());
    let log = std::env::temp_dir().join(format!(
        "geolb-alarm-{}-{}.log",
        std::process::id(),
        fastrand::u32(..)
    ));
    let file = std::fs::File::create(&log).unwrap();
    let builder = AgentBuilder::new("alarm-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .arg("--control-alarm")
        .arg("500ms")
        .arg("--prometheus-listen")
        .arg(prometheus.as_str());
    let mut cmd = std::process::Command::new(geolb_tests::agent_bin());
    cmd.args(builder.command_line(&["sleep", "60"]))
        .stdout(Stdio::null())
        .stderr(file);
    let _agent = geolb_tests::ProcessGuard::spawn("geolb-agent alarm-1", &mut cmd).unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let line = wait_for("the agent's ERROR", STEP, || {
        let line = read_log()
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("Cannot reach the control plane"))
            .map(str::to_string);
        async move { line }
    })
    .await;
    assert!(line.contains(&url), "{line}");
    assert!(line.contains("connection refused"), "{line}");
    assert!(line.contains("kind=unreachable"), "{line}");
    let (code, body) = http_get(&format!("http://{prometheus}/healthz")).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("not reached yet") && body.contains("connection refused"),
        "{body}"
    );
    let (_, text) = http_get(&format!("http://{prometheus}/metrics")).unwrap();
    assert_eq!(
        metric(&text, "geolb_control_connected"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "geolb_control_alarm"), Some(1.0), "{text}");
    assert!(metric(&text, "geolb_control_away_seconds").is_some_and(|s| s >= 0.0));
    let running = text.lines().any(|l| {
        l.starts_with("geolb_child_state{") && l.contains("state=\"running\"") && l.ends_with(" 1")
    });
    assert!(running, "supervision goes on:\n{text}");

    // The control plane comes.
    let _server = NatsServer::start(
        default_version(),
        ServerConfig {
            port,
            ..Default::default()
        },
    );
    wait_for("/healthz to turn 200", STEP, || {
        let ok =
            http_get(&format!("http://{prometheus}/healthz")).is_ok_and(|(code, _)| code == 200);
        async move { ok.then_some(()) }
    })
    .await;
    let (_, text) = http_get(&format!("http://{prometheus}/metrics")).unwrap();
    assert_eq!(
        metric(&text, "geolb_control_connected"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "geolb_control_alarm"), Some(0.0), "{text}");
    assert!(!text.contains("geolb_control_failure_info"), "{text}");
    assert!(
        read_log().contains("Control plane reached again."),
        "{}",
        read_log()
    );
    let _ = std::fs::remove_file(&log);
}

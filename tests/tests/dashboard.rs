//! `geolb dashboard` in a real headless Chromium, on a small hand-built
//! control plane (a nats-server with JetStream and real agents): the fleet
//! page follows the agents live, a CLI stop shows without a reload,
//! commands appear only with `--allow-commands` and then work (signed),
//! the runs, a report with its fault shaded and a compare render, the
//! live scenario page grows, the page survives losing the control plane,
//! and no secret reaches a page. Each test saves a screenshot under
//! `target/screenshots/`.

use geolb::Control;
use geolb_proto::connect::ControlArgs;
use geolb_tests::agent::{geolb, AgentBuilder};
use geolb_tests::browser::{Browser, Network};
use geolb_tests::dashboard::{sample_report, DashboardProc};
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::{default_version, with_timeout, NatsServer, ProcessGuard, ServerConfig};
use std::time::{Duration, Instant};

fn control_plane() -> NatsServer {
    NatsServer::start(default_version(), ServerConfig::default().jetstream())
}

fn agent(control: &str, id: &str, region: &str) -> ProcessGuard {
    AgentBuilder::new(id, region)
        .control(control)
        .arg("--role")
        .arg("client")
        .quiet()
        .spawn(&["sleep", "600"])
}

async fn connect(url: &str) -> Control {
    Control::connect(&ControlArgs {
        url: Some(url.to_string()),
        ..Default::default()
    })
    .await
    .expect("connect")
}

#[tokio::test]
async fn the_fleet_page_follows_the_agents_without_a_reload() {
    let Some(browser) = Browser::start("dashboard fleet", Network::On).await else {
        return;
    };
    let cp = control_plane();
    let url = cp.client_url();
    let _agents: Vec<ProcessGuard> = [("lon-a", "lon"), ("ams-a", "ams"), ("dfw-a", "dfw")]
        .iter()
        .map(|(id, r)| agent(&url, id, r))
        .collect();
    let dash = DashboardProc::start(&["--control", &url], &[]);
    browser.goto(&format!("{}/", dash.url)).await;
    browser
        .wait_attr(
            "every agent on the fleet page",
            Duration::from_secs(15),
            "#summary",
            "data-agents",
            |n| n == "3",
        )
        .await;
    for id in ["lon-a", "ams-a", "dfw-a"] {
        let css = format!(".card[data-agent={id}]");
        browser
            .wait_attr(
                &format!("{id} running"),
                Duration::from_secs(10),
                &css,
                "data-state",
                |s| s == "running",
            )
            .await;
    }
    assert_eq!(browser.count(".region").await, 3, "regions as columns");
    browser.eval("window.__geolb_mark = 42; return true;").await;
    browser.screenshot("dashboard-fleet").await;

    let out = geolb(&url, &["cmd", "stop", "ams-a", "--mode", "kill"]);
    assert!(
        out.status.success(),
        "geolb cmd stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped = Instant::now();
    // The requirement: stopped on the open page within 3 s.
    browser
        .wait_attr(
            "ams-a stopped on the open page",
            Duration::from_secs(3),
            ".card[data-agent=ams-a]",
            "data-state",
            |s| s == "stopped",
        )
        .await;
    println!(
        "ams-a shown stopped {:?} after the CLI's reply",
        stopped.elapsed()
    );
    assert_eq!(
        browser.eval("return window.__geolb_mark;").await,
        42,
        "the page was not reloaded"
    );
    browser.screenshot("dashboard-fleet-stopped").await;

    browser.goto(&format!("{}/agent/lon-a", dash.url)).await;
    assert!(browser
        .text("#state")
        .await
        .unwrap_or_default()
        .contains("running"));
    assert_eq!(
        browser.count("button[id^=cmd-]").await,
        0,
        "no command button without --allow-commands"
    );
    assert!(
        browser.source().await.contains("read-only"),
        "the page says it is read-only"
    );
    browser.close().await;
}

#[tokio::test]
async fn commands_are_signed_csrf_checked_and_only_with_allow_commands() {
    let Some(browser) = Browser::start("dashboard commands", Network::On).await else {
        return;
    };
    let cp = SecureControlPlane::start(&[("lon-c", "lon")], 1);
    let _agent = cp
        .agent("lon-c", "lon")
        .arg("--role")
        .arg("client")
        .quiet()
        .spawn(&["sleep", "600"]);
    let coordinator = cp.seed("coordinator").display().to_string();
    let signing = cp.seed("signing").display().to_string();
    let global = [
        "--control",
        &cp.url(),
        "--nkey-file",
        &coordinator,
        "--signing-key",
        &signing,
    ];
    let dash = DashboardProc::start(&global, &["--allow-commands"]);
    dash.wait_agent("lon-c").await;
    let page = format!("{}/agent/lon-c", dash.url);
    browser.goto(&page).await;
    browser
        .wait_attr(
            "lon-c running",
            Duration::from_secs(15),
            "table.status",
            "data-state",
            |s| s == "running",
        )
        .await;
    let stop = browser
        .client
        .find(fantoccini::Locator::Css("#cmd-stop"))
        .await
        .expect("a stop button");
    stop.click().await.expect("click stop");
    let result = geolb_tests::wait_for("the command's result", Duration::from_secs(15), || async {
        browser.text("#result").await.filter(|t| !t.is_empty())
    })
    .await;
    assert!(result.contains("stop: ok"), "{result}");
    browser
        .wait_attr(
            "lon-c stopped",
            Duration::from_secs(5),
            "table.status",
            "data-state",
            |s| s == "stopped",
        )
        .await;
    browser.screenshot("dashboard-command").await;

    for name in ["coordinator", "signing", "agent-lon-c", "client-1"] {
        let seed = std::fs::read_to_string(cp.seed(name)).unwrap();
        assert!(
            !browser.source().await.contains(seed.trim()),
            "the {name} seed is not in the page"
        );
    }
    // A forged form (no CSRF value, another origin) is refused and changes nothing.
    let (status, body) = post(
        &dash.url,
        "/agent/lon-c/command",
        "verb=start&csrf=forged",
        "http://evil.example",
    );
    assert_eq!(status, 403, "{body}");
    browser.close().await;
}

fn post(base: &str, path: &str, form: &str, origin: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[tokio::test]
async fn runs_a_report_with_its_fault_shaded_and_a_compare() {
    let Some(browser) = Browser::start("dashboard runs", Network::On).await else {
        return;
    };
    let cp = control_plane();
    let url = cp.client_url();
    let control = connect(&url).await;
    let (a, b) = (
        sample_report("r-a", "dc-outage", 400, 40),
        sample_report("r-b", "dc-outage", 300, 1500),
    );
    for r in [&a, &b, &sample_report("r-c", "flap", 10, 0)] {
        with_timeout(
            Duration::from_secs(10),
            geolb::report::store::save(&control, r),
        )
        .await
        .unwrap();
    }
    let dash = DashboardProc::start(&["--control", &url], &[]);
    dash.wait_connected().await;
    browser.goto(&format!("{}/runs", dash.url)).await;
    assert_eq!(
        browser.attr("#runs", "data-count").await.as_deref(),
        Some("3")
    );
    browser
        .goto(&format!("{}/runs?scenario=dc-outage", dash.url))
        .await;
    assert_eq!(
        browser.attr("#runs", "data-count").await.as_deref(),
        Some("2"),
        "filtered by scenario"
    );
    browser.screenshot("dashboard-runs").await;

    browser.goto(&format!("{}/runs/r-b", dash.url)).await;
    assert_eq!(
        browser.attr("#verdict", "data-passed").await.as_deref(),
        Some("false")
    );
    assert!(browser.count("svg.timeline").await >= 1, "a timeline");
    assert!(
        browser.count("svg.timeline rect.faultp").await >= 1,
        "the fault period is shaded"
    );
    assert!(
        browser.count("svg.timeline rect.m.fault").await >= 1,
        "the fault is marked"
    );
    assert_eq!(
        browser.count("table.summary tr[data-strategy]").await,
        2,
        "rtt and random"
    );
    assert!(
        browser.count("table.landing td.exp").await >= 1,
        "the landing table"
    );
    browser.screenshot("dashboard-report").await;
    browser
        .goto(&format!("{}/runs/r-b?sort=id&asc=true", dash.url))
        .await;
    assert_eq!(
        browser
            .attr("#clients tr[data-client]", "data-client")
            .await
            .as_deref(),
        Some("lon-random-2"),
        "sorted by id"
    );

    browser
        .goto(&format!("{}/compare?a=r-a&b=r-b", dash.url))
        .await;
    assert_eq!(
        browser.attr("#compare", "data-b").await.as_deref(),
        Some("r-b")
    );
    assert_eq!(browser.count("svg.timeline").await, 2, "two timelines");
    assert_eq!(
        browser.count("svg.timeline rect.faultp").await,
        2,
        "each run's fault, aligned"
    );
    let x = browser.eval("return Array.from(document.querySelectorAll('svg.timeline rect.faultp')).map(r => r.getAttribute('x'));").await;
    assert_eq!(x[0], x[1], "the faults start at the same place: {x}");
    browser.screenshot("dashboard-compare").await;

    for path in [
        "/runs/nope",
        "/runs/a.b",
        "/agent/nope",
        "/live/nope",
        "/nowhere",
        "/runs/%2e%2e",
    ] {
        let (status, body) = dash.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("Not found"), "{path}: a 404 page");
    }
    browser.close().await;
}

#[tokio::test]
async fn the_exported_report_renders_with_networking_disabled() {
    let Some(browser) = Browser::start("dashboard export", Network::Off).await else {
        return;
    };
    let cp = control_plane();
    let url = cp.client_url();
    let control = connect(&url).await;
    with_timeout(
        Duration::from_secs(10),
        geolb::report::store::save(&control, &sample_report("r-x", "dc-outage", 500, 40)),
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("geolb-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r-x.html");
    let out = geolb(
        &url,
        &["report", "show", "r-x", "--html", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("<script") && !text.contains("http://") && !text.contains("https://"),
        "self-contained"
    );

    // A report far larger than the stream keeps renders too, bounded.
    let huge = sample_report("r-huge", "dc-outage", 100_000, 40);
    let huge_file = dir.join("r-huge.html");
    std::fs::write(&huge_file, geolb::dashboard::export::html(&huge)).unwrap();
    let size = std::fs::metadata(&huge_file).unwrap().len();
    println!("100,000-entry report: {size} bytes of HTML");
    assert!(size < 3 << 20, "bounded: {size} bytes");

    for (f, name) in [
        (&file, "dashboard-export"),
        (&huge_file, "dashboard-export-100k"),
    ] {
        browser.goto(&format!("file://{}", f.display())).await;
        assert!(
            browser.count("svg.timeline rect.faultp").await >= 1,
            "{name}: the fault shaded"
        );
        assert!(
            browser.count("table.summary").await == 1,
            "{name}: the summary"
        );
        let fetched = browser
            .eval("return performance.getEntriesByType('resource').length;")
            .await;
        assert_eq!(fetched, 0, "{name} fetched nothing");
        browser.screenshot(name).await;
    }
    let marks = browser.count("svg.timeline rect.m").await;
    assert!(marks <= 30 * 161, "{marks} marks for 100,000 entries");
    browser.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_running_scenario_grows_on_its_live_page() {
    use geolb_proto::scenario::{subject, ScenarioUpdate, TimelineEntry};
    let Some(browser) = Browser::start("dashboard live", Network::On).await else {
        return;
    };
    let cp = control_plane();
    let url = cp.client_url();
    let dash = DashboardProc::start(&["--control", &url], &[]);
    dash.wait_connected().await;
    let nats = async_nats::connect(&url).await.unwrap();
    let send = |u: ScenarioUpdate| {
        let nats = nats.clone();
        async move {
            nats.publish(subject("run-1"), serde_json::to_vec(&u).unwrap().into())
                .await
                .unwrap();
            nats.flush().await.unwrap();
        }
    };
    let entry = |t_ms, source: &str, kind: &str| ScenarioUpdate::Entry {
        run: "run-1".into(),
        entry: TimelineEntry {
            t_ms,
            source: source.into(),
            kind: kind.into(),
            detail: "hand-made".into(),
        },
    };
    send(ScenarioUpdate::Begin {
        v: 1,
        run: "run-1".into(),
        scenario: "dc-outage".into(),
        params: serde_json::json!({"region": "lon"}),
        at_ms: geolb_proto::now_ms(),
    })
    .await;
    send(entry(0, "scenario", "begin")).await;
    geolb_tests::wait_for(
        "the run to be followed",
        Duration::from_secs(10),
        || async { (dash.get("/live/run-1").0 == 200).then_some(()) },
    )
    .await;
    browser.goto(&format!("{}/live/run-1", dash.url)).await;
    send(entry(500, "scenario", "fault")).await;
    for i in 0..20 {
        send(entry(600 + i * 50, &format!("lon-rtt-{i}"), "client_moved")).await;
    }
    browser
        .wait_attr(
            "the timeline to grow",
            Duration::from_secs(5),
            "div.timeline-box",
            "data-entries",
            |n| n == "22",
        )
        .await;
    assert_eq!(
        browser
            .attr("div.timeline-box", "data-faults")
            .await
            .as_deref(),
        Some("1"),
        "the fault, still open, shaded"
    );
    send(entry(2500, "scenario", "restore")).await;
    send(ScenarioUpdate::End {
        run: "run-1".into(),
        passed: true,
        reasons: vec![],
        at_ms: geolb_proto::now_ms(),
    })
    .await;
    browser
        .wait_attr(
            "the run to end",
            Duration::from_secs(5),
            "#state",
            "data-ended",
            |e| e == "true",
        )
        .await;
    browser.screenshot("dashboard-live").await;
    browser.goto(&format!("{}/", dash.url)).await;
    assert!(
        browser.source().await.contains("/live/run-1"),
        "the fleet page links the run"
    );
    browser.close().await;
}

#[tokio::test]
async fn losing_the_control_plane_is_shown_and_recovered() {
    let Some(browser) = Browser::start("dashboard control plane loss", Network::On).await else {
        return;
    };
    let mut cp = control_plane();
    let url = cp.client_url();
    let _agent = agent(&url, "lon-l", "lon");
    let dash = DashboardProc::start(&["--control", &url], &[]);
    browser.goto(&format!("{}/", dash.url)).await;
    browser
        .wait_attr(
            "the agent",
            Duration::from_secs(15),
            ".card[data-agent=lon-l]",
            "data-liveness",
            |l| l == "live",
        )
        .await;
    cp.kill();
    geolb_tests::wait_for("the page to say so", Duration::from_secs(10), || async {
        (browser.count("#unreachable").await == 1).then_some(())
    })
    .await;
    assert!(browser
        .text("#unreachable")
        .await
        .unwrap()
        .contains("control plane unreachable"));
    browser.screenshot("dashboard-unreachable").await;
    cp.restart();
    geolb_tests::wait_for("the page to recover", Duration::from_secs(20), || async {
        (browser.count("#unreachable").await == 0).then_some(())
    })
    .await;
    browser
        .wait_attr(
            "the agent live again",
            Duration::from_secs(15),
            ".card[data-agent=lon-l]",
            "data-liveness",
            |l| l == "live",
        )
        .await;
    browser.close().await;
}

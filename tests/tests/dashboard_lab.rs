//! The lab's own dashboard, end to end on a small lab: `lab up` prints
//! its URL and `lab status` has it; the fleet page shows every agent of the
//! lab live; a scenario run on the lab appears in the runs list and its
//! report page holds the timeline with the fault shaded, and its live
//! page followed it to its end; the lab's
//! dashboard is read-only; `lab down` stops it. One lab for all of it (a
//! lab costs about 15 s of two busy cores).

use geolb_tests::browser::{Browser, Network};
use geolb_tests::lab_dir::{stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use std::time::Duration;

fn small_lab(ports_base: u16) -> String {
    format!(
        r#"regions = ["lon", "ams"]
servers_per_region = 2
ports_base = {ports_base}
[clients]
rtt = 2
random = 1
[latency.pairs]
"lon-ams" = "8ms"
"#
    )
}

#[tokio::test]
async fn the_labs_dashboard_shows_the_fleet_and_the_runs() {
    let Some(browser) = Browser::start("lab dashboard", Network::On).await else {
        return;
    };
    let lab = LabDir::new("dashboard");
    let config = lab.config(&small_lab(LAB_PORTS.start + 1250));
    let up = lab.geolb(&["lab", "up", "--config", &config]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let printed = String::from_utf8_lossy(&up.stdout).to_string();
    assert!(
        printed.contains("dashboard: http://127.0.0.1:"),
        "{printed}"
    );
    let status = lab.json(&["lab", "status", "--json"]);
    let url = status["dashboard_url"]
        .as_str()
        .expect("a dashboard URL")
        .trim_end_matches('/')
        .to_string();
    assert!(printed.contains(&url), "{printed}");
    let agents = status["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "agent")
        .count();

    browser.goto(&format!("{url}/")).await;
    let n = agents.to_string();
    browser
        .wait_attr(
            "every agent of the lab",
            Duration::from_secs(20),
            "#summary",
            "data-agents",
            |a| a == n,
        )
        .await;
    geolb_tests::wait_for("every agent live", Duration::from_secs(20), || async {
        (browser
            .count(".card[data-liveness=live][data-state=running]")
            .await
            == agents)
            .then_some(())
    })
    .await;
    geolb_tests::wait_for("the round-trip matrix", Duration::from_secs(20), || async {
        (browser.count("table#matrix td.n").await >= 4).then_some(())
    })
    .await;
    browser.screenshot("lab-fleet").await;
    browser.goto(&format!("{url}/agent/lon-rtt")).await;
    assert_eq!(
        browser.count("button[id^=cmd-]").await,
        0,
        "the lab's dashboard is read-only"
    );
    geolb_tests::wait_for("the RTT chart", Duration::from_secs(20), || async {
        (browser.count("svg.chart polyline").await >= 3).then_some(())
    })
    .await;
    browser.screenshot("lab-agent").await;

    let report = lab.scenario(
        "dc-outage",
        &["--region", "lon", "--mode", "kill", "--duration", "2s"],
    );
    let id = report["id"].as_str().expect("a report id").to_string();
    browser.goto(&format!("{url}/runs")).await;
    let row = format!("#runs tr[data-run='{id}']");
    geolb_tests::wait_for("the run in the list", Duration::from_secs(10), || async {
        (browser.count(&row).await == 1).then_some(())
    })
    .await;
    browser.goto(&format!("{url}/runs/{id}")).await;
    assert!(
        browser.count("svg.timeline rect.faultp").await >= 1,
        "the fault shaded"
    );
    assert!(
        browser.count("svg.timeline rect.m.move").await >= 1,
        "client moves on the timeline"
    );
    browser.screenshot("lab-report").await;
    // The run was followed live too, from its progress on geolb.scenario.<run>.
    browser.goto(&format!("{url}/live/{id}")).await;
    browser
        .wait_attr(
            "the live page saw the run end",
            Duration::from_secs(10),
            "#state",
            "data-ended",
            |e| e == "true",
        )
        .await;
    assert!(
        browser.count("svg.timeline rect.faultp").await >= 1,
        "its fault shaded live"
    );
    browser.screenshot("lab-live").await;
    browser.close().await;

    let down = lab.geolb(&["lab", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        geolb_tests::http::http_get(&format!("{url}/")).is_err(),
        "the dashboard went with the lab"
    );
}

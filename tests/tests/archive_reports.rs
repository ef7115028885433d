//! `geolb report export ID|--all --to s3://...`: each report's JSON and its
//! row land under the documented keys and decode back to the stored report;
//! exporting again overwrites; an unknown id is one clear line.

use geolb::archive::batch::decode;
use geolb::report::{Report, StrategySummary, Summary};
use geolb::Control;
use geolb_tests::s3::{self, S3Server, BUCKET};
use geolb_tests::tools::geolb_bin;
use geolb_tests::{default_version, NatsServer, ServerConfig};
use std::process::{Command, Output};

fn report(id: &str, scenario: &str, started_at: &str, passed: bool) -> Report {
    let mut summary = Summary::default();
    summary.by_strategy.insert(
        "rtt".into(),
        StrategySummary {
            clients: 4,
            landed_expected_pct: 100.0,
            ..Default::default()
        },
    );
    summary.by_strategy.insert(
        "random".into(),
        StrategySummary {
            clients: 2,
            ..Default::default()
        },
    );
    Report {
        id: id.into(),
        scenario: scenario.into(),
        params: serde_json::json!({"region": "lon"}),
        started_at: started_at.into(),
        finished_at: started_at.into(),
        passed,
        reasons: if passed {
            vec![]
        } else {
            vec!["too slow".into()]
        },
        timeline: vec![],
        clients: vec![],
        summary,
        servers: None,
        duration_ms: Some(1234),
        return_home_ms: None,
        fleet: None,
        routing: None,
    }
}

fn export(nats: &NatsServer, s3: &S3Server, args: &[&str]) -> Output {
    Command::new(geolb_bin())
        .args(["--control", &nats.client_url(), "report", "export"])
        .args(args)
        .args([
            "--to",
            &format!("s3://{BUCKET}/runs"),
            "--endpoint",
            &s3.endpoint(),
        ])
        .envs(s3.env())
        .output()
        .unwrap()
}

#[tokio::test]
async fn exported_reports_decode_back_under_the_documented_keys() {
    let Some(weed) = s3::available("exported_reports_decode_back_under_the_documented_keys") else {
        return;
    };
    let s3 = S3Server::start(&weed).await;
    let nats = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let control = Control::from_client(
        async_nats::connect(nats.client_url()).await.unwrap(),
        nats.client_url(),
    );
    let reports = [
        report(
            "20261130-235959-dc-outage",
            "dc-outage",
            "2026-11-30T23:59:59.000Z",
            true,
        ),
        report(
            "20261201-000001-flap",
            "flap",
            "2026-12-01T00:00:01.000Z",
            false,
        ),
    ];
    for r in &reports {
        geolb::report::store::save(&control, r).await.unwrap();
    }

    let all = export(&nats, &s3, &["--all"]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let printed = String::from_utf8_lossy(&all.stdout);
    let archive = s3.archive("runs");
    for r in &reports {
        let date = &r.started_at[..10];
        let key = format!(
            "runs/v1/reports/dt={date}/scenario={}/{}.json.gz",
            r.scenario, r.id
        );
        assert!(
            printed.contains(&format!("{} s3://{BUCKET}/{key}", r.id)),
            "{printed}"
        );
        // The report is one line of JSON, gzip'ed: the NDJSON reader reads it.
        let mut lines = decode(&archive.get(&key).await.unwrap()).unwrap();
        assert_eq!(lines.len(), 1);
        let back: Report = serde_json::from_value(lines.remove(0)).unwrap();
        assert_eq!(&back, r, "the report decodes back to what was stored");

        let row_key = format!("runs/v1/runs/dt={date}/{}.ndjson.gz", r.id);
        let rows = decode(&archive.get(&row_key).await.unwrap()).unwrap();
        assert_eq!(rows.len(), 1, "one row per run");
        let row = &rows[0];
        assert_eq!(row["id"], r.id.as_str());
        assert_eq!(row["scenario"], r.scenario.as_str());
        assert_eq!(row["passed"], r.passed);
        assert_eq!(row["duration_ms"], 1234);
        let strategies: Vec<&str> = row["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["strategy"].as_str().unwrap())
            .collect();
        assert_eq!(strategies, ["random", "rtt"]);
        assert_eq!(row["strategies"][1]["landed_expected_pct"], 100.0);
    }

    let one = export(&nats, &s3, &[reports[0].id.as_str()]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let listed = archive.list("runs/v1/").await.unwrap();
    assert_eq!(listed.len(), 4, "exporting again overwrites: {listed:?}");

    let unknown = export(&nats, &s3, &["no-such-report"]);
    assert_eq!(unknown.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.trim().starts_with("geolb: no report no-such-report")
            && err.trim().lines().count() == 1,
        "{err}"
    );
}

//! A lab with an `[archive]` section, against a real S3 server (SeaweedFS):
//! `lab up` runs the archiver, a scenario's report is exported by itself,
//! and the lab's telemetry and report arrive under the documented keys and
//! decode back to what was published.

use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::StreamExt;
use geolb::archive::batch::decode;
use geolb::archive::stream::STREAM;
use geolb::Control;
use geolb_proto::connect::ControlArgs;
use geolb_tests::archive::{assert_once_in_order, telemetry};
use geolb_tests::lab_dir::{stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use geolb_tests::s3::{self, S3Server, BUCKET};
use geolb_tests::{wait_for, with_timeout};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn lab_config(ports_base: u16, endpoint: &str) -> String {
    format!(
        r#"regions = ["lon", "ams"]
servers_per_region = 2
ports_base = {ports_base}
[clients]
rtt = 1
random = 1
[latency.pairs]
"lon-ams" = "8ms"
[archive]
to = "s3://{BUCKET}/lab"
endpoint = "{endpoint}"
flush_interval = "1s"
"#
    )
}

/// A connection to the lab's control plane as identity `name`.
async fn connect_as(status: &Value, name: &str) -> Control {
    let seed = status["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("identity {name}"))["seed_path"]
        .as_str()
        .unwrap()
        .to_string();
    let args = ControlArgs {
        url: status["control_url"].as_str().map(String::from),
        nkey_file: Some(seed.into()),
        ..ControlArgs::default()
    };
    Control::connect(&args).await.unwrap()
}

/// Every message of the telemetry stream up to `last`: sequence to (subject, payload).
async fn stream_messages(control: &Control, last: u64) -> BTreeMap<u64, (String, Value)> {
    let js = async_nats::jetstream::new(control.client().clone());
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut all = BTreeMap::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let seq = message.info().unwrap().stream_sequence;
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        all.insert(seq, (message.subject.to_string(), payload));
        if seq >= last {
            break;
        }
    }
    all
}

// Multi-threaded: the live subscription keeps reading while `geolb` runs (a blocking call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_run_lands_in_the_archive_as_it_was_published() {
    let Some(weed) = s3::available("a_lab_run_lands_in_the_archive_as_it_was_published") else {
        return;
    };
    let s3 = S3Server::start(&weed).await;
    let lab = LabDir::new("archive");
    let config = lab.config(&lab_config(LAB_PORTS.start + 1200, &s3.endpoint()));
    let up = lab.geolb_with(&["lab", "up", "--config", &config], &s3.env());
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let status = lab.json(&["lab", "status", "--json"]);

    // What the agents publish, seen live by the lab's observer identity.
    let observer = connect_as(&status, "client-1").await;
    let mut live = observer.client().subscribe("geolb.evt.>").await.unwrap();

    let run = lab.geolb_with(
        &[
            "scenario",
            "run",
            "--json",
            "dc-outage",
            "--region",
            "lon",
            "--mode",
            "kill",
            "--duration",
            "2s",
        ],
        &s3.env(),
    );
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        stderr(&run)
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let id = report["id"].as_str().unwrap();
    let date = &report["started_at"].as_str().unwrap()[..10];
    let report_key = format!("lab/v1/reports/dt={date}/scenario=dc-outage/{id}.json.gz");
    assert!(
        stderr(&run).contains(&format!(
            "exported report {id} to s3://{BUCKET}/{report_key}"
        )),
        "{}",
        stderr(&run)
    );

    let mut events = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), live.next()).await {
        events.push((
            m.subject.to_string(),
            serde_json::from_slice::<Value>(&m.payload).unwrap(),
        ));
    }
    assert!(
        !events.is_empty(),
        "the scenario made agents publish events"
    );

    let coordinator = connect_as(&status, "coordinator").await;
    let js = async_nats::jetstream::new(coordinator.client().clone());
    let last = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let archive = s3.archive("lab");
    wait_for(
        "the archiver to store the scenario's telemetry",
        T,
        || async {
            let keys = archive.list("lab/v1/telemetry/").await.ok()?;
            let stored = keys
                .iter()
                .filter_map(|(k, _)| geolb::archive::layout::batch_range(k))
                .map(|r| r.1)
                .max()?;
            (stored >= last).then_some(())
        },
    )
    .await;

    let lines = with_timeout(T, telemetry(&archive)).await;
    let upto: Vec<(String, Value)> = lines
        .into_iter()
        .filter(|(_, l)| l["seq"].as_u64().unwrap() <= last)
        .collect();
    assert_once_in_order(&upto, last);
    let published = with_timeout(T, stream_messages(&coordinator, last)).await;
    for (key, line) in &upto {
        let (subject, payload) = &published[&line["seq"].as_u64().unwrap()];
        assert_eq!(&line["subject"], subject, "{key}");
        assert_eq!(
            &line["data"], payload,
            "{key}: decodes back to what was published"
        );
        let kind = line["kind"].as_str().unwrap();
        let hour = &line["time"].as_str().unwrap()[11..13];
        let folder = format!(
            "lab/v1/telemetry/kind={kind}/dt={}/hour={hour}/",
            &line["time"].as_str().unwrap()[..10]
        );
        assert!(key.starts_with(&folder), "{key} is under {folder}");
    }
    for kind in ["heartbeat", "event", "metrics", "client"] {
        assert!(
            upto.iter().any(|(_, l)| l["kind"] == kind),
            "{kind} archived"
        );
    }
    for (subject, data) in &events {
        assert!(
            upto.iter()
                .any(|(_, l)| &l["subject"] == subject && &l["data"] == data),
            "a live event is in the archive: {subject} {data}"
        );
    }

    let mut body = decode(&archive.get(&report_key).await.unwrap()).unwrap();
    assert_eq!(
        body.remove(0),
        report,
        "the report decodes back to what was stored"
    );
    let rows = decode(
        &archive
            .get(&format!("lab/v1/runs/dt={date}/{id}.ndjson.gz"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rows[0]["scenario"], "dc-outage");
    assert_eq!(rows[0]["passed"], report["passed"]);

    let explicit = format!("s3://{BUCKET}/explicit");
    let endpoint = s3.endpoint();
    let scale = lab.geolb_with(
        &[
            "scenario",
            "run",
            "--json",
            "--export",
            &explicit,
            "--s3-endpoint",
            &endpoint,
            "scale",
            "--region",
            "ams",
            "--clients",
            "2",
        ],
        &s3.env(),
    );
    assert!(scale.status.success(), "{}", stderr(&scale));
    let scaled: Value = serde_json::from_slice(&scale.stdout).unwrap();
    let key = format!(
        "explicit/v1/reports/dt={}/scenario=scale/{}.json.gz",
        &scaled["started_at"].as_str().unwrap()[..10],
        scaled["id"].as_str().unwrap()
    );
    assert!(
        s3.archive("explicit").get(&key).await.is_ok(),
        "--export overrides [archive]: {key}"
    );

    let down = lab.geolb(&["lab", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let log = std::fs::read_to_string(lab.0.join("lab/logs/archiver.log")).unwrap();
    assert!(
        log.contains("geolb: archived"),
        "the archiver stopped on SIGTERM: {log}"
    );
}

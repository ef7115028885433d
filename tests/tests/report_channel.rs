//! The client report channel from the agent's side, driven by a client that
//! is not ours (a few lines of Python), as any nats.go or nats.js client
//! could: status records are published on `geolb.client.<region>.<id>` and
//! kept in the metrics, moves become `client_moved` events, and malformed
//! datagrams are ignored.
//!
//! Needs `python3` on the PATH (standard library only; on Debian `apt-get
//! install python3`); without it the test fails saying so.

use futures::StreamExt;
use geolb_proto::client::{ClientRecord, MoveReason};
use geolb_proto::{subject, Event, EventKind, Metrics};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::{default_version, with_timeout, NatsServer, ServerConfig};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

const FOREIGN_CLIENT: &str = r#"
import json, os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = os.environ["GEOLB_REPORT_SOCKET"]
server = {"url": "nats://127.0.0.1:4222", "region": "lon", "name": "lon-1", "cluster": "lon"}
s.sendto(b"this is not a record", path)
s.sendto(json.dumps({"type": "moved", "at_ms": 1, "client": "py-1", "region": "lon",
                     "reason": "initial", "to": server, "gap_ms": 0}).encode(), path)
while True:
    s.sendto(json.dumps({"type": "status", "at_ms": int(time.time() * 1000), "client": "py-1",
                         "region": "lon", "strategy": "rtt", "server": server, "candidates": [],
                         "traffic": {"sent": 5, "received": 4, "lost": 1, "duplicated": 0,
                                     "out_of_order": 0,
                                     "latency_ms": {"p50": 1, "p90": 2, "p99": 3, "max": 4}},
                         "switches": 0}).encode(), path)
    time.sleep(0.1)
"#;

/// Panics with what to install when `python3` cannot run.
fn require_python3() {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "this test drives the report channel from a Python client and needs python3 on the PATH; \
         install it (Debian: `apt-get install python3`)"
    );
}

#[tokio::test]
async fn a_foreign_client_reports_through_the_agent() {
    require_python3();
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let nats = async_nats::connect(&url).await.expect("connect");
    let mut statuses = nats
        .subscribe(subject::client("lon", "rep-1"))
        .await
        .unwrap();
    let mut events = nats
        .subscribe(subject::event("lon", "rep-1"))
        .await
        .unwrap();
    let mut metrics = nats
        .subscribe(subject::metrics("lon", "rep-1"))
        .await
        .unwrap();
    let _agent = AgentBuilder::new("rep-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["python3", "-c", FOREIGN_CLIENT]);

    let status = with_timeout(T, statuses.next())
        .await
        .expect("a status record");
    let ClientRecord::Status(status) = ClientRecord::decode(&status.payload).expect("a record")
    else {
        panic!("a status record");
    };
    assert_eq!(status.client, "py-1");
    assert_eq!(status.traffic.lost, 1);

    let moved = with_timeout(T, async {
        while let Some(message) = events.next().await {
            let event: Event = serde_json::from_slice(&message.payload).expect("event JSON");
            if let EventKind::ClientMoved { report } = event.event {
                return *report;
            }
        }
        panic!("the event subscription ended");
    })
    .await;
    assert_eq!(moved.reason, MoveReason::Initial);
    assert_eq!(moved.to.expect("moved to a server").name, "lon-1");

    let sample = with_timeout(T, async {
        while let Some(message) = metrics.next().await {
            let m: Metrics = serde_json::from_slice(&message.payload).expect("metrics JSON");
            if let Some(client) = m.client {
                return client;
            }
        }
        panic!("the metrics subscription ended");
    })
    .await;
    assert_eq!(sample[0]["client"], "py-1");
}

//! Bad input gets a clear, typed error and changes nothing: the agent keeps
//! running and its child keeps its pid. Sent raw over NATS (as any tool
//! could) and through `geolb`.

use futures::StreamExt;
use geolb_proto::{subject, EventKind, Reply};
use geolb_tests::agent::{geolb, AgentBuilder};
use geolb_tests::{default_version, free_port, wait_for, with_timeout, NatsServer, ServerConfig};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// One request; `None` while nobody answers yet.
async fn try_raw(client: &async_nats::Client, subject: String, body: Vec<u8>) -> Option<Reply> {
    let request = client.request(subject, body.into());
    let message = tokio::time::timeout(Duration::from_millis(500), request)
        .await
        .ok()?
        .ok()?;
    Reply::decode(&message.payload).ok()
}

async fn raw(client: &async_nats::Client, subject: String, body: Vec<u8>) -> Reply {
    let message = with_timeout(T, client.request(subject, body.into()))
        .await
        .expect("the agent answers");
    Reply::decode(&message.payload).expect("a reply")
}

#[tokio::test]
async fn every_bad_command_is_refused_and_changes_nothing() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let client = async_nats::connect(&url).await.expect("connect");
    let mut refused = client
        .subscribe(subject::event("lon", "bad-1"))
        .await
        .unwrap();
    let mut agent = AgentBuilder::new("bad-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let status = || {
        raw(
            &client,
            subject::command_group("bad-1") + ".status",
            b"".to_vec(),
        )
    };
    let first = wait_for("the agent answers", T, || async {
        let reply = try_raw(&client, subject::command_group("bad-1") + ".status", vec![]).await?;
        reply.state.replicas.first()?.pid
    })
    .await;

    let huge = format!(
        "{{\"id\":\"x\",\"args\":{{\"pad\":\"{}\"}}}}",
        "a".repeat(100_000)
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("stop", b"not json".to_vec(), "bad_request"),
        ("stop", b"\xff\xfe\xfd".to_vec(), "bad_request"),
        ("stop", br#"{"args":{}}"#.to_vec(), "bad_request"),
        ("stop", br#"{"v":99,"id":"a"}"#.to_vec(), "bad_request"),
        ("stop", huge.into_bytes(), "bad_request"),
        ("stop", deep.into_bytes(), "bad_request"),
        ("explode", br#"{"id":"b"}"#.to_vec(), "unknown_verb"),
        (
            "stop",
            br#"{"id":"c","args":{"force":true}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "stop",
            br#"{"id":"d","args":{"mode":"nuke"}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "stop",
            br#"{"id":"e","args":{"grace":"-5s"}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "flap",
            br#"{"id":"f","args":{"down":-100}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "scale",
            br#"{"id":"g","args":{"replicas":0}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "scale",
            br#"{"id":"h","args":{"replicas":5000}}"#.to_vec(),
            "invalid_argument",
        ),
        (
            "upgrade",
            br#"{"id":"i","args":{"to":"9.9.9"}}"#.to_vec(),
            "not_installed",
        ),
        (
            "upgrade",
            br#"{"id":"j","args":{"to":"/no/such/nats-server"}}"#.to_vec(),
            "not_installed",
        ),
        ("start", br#"{"id":"k"}"#.to_vec(), "conflict"),
        (
            "flap",
            br#"{"id":"l","args":{"cancel":true}}"#.to_vec(),
            "conflict",
        ),
    ];
    for (verb, body, kind) in &cases {
        let reply = raw(
            &client,
            format!("{}.{verb}", subject::command_group("bad-1")),
            body.clone(),
        )
        .await;
        let error = reply
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{verb} {kind}: no error"));
        assert!(!reply.ok);
        assert_eq!(error.kind.as_str(), *kind, "{verb}: {}", error.message);
        assert!(!error.message.is_empty());
        assert_eq!(
            reply.state.replicas[0].pid,
            Some(first),
            "{verb} {kind} left the child alone"
        );
    }
    assert!(agent.try_status().is_none(), "the agent is still running");
    assert_eq!(status().await.state.replicas[0].pid, Some(first));

    // Input refused before it was understood is also reported as an event.
    let refusal = with_timeout(T, async {
        while let Some(message) = refused.next().await {
            let event: geolb_proto::Event =
                serde_json::from_slice(&message.payload).expect("event JSON");
            if matches!(event.event, EventKind::CommandRefused { .. }) {
                return event;
            }
        }
        panic!("the event subscription ended");
    })
    .await;
    assert!(matches!(refusal.event, EventKind::CommandRefused { .. }));
}

#[tokio::test]
async fn a_repeated_command_id_is_answered_from_memory() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let client = async_nats::connect(&url).await.expect("connect");
    let _agent = AgentBuilder::new("dup-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let subject = subject::command_group("dup-1") + ".restart";
    let body = br#"{"id":"same-id","args":{"mode":"kill"}}"#.to_vec();
    let first = wait_for("the agent restarts its child", T, || async {
        let message = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject.clone(), body.clone().into()),
        )
        .await
        .ok()?
        .ok()?;
        let reply = Reply::decode(&message.payload).ok()?;
        reply.ok.then_some(reply)
    })
    .await;
    let again = raw(&client, subject.clone(), body.clone()).await;
    assert_eq!(again, first, "the same answer, word for word");
    let now = raw(
        &client,
        subject::command_group("dup-1") + ".status",
        b"".to_vec(),
    )
    .await;
    assert_eq!(
        now.state.replicas[0].pid, first.state.replicas[0].pid,
        "not restarted twice"
    );
}

#[test]
fn geolb_says_in_one_line_when_the_control_plane_is_unreachable() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    for args in [
        &["fleet", "ls"][..],
        &["cmd", "status", "all"][..],
        &["watch"][..],
    ] {
        let output = geolb(&url, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line, got {stderr}"
        );
        assert!(
            stderr.contains("cannot reach the control plane"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn geolb_refuses_bad_command_lines_before_sending_anything() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let cases: [&[&str]; 6] = [
        &["cmd", "explode", "all"],
        &["cmd", "stop", "all", "--mode", "nuke"],
        &["cmd", "stop", "all", "--grace", "-1s"],
        &["cmd", "scale", "all", "--replicas", "0"],
        &["cmd", "status", "role=router"],
        &["cmd", "status", "all", "--to", "2.14.6"],
    ];
    for args in cases {
        let output = geolb(&url, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("cannot reach"),
            "{args:?} was refused before connecting: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

//! The back channel no one else can drive: with the least-privilege layout,
//! a client identity and an agent identity are refused by the server when
//! they try to command an agent; forged, expired, replayed and unsigned
//! commands reach the agent and are refused by it (typed error, an event,
//! nothing changed); the coordinator's signed command works.

use futures::StreamExt;
use geolb_proto::signing::{Signer, DEFAULT_VALIDITY};
use geolb_proto::{now_ms, subject, Command, EventKind, Reply, Request, StopArgs, StopMode, Verb};
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::{wait_for, with_timeout};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

async fn pid(control: &geolb::Control, id: &str) -> Option<u32> {
    let reply = control
        .request(id, &Request::Status, Duration::from_millis(500))
        .await
        .ok()?;
    reply.state.replicas.first()?.pid
}

fn restart() -> Request {
    Request::Restart(StopArgs {
        mode: StopMode::Kill,
        grace: None,
    })
}

#[tokio::test]
async fn only_the_coordinators_signed_commands_are_obeyed() {
    let cp = SecureControlPlane::start(&[("sec-1", "lon"), ("sec-2", "lon")], 1);
    let _a1 = cp
        .agent("sec-1", "lon")
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let _a2 = cp
        .agent("sec-2", "lon")
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let control = cp.coordinator().await;
    let first = wait_for("sec-1 answers signed status", T, || pid(&control, "sec-1")).await;
    wait_for("sec-2 answers", T, || pid(&control, "sec-2")).await;
    let mut events = control
        .client()
        .subscribe(subject::event("lon", "sec-1"))
        .await
        .unwrap();
    control.client().flush().await.unwrap();

    // The server itself refuses a client and another agent.
    let target = subject::command("sec-1", Verb::Restart);
    for identity in ["client-1", "agent-sec-2"] {
        let (client, mut errors) = cp.connect_as(identity).await;
        let body = Command::new(format!("{identity}-try"), &restart()).encode();
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            client.request(target.clone(), body.into()),
        )
        .await;
        assert!(
            !matches!(answer, Ok(Ok(_))),
            "{identity} got an answer from sec-1"
        );
        let error = with_timeout(T, errors.recv())
            .await
            .expect("a server error");
        assert!(
            error.to_lowercase().contains("permissions violation"),
            "{identity}: {error}"
        );
    }
    // An agent cannot impersonate another agent's telemetry either.
    let (agent2, mut errors) = cp.connect_as("agent-sec-2").await;
    agent2
        .publish(subject::heartbeat("lon", "sec-1"), "{}".into())
        .await
        .unwrap();
    let error = with_timeout(T, errors.recv())
        .await
        .expect("a server error");
    assert!(
        error.to_lowercase().contains("permissions violation"),
        "{error}"
    );

    // What reaches the agent unsigned, forged, expired or replayed is refused by it.
    let (raw, target) = (control.client(), &target);
    let send = |body: Vec<u8>| async move {
        let message = with_timeout(T, raw.request(target.clone(), body.into()))
            .await
            .expect("the agent answers");
        Reply::decode(&message.payload).expect("a reply")
    };
    let signer = cp.signer();
    let forger = Signer::generate();
    let mut old = Command::new("expired-1", &restart());
    old.issued_at_ms = Some(now_ms() - 10 * 60_000);
    let replayed = signer.sign(
        Command::new("once-1", &restart()),
        "sec-1",
        Verb::Restart,
        DEFAULT_VALIDITY,
    );
    let misdirected = signer.sign(
        Command::new("other-1", &restart()),
        "sec-2",
        Verb::Restart,
        DEFAULT_VALIDITY,
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unsigned",
            Command::new("plain-1", &restart()).encode(),
            "not signed",
        ),
        (
            "forged",
            forger.sign(
                Command::new("forged-1", &restart()),
                "sec-1",
                Verb::Restart,
                DEFAULT_VALIDITY,
            ),
            "not trusted",
        ),
        (
            "expired",
            signer.sign(old, "sec-1", Verb::Restart, DEFAULT_VALIDITY),
            "expired",
        ),
        ("for another agent", misdirected, "not \"sec-1\""),
    ];
    for (what, body, why) in cases {
        let reply = send(body).await;
        let error = reply
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(
            error.kind.as_str(),
            "unauthorized",
            "{what}: {}",
            error.message
        );
        assert!(error.message.contains(why), "{what}: {}", error.message);
        assert_eq!(
            reply.state.replicas[0].pid,
            Some(first),
            "{what} changed nothing"
        );
    }
    let once = send(replayed.clone()).await;
    assert!(once.ok, "the first copy is obeyed: {:?}", once.error);
    let after_once = once.state.replicas[0].pid;
    let again = send(replayed).await;
    let error = again.error.expect("the replay is refused");
    assert_eq!(error.kind.as_str(), "unauthorized");
    assert!(error.message.contains("replay"), "{}", error.message);
    assert_eq!(
        again.state.replicas[0].pid, after_once,
        "the replay changed nothing"
    );

    // Refusals are events.
    let refused = with_timeout(T, async {
        let mut kinds = Vec::new();
        while let Some(message) = events.next().await {
            let event: geolb_proto::Event = serde_json::from_slice(&message.payload).unwrap();
            if let EventKind::CommandRefused { error, .. } = event.event {
                kinds.push(error);
                if kinds.len() == 5 {
                    return kinds;
                }
            }
        }
        panic!("the event subscription ended")
    })
    .await;
    assert!(
        refused.iter().all(|k| k.as_str() == "unauthorized"),
        "{refused:?}"
    );

    // The coordinator's signed command works, through `Control` and through `geolb`.
    let reply = control
        .request("sec-1", &restart(), T)
        .await
        .expect("a reply");
    assert!(reply.ok, "{:?}", reply.error);
    assert_ne!(reply.state.replicas[0].pid, after_once);
    let geolb = std::process::Command::new(geolb_tests::geolb_bin())
        .args(["--control", &cp.url()])
        .arg("--nkey-file")
        .arg(cp.seed("coordinator"))
        .arg("--signing-key")
        .arg(cp.seed("signing"))
        .args(["cmd", "status", "sec-2", "--json"])
        .output()
        .unwrap();
    assert!(
        geolb.status.success(),
        "{}",
        String::from_utf8_lossy(&geolb.stderr)
    );
    let unsigned = std::process::Command::new(geolb_tests::geolb_bin())
        .args(["--control", &cp.url()])
        .arg("--nkey-file")
        .arg(cp.seed("coordinator"))
        .args(["cmd", "status", "sec-2"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&unsigned.stdout);
    assert!(
        !unsigned.status.success() && out.contains("unauthorized"),
        "{out}"
    );
}

#[tokio::test]
async fn every_identity_can_still_do_its_job() {
    let cp = SecureControlPlane::start(&[("job-1", "ams")], 1);
    let _agent = cp
        .agent("job-1", "ams")
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let control = cp.coordinator().await;
    wait_for("job-1 answers", T, || pid(&control, "job-1")).await;
    // The coordinator reads the fleet from its JetStream stream.
    let out = wait_for("fleet ls lists job-1", T, || async {
        let output = std::process::Command::new(geolb_tests::geolb_bin())
            .args(["--control", &cp.url()])
            .arg("--nkey-file")
            .arg(cp.seed("coordinator"))
            .args(["fleet", "ls"])
            .output()
            .ok()?;
        let out = String::from_utf8_lossy(&output.stdout).to_string();
        (output.status.success() && out.contains("job-1")).then_some(out)
    })
    .await;
    assert!(out.contains("live"), "{out}");
    // A client (observer) reads telemetry and discovers agents (ADR-32).
    let (observer, mut errors) = cp.connect_as("client-1").await;
    let mut heartbeats = observer.subscribe("geolb.hb.>").await.unwrap();
    with_timeout(T, heartbeats.next())
        .await
        .expect("a heartbeat");
    let info = with_timeout(T, observer.request("$SRV.INFO.geolb-agent", "".into()))
        .await
        .expect("the agent answers discovery");
    let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["metadata"]["id"], "job-1");
    assert!(errors.try_recv().is_err(), "no permission errors");
}

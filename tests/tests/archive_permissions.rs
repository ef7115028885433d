//! The `archiver` identity of the least-privilege layout: it archives the
//! telemetry stream and can do nothing else (no commands, no stream
//! changes, no live telemetry, no creating the stream); an identity that
//! may not read the stream gets one clear line, not a hang.

use geolb::archive::stream::{self, StreamLimits};
use geolb_tests::archive::{telemetry, ArchiverProc};
use geolb_tests::s3::{self, S3Server, BUCKET};
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::tools::geolb_bin;
use geolb_tests::{wait_for, with_timeout};
use nix::sys::signal::Signal;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn archive_as(
    cp: &SecureControlPlane,
    s3: &S3Server,
    identity: &str,
    dir: &std::path::Path,
) -> ArchiverProc {
    let seed = cp.seed(identity).display().to_string();
    ArchiverProc::spawn(
        &cp.url(),
        &format!("s3://{BUCKET}/perm"),
        &s3.endpoint(),
        &["--flush-interval", "500ms"],
        &[s3.env().as_slice(), &[("GEOLB_NKEY_FILE", seed.as_str())]].concat(),
        dir,
    )
}

/// `geolb archive` as `identity`, which must fail: its stderr.
fn refused_as(cp: &SecureControlPlane, s3: &S3Server, identity: &str) -> String {
    let output = Command::new(geolb_bin())
        .args(["--control", &cp.url(), "--nkey-file"])
        .arg(cp.seed(identity))
        .args([
            "archive",
            "--to",
            &format!("s3://{BUCKET}/perm"),
            "--endpoint",
            &s3.endpoint(),
        ])
        .envs(s3.env())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{identity}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("geolb: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

#[tokio::test]
async fn the_archiver_identity_archives_and_may_do_nothing_else() {
    let Some(weed) = s3::available("the_archiver_identity_archives_and_may_do_nothing_else") else {
        return;
    };
    let s3 = S3Server::start(&weed).await;
    let cp = SecureControlPlane::start(&[("perm-1", "lon")], 1);
    let dir = cp.server.dir().to_path_buf();

    let missing = refused_as(&cp, &s3, "archiver");
    assert!(
        missing.contains("may not create stream GEOLB_TELEMETRY")
            && missing.contains("Permissions Violation"),
        "{missing}"
    );

    let coordinator = cp.coordinator().await;
    stream::ensure(&coordinator, StreamLimits::default(), None)
        .await
        .unwrap();
    let _agent = cp.agent("perm-1", "lon").spawn(&["sleep", "60"]);

    let observer = refused_as(&cp, &s3, "client-1");
    assert!(
        observer.contains("may not read stream GEOLB_TELEMETRY")
            && observer.contains("$JS.API.STREAM.INFO.GEOLB_TELEMETRY"),
        "{observer}"
    );

    let mut archiver = archive_as(&cp, &s3, "archiver", &dir);
    archiver.wait_stored(5, T).await;
    archiver.guard.signal(Signal::SIGTERM).unwrap();
    let status = archiver.guard.wait_exit(T).await.expect("exits on SIGTERM");
    assert!(status.success(), "{}", archiver.output());
    let lines = with_timeout(T, telemetry(&s3.archive("perm"))).await;
    assert!(
        lines
            .iter()
            .any(|(_, l)| l["kind"] == "heartbeat" && l["agent"] == "perm-1"),
        "the agent's heartbeats were archived: {} lines",
        lines.len()
    );

    let (client, mut errors) = cp.connect_as("archiver").await;
    client
        .publish("geolb.agent.perm-1.stop", "{}".into())
        .await
        .unwrap();
    client
        .publish("$JS.API.STREAM.DELETE.GEOLB_TELEMETRY", "".into())
        .await
        .unwrap();
    client
        .publish(
            "$JS.API.CONSUMER.DELETE.GEOLB_TELEMETRY.geolb-archiver",
            "".into(),
        )
        .await
        .unwrap();
    client
        .publish("geolb.hb.lon.perm-1", "{}".into())
        .await
        .unwrap();
    let _live = client.subscribe("geolb.evt.>").await.unwrap();
    client.flush().await.unwrap();
    let mut refused = Vec::new();
    wait_for("five permission violations", T, || {
        while let Ok(e) = errors.try_recv() {
            refused.push(e);
        }
        let done = refused.len() >= 5;
        async move { done.then_some(()) }
    })
    .await;
    for subject in [
        "geolb.agent.perm-1.stop",
        "$JS.API.STREAM.DELETE.GEOLB_TELEMETRY",
        "$JS.API.CONSUMER.DELETE.GEOLB_TELEMETRY.geolb-archiver",
        "geolb.hb.lon.perm-1",
        "geolb.evt.>",
    ] {
        assert!(
            refused.iter().any(|e| e.contains(subject)),
            "{subject} refused: {refused:?}"
        );
    }
    let js = async_nats::jetstream::new(coordinator.client().clone());
    let kept = js.get_stream(stream::STREAM).await.unwrap();
    assert!(kept
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("geolb-archiver")
        .await
        .is_ok());
}

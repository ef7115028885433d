//! `geolb archive` against a real control plane and a real S3 server
//! (SeaweedFS): killed mid-batch and restarted, the S3 server down for 30 s,
//! and a batch stored but never acknowledged: each ends with every message
//! archived once, in order, as it was published.

use async_nats::jetstream;
use geolb::archive::batch::{Batch, Limits, Line, Record};
use geolb::archive::stream::{self, StreamLimits};
use geolb::Control;
use geolb_tests::archive::{assert_once_in_order, telemetry, ArchiverProc};
use geolb_tests::s3::{self, S3Server, BUCKET};
use geolb_tests::{default_version, wait_for, with_timeout, NatsServer, ServerConfig};
use nix::sys::signal::Signal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const SUBJECTS: [&str; 4] = [
    "geolb.hb.lon.t-1",
    "geolb.evt.lon.t-1",
    "geolb.metrics.ams.t-2",
    "geolb.client.dfw.t-3",
];

/// A control plane with the telemetry stream, and a connection to it.
async fn control_plane() -> (NatsServer, Control, jetstream::Context) {
    let nats = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let client = async_nats::connect(nats.client_url()).await.unwrap();
    let control = Control::from_client(client.clone(), nats.client_url());
    stream::ensure(&control, StreamLimits::default(), None)
        .await
        .unwrap();
    (nats, control, jetstream::new(client))
}

/// Publishes message `n` (which becomes stream sequence `n` in a fresh stream).
async fn publish(js: &jetstream::Context, n: u64) {
    let subject = SUBJECTS[(n % 4) as usize];
    let payload = serde_json::json!({"v": 1, "n": n, "pad": "x".repeat(100)}).to_string();
    let ack = js
        .publish(subject, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, n, "a fresh stream numbers from 1");
}

/// Checks the archive of `1..=last` and that each line is what was published.
async fn check_archive(s3: &S3Server, prefix: &str, last: u64) {
    let lines = with_timeout(T, telemetry(&s3.archive(prefix))).await;
    assert_once_in_order(&lines, last);
    for (_, line) in &lines {
        let seq = line["seq"].as_u64().unwrap();
        assert_eq!(line["data"]["n"], seq, "{line}");
        assert_eq!(line["subject"], SUBJECTS[(seq % 4) as usize], "{line}");
    }
}

fn archiver(nats: &NatsServer, s3: &S3Server, prefix: &str, args: &[&str]) -> ArchiverProc {
    ArchiverProc::spawn(
        &nats.client_url(),
        &format!("s3://{BUCKET}/{prefix}"),
        &s3.endpoint(),
        args,
        &s3.env(),
        nats.dir(),
    )
}

async fn sigterm_and_wait(proc: &mut ArchiverProc) {
    proc.guard.signal(Signal::SIGTERM).unwrap();
    let status = proc
        .guard
        .wait_exit(T)
        .await
        .expect("the archiver exits on SIGTERM");
    assert!(status.success(), "{status:?}: {}", proc.output());
}

#[tokio::test]
async fn killed_mid_batch_and_restarted_it_archives_everything_once() {
    let Some(weed) = s3::available("killed_mid_batch_and_restarted_it_archives_everything_once")
    else {
        return;
    };
    let s3 = S3Server::start(&weed).await;
    let (nats, _control, js) = control_plane().await;
    for n in 1..=300 {
        publish(&js, n).await;
    }
    // About 60 lines a batch: full batches are stored at once, the rest held for a minute.
    let args = ["--max-batch-bytes", "12KiB", "--flush-interval", "60s"];
    let first = archiver(&nats, &s3, "crash", &args);
    first.wait_stored(200, T).await;
    wait_for("the archiver to hold a partial batch", T, || async {
        (first.metric("held_messages")? > 0).then_some(())
    })
    .await;
    let stored_before = first.metric("messages_total").unwrap();
    assert!(stored_before < 300, "some messages were held, not stored");
    drop(first); // SIGKILL mid-batch

    for n in 301..=450 {
        publish(&js, n).await;
    }
    let mut second = archiver(&nats, &s3, "crash", &args);
    second.wait_stored(400, T).await;
    sigterm_and_wait(&mut second).await;
    assert!(second.output().contains("archived"), "{}", second.output());
    check_archive(&s3, "crash", 450).await;
}

#[tokio::test]
async fn a_batch_stored_but_not_acknowledged_is_written_again_under_the_same_keys() {
    let Some(weed) =
        s3::available("a_batch_stored_but_not_acknowledged_is_written_again_under_the_same_keys")
    else {
        return;
    };
    let s3 = S3Server::start(&weed).await;
    let (nats, _control, js) = control_plane().await;
    for n in 1..=50 {
        publish(&js, n).await;
    }
    // What a run that crashed between storing 1..=30 and acknowledging it left behind.
    let telemetry_stream = js.get_stream(stream::STREAM).await.unwrap();
    let mut records = Vec::new();
    for seq in 1..=30 {
        let m = telemetry_stream.get_raw_message(seq).await.unwrap();
        records.push(Record {
            seq,
            subject: m.subject.to_string(),
            time_ms: (m.time.unix_timestamp_nanos() / 1_000_000) as u64,
            payload: m.payload.clone(),
        });
    }
    let limits = Limits {
        max_bytes: 10 << 20,
        max_messages: 100_000,
        max_age: Duration::from_secs(3600),
    };
    let mut lines = records.iter().map(Line::encode);
    let mut batch = Batch::start(lines.next().unwrap(), limits, None);
    lines.for_each(|l| batch.push(l));
    let archive = s3.archive("unacked");
    let left = batch.finish(archive.url());
    for object in &left {
        archive
            .put(&object.key, object.body.clone(), "application/gzip")
            .await
            .unwrap();
    }

    let mut proc = archiver(&nats, &s3, "unacked", &["--flush-interval", "60s"]);
    proc.wait_stored(30, T).await;
    sigterm_and_wait(&mut proc).await;
    assert!(
        proc.output().contains("stored but not acknowledged"),
        "{}",
        proc.output()
    );
    for object in &left {
        let again = archive.get(&object.key).await.unwrap();
        assert_eq!(
            again, object.body,
            "{} was written again, byte for byte",
            object.key
        );
    }
    check_archive(&s3, "unacked", 50).await;
}

#[tokio::test]
async fn an_s3_outage_of_30_s_loses_and_duplicates_nothing() {
    let Some(weed) = s3::available("an_s3_outage_of_30_s_loses_and_duplicates_nothing") else {
        return;
    };
    let mut s3 = S3Server::start(&weed).await;
    let (nats, _control, js) = control_plane().await;
    let published = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (published, running, js) = (published.clone(), running.clone(), js.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = published.load(Ordering::Relaxed) + 1;
                publish(&js, n).await;
                published.store(n, Ordering::Relaxed);
            }
        })
    };
    let args = ["--flush-interval", "1s", "--max-retry-delay", "2s"];
    let mut proc = archiver(&nats, &s3, "outage", &args);
    proc.wait_stored(20, T).await;

    s3.stop();
    wait_for("the archiver to retry", T, || async {
        (proc.metric("s3_retries_total")? > 0).then_some(())
    })
    .await;
    // The outage itself: what is being measured is that it lasts 30 s.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        proc.guard.try_status().is_none(),
        "it kept running: {}",
        proc.output()
    );
    let during = proc.metric("last_sequence").unwrap();
    s3.start_again().await;

    let target = published.load(Ordering::Relaxed) + 40;
    wait_for("more messages after the outage", T, || async {
        (published.load(Ordering::Relaxed) >= target).then_some(())
    })
    .await;
    running.store(false, Ordering::Relaxed);
    publisher.await.unwrap();
    let last = published.load(Ordering::Relaxed);
    assert!(
        last > during + 100,
        "messages kept coming during the outage ({during} stored, {last} published)"
    );
    proc.wait_stored(last, T).await;
    let retries = proc.metric("s3_retries_total").unwrap();
    sigterm_and_wait(&mut proc).await;
    eprintln!("{}", proc.output());
    assert!(retries >= 2, "retries are counted: {retries}");
    check_archive(&s3, "outage", last).await;
}

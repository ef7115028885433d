//! Least privilege on the object buckets, with the layout of `geolb
//! control-plane init` on a real nats-server: the coordinator puts and
//! removes; an agent reads an object with direct gets (its info and every
//! chunk) but the server refuses it every write (a chunk, a put, a delete,
//! a purge), a consumer (which could deliver to subjects it may not
//! publish to) and other identities' replies.

use async_nats::jetstream;
use futures::StreamExt;
use geolb_proto::objects::{self, BINARIES_BUCKET, DATA_BUCKET};
use geolb_tests::objects::raw_put;
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::with_timeout;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const T: Duration = Duration::from_secs(20);

/// The next server error is a permissions violation naming `subject`.
async fn refused(errors: &mut UnboundedReceiver<String>, subject: &str) {
    let error = with_timeout(T, errors.recv())
        .await
        .expect("a server error");
    let lower = error.to_lowercase();
    assert!(
        lower.contains("permissions violation") && error.contains(subject),
        "expected a violation on {subject}, got: {error}"
    );
}

#[tokio::test]
async fn agents_read_the_buckets_and_only_the_coordinator_writes() {
    let cp = SecureControlPlane::start(&[("ob-1", "lon")], 0);
    let (coordinator, _) = cp.connect_as("coordinator").await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let put = raw_put(&coordinator, BINARIES_BUCKET, "blob", &body, &[]).await;
    assert_eq!(put.size, body.len());
    assert!(put.chunks > 1, "several chunks: {}", put.chunks);
    raw_put(&coordinator, DATA_BUCKET, "page", b"<html></html>", &[]).await;

    // The agent reads the info and every chunk, as `geolb-agent` does.
    let (agent, mut errors) = cp.connect_as_agent("ob-1").await;
    let js = jetstream::new(agent.clone());
    let stream = js
        .get_stream_no_info(objects::stream(BINARIES_BUCKET))
        .await
        .unwrap();
    let meta = with_timeout(
        T,
        stream.direct_get_last_for_subject(objects::meta_subject(BINARIES_BUCKET, "blob")),
    )
    .await
    .expect("the agent reads the info");
    let info: objects::StoredInfo = serde_json::from_slice(&meta.payload).unwrap();
    let (mut read, mut next) = (Vec::new(), 1);
    for _ in 0..info.chunks {
        let chunk = with_timeout(
            T,
            stream.direct_get_next_for_subject(
                objects::chunk_subject(BINARIES_BUCKET, &info.nuid),
                Some(next),
            ),
        )
        .await
        .expect("the agent reads a chunk");
        next = chunk.sequence + 1;
        read.extend_from_slice(&chunk.payload);
    }
    assert_eq!(read, body, "the agent read the object whole");
    let data = jetstream::new(agent.clone())
        .get_stream_no_info(objects::stream(DATA_BUCKET))
        .await
        .unwrap();
    with_timeout(
        T,
        data.direct_get_last_for_subject(objects::meta_subject(DATA_BUCKET, "page")),
    )
    .await
    .expect("the agent reads the data bucket too");
    assert!(errors.try_recv().is_err(), "reading broke no permission");

    // Writing a chunk or an info, directly or through the Object Store API.
    let chunk = objects::chunk_subject(BINARIES_BUCKET, &info.nuid);
    agent.publish(chunk.clone(), "x".into()).await.unwrap();
    refused(&mut errors, &chunk).await;
    let meta_subject = objects::meta_subject(BINARIES_BUCKET, "blob");
    agent
        .publish(meta_subject.clone(), "{}".into())
        .await
        .unwrap();
    refused(&mut errors, &meta_subject).await;
    let stream_name = objects::stream(BINARIES_BUCKET);
    for api in [
        "STREAM.INFO",
        "STREAM.PURGE",
        "STREAM.DELETE",
        "CONSUMER.CREATE",
    ] {
        let subject = format!("$JS.API.{api}.{stream_name}");
        agent.publish(subject.clone(), "{}".into()).await.unwrap();
        refused(&mut errors, &subject).await;
    }
    let ordered = format!("$JS.API.CONSUMER.CREATE.{stream_name}.c1.$O.{BINARIES_BUCKET}.C.>");
    agent.publish(ordered.clone(), "{}".into()).await.unwrap();
    refused(&mut errors, &ordered).await;

    // Others' replies stay others'.
    let mut snoop = agent.subscribe("_INBOX.>").await.unwrap();
    refused(&mut errors, "_INBOX.>").await;
    // The coordinator's JetStream requests are answered on its `_INBOX.`.
    let store = jetstream::new(coordinator.clone())
        .get_object_store(BINARIES_BUCKET)
        .await
        .unwrap();
    assert_eq!(store.info("blob").await.unwrap().digest, put.digest);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), snoop.next())
            .await
            .map_or(true, |m| m.is_none()),
        "the agent saw another identity's reply"
    );

    // The object is intact, and the coordinator alone removes it.
    assert_eq!(store.info("blob").await.unwrap().digest, put.digest);
    store.delete("blob").await.expect("the coordinator removes");
    assert!(store.info("blob").await.unwrap().deleted);
}

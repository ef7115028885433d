//! Objects on a control plane, for tests: `geolb` run as the coordinator
//! of a [`SecureControlPlane`], puts that bypass `geolb binary put`'s checks
//! (as any other NATS tool could store an object), a chunk corrupted in
//! place, and the files under a folder (to show nothing was left behind).
//!
//! ```no_run
//! # async fn f() {
//! use geolb_tests::{objects, secure::SecureControlPlane};
//! let cp = SecureControlPlane::start(&[("lon-1", "lon")], 0);
//! let out = objects::geolb_as_coordinator(&cp, &["binary", "ls"]);
//! # }
//! ```

use crate::secure::SecureControlPlane;
use crate::tools::geolb_bin;
use async_nats::jetstream::{self, object_store};
use geolb_proto::objects as proto;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `geolb ARGS` as the coordinator of `cp`, signing its commands.
pub fn geolb_as_coordinator(cp: &SecureControlPlane, args: &[&str]) -> Output {
    Command::new(geolb_bin())
        .arg("--control")
        .arg(cp.url())
        .arg("--nkey-file")
        .arg(cp.seed("coordinator"))
        .arg("--signing-key")
        .arg(cp.seed("signing"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run geolb: {e}"))
}

/// Runs `geolb ARGS --json` as the coordinator of `cp`: its exit code and JSON.
pub fn geolb_json_as_coordinator(
    cp: &SecureControlPlane,
    args: &[&str],
) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let output = geolb_as_coordinator(cp, &all);
    let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "geolb {args:?} printed no JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), value)
}

/// Stores `bytes` as `name` in `bucket` directly through the Object Store,
/// with `metadata` and no checks (the coordinator's connection `client`).
pub async fn raw_put(
    client: &async_nats::Client,
    bucket: &str,
    name: &str,
    bytes: &[u8],
    metadata: &[(&str, &str)],
) -> object_store::ObjectInfo {
    let js = jetstream::new(client.clone());
    let store = match js.get_object_store(bucket).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: bucket.to_string(),
                ..Default::default()
            })
            .await
            .expect("create the bucket"),
    };
    let meta = object_store::ObjectMetadata {
        name: name.to_string(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    let mut reader = bytes;
    store.put(meta, &mut reader).await.expect("put the object")
}

/// Flips one byte in the middle chunk of object `name`: its chunks are read,
/// purged and published again, one altered, under the same info (so the
/// stored digest no longer matches).
pub async fn corrupt_chunk(client: &async_nats::Client, bucket: &str, name: &str) {
    let js = jetstream::new(client.clone());
    let store = js.get_object_store(bucket).await.expect("the bucket");
    let info = store.info(name).await.expect("the object");
    let stream = js
        .get_stream(proto::stream(bucket))
        .await
        .expect("the bucket's stream");
    let subject = proto::chunk_subject(bucket, &info.nuid);
    let mut chunks = Vec::new();
    let mut next = 1;
    while chunks.len() < info.chunks {
        let message = stream
            .direct_get_next_for_subject(subject.clone(), Some(next))
            .await
            .expect("a chunk");
        next = message.sequence + 1;
        chunks.push(message.payload.to_vec());
    }
    let middle = chunks.len() / 2;
    let at = chunks[middle].len() / 2;
    chunks[middle][at] ^= 0xff;
    stream
        .purge()
        .filter(subject.clone())
        .await
        .expect("purge the chunks");
    for chunk in chunks {
        js.publish(subject.clone(), chunk.into())
            .await
            .expect("publish a chunk")
            .await
            .expect("the chunk is stored");
    }
}

/// The sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    proto::hex(&sha2::Sha256::digest(bytes))
}

/// Every file under `dir`, sorted (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match path.is_dir() {
                true => pending.push(path),
                false => files.push(path),
            }
        }
    }
    files.sort();
    files
}

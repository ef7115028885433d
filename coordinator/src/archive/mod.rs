//! Telemetry and reports to S3-compatible object storage (Backblaze B2,
//! AWS S3, SeaweedFS, MinIO, ...), in a layout DuckDB, pandas or Athena read
//! directly (`docs/archive.md`).
//!
//! # How it works
//! - The control plane keeps every heartbeat, event, metric and client
//!   record in the JetStream stream `GEOLB_TELEMETRY` ([`stream`]), within
//!   limits, created by `geolb lab up` or the archiver.
//! - `geolb archive --to s3://BUCKET/PREFIX` ([`cli`]) reads it through a
//!   durable consumer ([`archiver`]), gathers messages into batches
//!   ([`batch`]: gzip'ed NDJSON, one object per kind, stored at 10 MiB or
//!   60 s), stores each batch under keys fixed by its range ([`layout`]),
//!   and only then acknowledges it. A crash, a restart or an S3 outage loses
//!   nothing and duplicates nothing; transient failures are retried with a
//!   capped backoff ([`retry`]) and counted ([`metrics`]).
//! - Reports go there too ([`export`]): `geolb report export`, `scenario run
//!   --export`, and every run of a lab with an `[archive]` section ([`lab`]).
//!
//! # Layout
//! - [`url`]: `s3://BUCKET/PREFIX` (pure).
//! - [`credentials`]: the key id and secret, from the environment or a file.
//! - [`store`]: the bucket through `object_store` (path-style, no checksum
//!   headers, multipart from 5 MiB).
//! - [`failure`]: what a failed request means: transient or fatal (pure).
//! - [`layout`]: the keys (pure).
//! - [`batch`]: NDJSON lines and batches (pure).
//! - [`retry`]: capped backoff with jitter, and when to stop retrying.
//! - [`metrics`]: the archiver's counters and `/metrics`.
//! - [`connect`]: the archiver's connection (its inbox, permission violations).
//! - [`stream`]: the telemetry stream and the durable consumer.
//! - [`archiver`]: the consumer loop.
//! - [`export`]: reports and their rows.
//! - [`lab`]: `[archive]` of the lab configuration, the lab's archiver process.
//! - [`cli`]: `geolb archive`, `geolb report export`, the S3 flags.

pub mod archiver;
pub mod batch;
pub mod cli;
pub mod connect;
pub mod credentials;
pub mod export;
pub mod failure;
pub mod lab;
pub mod layout;
pub mod metrics;
pub mod retry;
pub mod store;
pub mod stream;
pub mod url;

pub use store::{Archive, S3Config, StoreError};
pub use url::S3Url;

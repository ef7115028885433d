//! The agent's end of the client report channel (see `geolb_proto::client`):
//! a Unix datagram socket whose path the client replicas get in
//! `GEOLB_REPORT_SOCKET`. Status records are published on
//! `geolb.client.<region>.<id>` as they arrive (the datagram's own bytes,
//! once they decode) and kept (the latest per
//! client) for the metrics; moves become `client_moved` events in the outbox.

use crate::control::outbox::Outbox;
use crate::identity::Identity;
use async_nats::connection::State;
use geolb_proto::client::{ClientRecord, ClientStatus, MAX_RECORD, REPORT_SOCKET_ENV};
use geolb_proto::{subject, EventKind};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::UnixDatagram;
use tokio_util::sync::CancellationToken;

/// Most clients whose latest status is kept.
const MAX_CLIENTS: usize = 1024;

/// The bound report socket, removed on drop.
pub struct ReportSocket {
    socket: UnixDatagram,
    path: PathBuf,
    latest: Arc<Latest>,
}

/// The latest status of each client, for the metrics.
#[derive(Default)]
pub struct Latest(Mutex<BTreeMap<String, ClientStatus>>);

impl Latest {
    /// Every client's latest status, as JSON for the metrics record.
    pub fn snapshot(&self) -> Option<serde_json::Value> {
        let map = self.0.lock().ok()?;
        (!map.is_empty()).then(|| serde_json::to_value(map.values().collect::<Vec<_>>()).ok())?
    }

    fn keep(&self, status: ClientStatus) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() < MAX_CLIENTS || map.contains_key(&status.client) {
                map.insert(status.client.clone(), status);
            }
        }
    }
}

impl ReportSocket {
    /// Binds a fresh socket for this agent in the runtime (or temp) folder.
    pub fn bind(identity: &Identity) -> std::io::Result<ReportSocket> {
        let dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!(
            "geolb-agent-{}-{}.sock",
            identity.id,
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)?;
        Ok(ReportSocket {
            socket,
            path,
            latest: Arc::default(),
        })
    }

    /// The variable to give the client replicas.
    pub fn env(&self) -> (std::ffi::OsString, std::ffi::OsString) {
        (REPORT_SOCKET_ENV.into(), self.path.clone().into_os_string())
    }

    /// The latest statuses, shared with the metrics task.
    pub fn latest(&self) -> Arc<Latest> {
        self.latest.clone()
    }

    /// Receives records until cancelled.
    pub async fn run(
        self,
        identity: Identity,
        outbox: Arc<Outbox>,
        client: async_nats::Client,
        token: CancellationToken,
    ) {
        let subject = subject::client(&identity.region, &identity.id);
        let mut buf = vec![0u8; MAX_RECORD + 1];
        let mut refused = 0u64;
        loop {
            let n = tokio::select! {
                biased;
                _ = token.cancelled() => return,
                received = self.socket.recv(&mut buf) => match received {
                    Ok(n) => n,
                    Err(e) => return tracing::warn!(error = %e, "The report socket failed."),
                },
            };
            let record = match (n <= MAX_RECORD).then(|| ClientRecord::decode(&buf[..n])) {
                Some(Ok(record)) => record,
                _ => {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(refused, "Malformed or oversized client reports ignored.");
                    }
                    continue;
                }
            };
            match record {
                ClientRecord::Moved(report) => outbox.push(EventKind::ClientMoved {
                    report: Box::new(report),
                }),
                ClientRecord::Status(status) => {
                    // The record as the client wrote it: it decoded, and
                    // encoding it again cost as much as the decoding.
                    if client.connection_state() == State::Connected {
                        let body = bytes::Bytes::copy_from_slice(&buf[..n]);
                        let _ = client.publish(subject.clone(), body).await;
                    }
                    self.latest.keep(status);
                }
            }
        }
    }
}

impl Drop for ReportSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

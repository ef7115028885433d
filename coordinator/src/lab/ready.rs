//! The gates of `lab up`, read from the back channel: the control plane
//! answers, the emulator lists every link, every server reports itself
//! healthy with its routes and gateways up, every client reports a server.

use super::config::LabConfig;
use crate::control::Control;
use futures::StreamExt;
use geolb_proto::client::ClientRecord;
use geolb_proto::{subject, Metrics, ServerMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Connects to the lab's control plane once it answers.
pub async fn control_plane(
    state: &super::state::LabState,
    timeout: Duration,
) -> anyhow::Result<Control> {
    let deadline = Instant::now() + timeout;
    let addr = state.control_url.trim_start_matches("nats://").to_string();
    loop {
        // A published container port accepts before nats-server listens:
        // connect once the server's INFO greets us, not before.
        if !greets(&addr).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        match super::up::connect(state).await {
            Ok(control) => return Ok(control),
            Err(e) if Instant::now() >= deadline => {
                anyhow::bail!("the control plane did not come up in {timeout:?}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Whether a NATS server at `addr` sends its INFO line.
async fn greets(addr: &str) -> bool {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut head = [0u8; 4];
        stream.read_exact(&mut head).await.ok()?;
        Some(&head == b"INFO")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), read).await,
        Ok(Some(true))
    )
}

/// Waits until emulator `id` lists `links` links.
pub async fn emulator(
    control: &Control,
    id: &str,
    links: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let listed = crate::links::request(control, id, "list", serde_json::Value::Null);
        let last = match listed.await {
            Ok(reply) if reply.links.len() == links => return Ok(()),
            Ok(reply) => format!("it lists {} of {links} links", reply.links.len()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("the WAN emulator {id} is not ready after {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a server's metrics show it healthy and fully joined in the lab of `config`.
pub fn joined(m: &ServerMetrics, config: &LabConfig) -> Result<(), String> {
    crate::live::joined(m, config.servers_per_region - 1, config.regions.len() - 1)
}

/// Waits until every server in `ids` reports itself healthy, routed and gatewayed.
pub async fn servers(
    control: &Control,
    config: &LabConfig,
    ids: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut metrics = control.client().subscribe(subject::METRICS_ALL).await?;
    let mut state: BTreeMap<String, Result<(), String>> = ids
        .iter()
        .map(|id| (id.clone(), Err("no metrics yet".to_string())))
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    while state.values().any(Result::is_err) {
        let message = match tokio::time::timeout_at(deadline, metrics.next()).await {
            Ok(Some(message)) => message,
            _ => anyhow::bail!("servers not ready after {timeout:?}: {}", missing(&state)),
        };
        let Ok(m) = serde_json::from_slice::<Metrics>(&message.payload) else {
            continue;
        };
        if let (Some(entry), Some(server)) = (state.get_mut(&m.agent), m.server) {
            *entry = joined(&server, config);
        }
    }
    Ok(())
}

/// Waits until `total` distinct clients report being connected.
pub async fn clients(control: &Control, total: usize, timeout: Duration) -> anyhow::Result<()> {
    let mut statuses = control.client().subscribe(subject::CLIENTS_ALL).await?;
    let mut connected = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while connected.len() < total {
        let message = match tokio::time::timeout_at(deadline, statuses.next()).await {
            Ok(Some(message)) => message,
            _ => anyhow::bail!(
                "clients not ready after {timeout:?}: {} of {total} report a server ({} report at all)",
                connected.len(),
                seen.len()
            ),
        };
        if let Ok(ClientRecord::Status(s)) = ClientRecord::decode(&message.payload) {
            seen.insert(s.client.clone());
            if s.server.is_some() {
                connected.insert(s.client);
            }
        }
    }
    Ok(())
}

fn missing(state: &BTreeMap<String, Result<(), String>>) -> String {
    state
        .iter()
        .filter_map(|(id, r)| r.as_ref().err().map(|e| format!("{id}: {e}")))
        .collect::<Vec<_>>()
        .join("; ")
}

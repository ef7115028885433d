//! One prober per candidate, speaking raw NATS on its own connection: read
//! INFO, send CONNECT and PING, then one PING per interval (never two
//! outstanding) and time the PONG. The interval is the table's cadence for
//! the candidate ([`Table::interval`]): `interval` until an election and
//! for the elected server, `idle_interval` for the others; and one at once
//! on a burst ([`Table::burst`]).
//!
//! - A PONG within the timeout is a sample; the timeout is
//!   max(`--probe-timeout`, 3 x the candidate's average RTT).
//! - A PING unanswered past the timeout marks the candidate unresponsive
//!   (a paused or partitioned server is seen within interval + timeout, not
//!   after the 60 s ping timer of a stock client); a late PONG clears the
//!   mark but is not a sample.
//! - An async INFO with `"ldm":true` marks it draining and closes the probe
//!   connection: the server counts it as a client, and a drain that ends
//!   once its clients have left must not wait for our probes.
//! - A connection silent for `giveup`, closed or refused, is dialled again
//!   after a jittered, doubling backoff.

use super::args::Transport;
use super::backoff::Backoff;
use super::candidates::CandidateServer;
use super::table::Table;
use super::wire::{Op, Wire, CONNECT};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// The probers' parameters.
#[derive(Debug, Clone, Copy)]
pub struct ProbeParams {
    /// PING interval (before an election, and for the elected server).
    pub interval: Duration,
    /// PING interval of the other candidates once one is elected.
    pub idle_interval: Duration,
    /// Smallest unanswered-PING timeout.
    pub timeout: Duration,
    /// Close a connection silent this long.
    pub giveup: Duration,
    /// Time allowed to open the connection and read INFO.
    pub connect_timeout: Duration,
    /// Redial backoff floor.
    pub backoff_min: Duration,
    /// Redial backoff ceiling.
    pub backoff_max: Duration,
    /// TCP or WebSocket.
    pub transport: Transport,
}

/// How a probe connection ended.
#[derive(Debug, thiserror::Error)]
enum ProbeEnd {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("server error: {0}")]
    Server(String),
    #[error("no answer for {0:?}")]
    Silent(Duration),
    #[error("the server entered lame-duck mode")]
    Draining,
}

/// Probes candidate `index` until `token` is cancelled.
pub async fn run(
    index: usize,
    server: CandidateServer,
    table: Arc<Table>,
    params: ProbeParams,
    token: CancellationToken,
) {
    let mut backoff = Backoff::new(params.backoff_min, params.backoff_max);
    // Spread the first dial and the PING phase of many clients.
    let spread = params.interval.mul_f64(fastrand::f64());
    tokio::select! {
        _ = token.cancelled() => return,
        _ = tokio::time::sleep(spread) => {}
    }
    loop {
        let outcome = tokio::select! {
            biased;
            _ = token.cancelled() => return,
            outcome = session(index, &server, &table, &params, &mut backoff) => outcome,
        };
        table.down(index);
        let delay = backoff.next_delay();
        tracing::debug!(server = %server.url, error = %outcome, ?delay, "Probe connection ended; dialling again later.");
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One probe connection, from dial to its end.
async fn session(
    index: usize,
    server: &CandidateServer,
    table: &Table,
    params: &ProbeParams,
    backoff: &mut Backoff,
) -> ProbeEnd {
    let mut wire = match timeout(params.connect_timeout, Wire::open(server, params.transport)).await
    {
        Ok(Ok(wire)) => wire,
        Ok(Err(e)) => return e.into(),
        Err(_) => return ProbeEnd::Timeout("connecting"),
    };
    let info = match timeout(params.connect_timeout, wire.next_op()).await {
        Ok(Ok(Op::Info(info))) => info,
        Ok(Ok(other)) => return ProbeEnd::Server(format!("expected INFO, got {other:?}")),
        Ok(Err(e)) => return e.into(),
        Err(_) => return ProbeEnd::Timeout("waiting for INFO"),
    };
    if let Err(e) = wire.send(CONNECT).await {
        return e.into();
    }
    table.connected(index, info);
    let mut last_sent = match ping(&mut wire, table).await {
        Ok(sent) => sent,
        Err(end) => return end,
    };
    let mut outstanding = Some(last_sent);
    let mut marked = false;
    let mut elections = table.elections();
    let mut bursts = table.bursts();
    loop {
        // Awake when the outstanding PING times out or gives up, else when
        // the next one is due at this candidate's cadence.
        let wake = match outstanding {
            Some(sent) if !marked => sent + limit(table, index, params),
            Some(sent) => sent + params.giveup,
            None => last_sent + table.interval(index),
        };
        tokio::select! {
            op = wire.next_op() => {
                let now = Instant::now();
                match op {
                    Ok(Op::Pong) => {
                        if let Some(sent) = outstanding.take() {
                            let rtt = now - sent;
                            match rtt <= limit(table, index, params) {
                                true => table.sample(index, rtt, now),
                                false => table.answered_late(index),
                            }
                            marked = false;
                            backoff.reset();
                        }
                    }
                    Ok(Op::Ping) => {
                        if let Err(e) = wire.send(b"PONG\r\n").await {
                            return e.into();
                        }
                    }
                    Ok(Op::Info(info)) if info.ldm => {
                        table.draining(index);
                        return ProbeEnd::Draining;
                    }
                    Ok(Op::Err(message)) => return ProbeEnd::Server(message),
                    Ok(_) => {}
                    Err(e) => return e.into(),
                }
            }
            // A new election changes the cadence: wake to recompute.
            _ = elections.changed() => {}
            // The driver wants to know who answers now.
            _ = bursts.changed() => {
                if outstanding.is_none() {
                    match ping(&mut wire, table).await {
                        Ok(sent) => last_sent = sent,
                        Err(end) => return end,
                    }
                    outstanding = Some(last_sent);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                match outstanding {
                    Some(sent) => {
                        let waited = now - sent;
                        if waited > params.giveup {
                            return ProbeEnd::Silent(waited);
                        }
                        if waited > limit(table, index, params) {
                            table.unanswered(index, sent);
                            marked = true;
                        }
                    }
                    None => {
                        match ping(&mut wire, table).await {
                            Ok(sent) => last_sent = sent,
                            Err(end) => return end,
                        }
                        outstanding = Some(last_sent);
                    }
                }
            }
        }
    }
}

/// Sends one PING and counts it; when it went.
async fn ping(wire: &mut Wire, table: &Table) -> Result<Instant, ProbeEnd> {
    wire.send(b"PING\r\n").await?;
    table.pinged();
    Ok(Instant::now())
}

/// The unanswered-PING timeout of candidate `index`.
fn limit(table: &Table, index: usize, params: &ProbeParams) -> Duration {
    probe_timeout(params.timeout, table.average(index))
}

/// max(`floor`, 3 x the average RTT).
pub fn probe_timeout(floor: Duration, average: Option<Duration>) -> Duration {
    average.map_or(floor, |avg| floor.max(avg * 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_grows_with_slow_links() {
        let ms = Duration::from_millis;
        let cases = [
            (None, ms(600)),
            (Some(ms(1)), ms(600)),
            (Some(ms(115)), ms(600)),
            (Some(ms(250)), ms(750)),
        ];
        for (average, want) in cases {
            assert_eq!(probe_timeout(ms(600), average), want, "{average:?}");
        }
    }
}

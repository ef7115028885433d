//! Health checks of NATS servers, shared by the GeoDNS and the anycast
//! router: one [`nats`] check (TCP connect, the INFO line, PING answered by
//! PONG, all within a timeout), and the [`Tracker`] that turns consecutive
//! outcomes into up and down with a failure and a recovery threshold.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Checks the NATS server at `addr` (`IP:PORT` or `host:port`): connects,
/// reads its INFO line, sends PING and expects PONG, all within `timeout`.
/// The error says what failed.
pub async fn nats(addr: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, exchange(addr)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no PONG within {timeout:?}")),
    }
}

async fn exchange(addr: &str) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|e| format!("INFO: {e}"))?;
    if !line.starts_with("INFO ") {
        return Err(match line.is_empty() {
            true => "closed before INFO".into(),
            false => format!("no INFO line: {:?}", truncate(&line)),
        });
    }
    stream
        .get_mut()
        .write_all(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"geolb-health\"}\r\nPING\r\n",
        )
        .await
        .map_err(|e| format!("PING: {e}"))?;
    loop {
        line.clear();
        let n = stream
            .read_line(&mut line)
            .await
            .map_err(|e| format!("PONG: {e}"))?;
        match line.trim_end() {
            _ if n == 0 => return Err("closed before PONG".into()),
            "PONG" => return Ok(()),
            l if l.starts_with("-ERR") => return Err(format!("server said {}", truncate(l))),
            _ => continue,
        }
    }
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(80).map(|(i, _)| i).unwrap_or(s.len());
    s[..end].trim_end()
}

/// Up or down from consecutive outcomes: `threshold` failures in a row mark
/// a healthy server down, `recovery` passes in a row mark it up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    /// Up or down now.
    pub healthy: bool,
    /// Consecutive failures (0 after a pass).
    pub failures: u32,
    /// Consecutive passes (0 after a failure).
    pub passes: u32,
    threshold: u32,
    recovery: u32,
}

impl Tracker {
    /// A server believed `healthy` at the start.
    pub fn new(healthy: bool, threshold: u32, recovery: u32) -> Tracker {
        Tracker {
            healthy,
            failures: 0,
            passes: 0,
            threshold: threshold.max(1),
            recovery: recovery.max(1),
        }
    }

    /// Records one outcome; returns the new health when it changed.
    pub fn record(&mut self, passed: bool) -> Option<bool> {
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
        }
        let flip = match self.healthy {
            true => self.failures >= self.threshold,
            false => self.passes >= self.recovery,
        };
        flip.then(|| {
            self.healthy = !self.healthy;
            self.healthy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_work_both_ways() {
        // (threshold, recovery, outcomes, changes seen, healthy at the end)
        let cases: [(u32, u32, &str, &[bool], bool); 6] = [
            (3, 3, "ff", &[], true),
            (3, 3, "fff", &[false], false),
            (3, 3, "ffpff", &[], true),
            (3, 3, "fffppp", &[false, true], true),
            (3, 1, "fffp", &[false, true], true),
            (1, 3, "fpfpp", &[false], false),
        ];
        for (threshold, recovery, outcomes, want, end) in cases {
            let mut t = Tracker::new(true, threshold, recovery);
            let seen: Vec<bool> = outcomes
                .chars()
                .filter_map(|c| t.record(c == 'p'))
                .collect();
            assert_eq!(seen, want, "{threshold}/{recovery} {outcomes}");
            assert_eq!(t.healthy, end, "{threshold}/{recovery} {outcomes}");
        }
    }
}

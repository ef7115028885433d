//! The summary by strategy, computed from the client outcomes.

use super::{ClientOutcome, GapStats, Messages, StrategySummary, Summary};

/// Percentile `p` (0-100) of sorted values, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Gap statistics of the given gaps.
pub fn gap_stats(gaps: &[u64]) -> GapStats {
    let mut sorted = gaps.to_vec();
    sorted.sort_unstable();
    GapStats {
        p50: percentile(&sorted, 50.0),
        p90: percentile(&sorted, 90.0),
        p99: percentile(&sorted, 99.0),
        max: sorted.last().copied().unwrap_or(0) as f64,
    }
}

/// Summarises by strategy; the failover gap of a client is its largest gap.
pub fn summarise(clients: &[ClientOutcome]) -> Summary {
    let mut summary = Summary::default();
    for c in clients {
        summary.by_strategy.entry(c.strategy.clone()).or_default();
    }
    for (strategy, s) in summary.by_strategy.iter_mut() {
        let group: Vec<&ClientOutcome> =
            clients.iter().filter(|c| &c.strategy == strategy).collect();
        let gaps: Vec<u64> = group
            .iter()
            .filter_map(|c| c.gaps_ms.iter().max().copied())
            .collect();
        let landed = group
            .iter()
            .filter(|c| c.landed_region.as_deref() == Some(c.expected_region.as_str()))
            .count();
        let n = group.len().max(1) as f64;
        let pct = |count: usize| 100.0 * count as f64 / n;
        let home = |region: &Option<String>, c: &ClientOutcome| {
            region.as_deref() == Some(c.home_region.as_str())
        };
        let firsts: Vec<u64> = group.iter().filter_map(|c| c.connected_after_ms).collect();
        let dead: Vec<u64> = group.iter().filter_map(|c| c.dead_attempts).collect();
        let stale: Vec<u64> = group.iter().filter_map(|c| c.stale_ms).collect();
        let flips: Vec<u64> = group.iter().filter_map(|c| c.flip_ms).collect();
        let stale_at_end = group.iter().filter(|c| c.stale_at_end).count();
        let affected_dns = stale.len() + stale_at_end;
        *s = StrategySummary {
            first_connect_ms: gap_stats(&firsts),
            lost_connections_per_client: group
                .iter()
                .map(|c| f64::from(c.lost_connections))
                .sum::<f64>()
                / n,
            home_at_start_pct: pct(group.iter().filter(|c| home(&c.region_at_start, c)).count()),
            home_at_end_pct: pct(group.iter().filter(|c| home(&c.region_at_end, c)).count()),
            dead_attempts_per_client: (!dead.is_empty())
                .then(|| dead.iter().sum::<u64>() as f64 / n),
            stale_ms: (!stale.is_empty()).then(|| gap_stats(&stale)),
            stale_at_end_pct: (affected_dns > 0)
                .then(|| 100.0 * stale_at_end as f64 / affected_dns as f64),
            flip_ms: (!flips.is_empty()).then(|| gap_stats(&flips)),
            clients: group.len() as u32,
            failover_gap_ms: gap_stats(&gaps),
            clients_with_gaps: gaps.len() as u32,
            landed_expected_pct: 100.0 * landed as f64 / group.len().max(1) as f64,
            messages: group.iter().fold(Messages::default(), |m, c| Messages {
                sent: m.sent + c.sent,
                received: m.received + c.received,
                lost: m.lost + c.lost,
                lost_same_strategy: m.lost_same_strategy + c.lost_same_strategy,
                lost_same_strategy_cross_region: m.lost_same_strategy_cross_region
                    + c.lost_same_strategy_cross_region,
                duplicated: m.duplicated + c.duplicated,
            }),
            switches_per_client: group.iter().map(|c| c.switches as f64).sum::<f64>()
                / group.len().max(1) as f64,
        };
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(strategy: &str, gaps: &[u64], landed: &str, lost: u64) -> ClientOutcome {
        ClientOutcome {
            id: "c".into(),
            region: "lon".into(),
            strategy: strategy.into(),
            gaps_ms: gaps.to_vec(),
            landed_region: Some(landed.into()),
            expected_region: "ams".into(),
            switches: gaps.len() as u32,
            sent: 10,
            received: 9,
            lost,
            lost_same_strategy: lost,
            lost_same_strategy_cross_region: 0,
            duplicated: 0,
            ..ClientOutcome::default()
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn summarises_by_strategy() {
        let clients = [
            client("rtt", &[20, 30], "ams", 0),
            client("rtt", &[40], "ams", 0),
            client("rtt", &[], "lon", 0),
            client("random", &[5000], "dfw", 3),
        ];
        let s = summarise(&clients);
        let rtt = &s.by_strategy["rtt"];
        assert_eq!(rtt.clients, 3);
        assert_eq!(rtt.clients_with_gaps, 2);
        assert_eq!(rtt.failover_gap_ms.max, 40.0);
        assert!((rtt.landed_expected_pct - 66.666).abs() < 0.01);
        assert_eq!(rtt.switches_per_client, 1.0);
        assert_eq!(s.by_strategy["random"].messages.lost, 3);
    }
}

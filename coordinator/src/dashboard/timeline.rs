//! A timeline as the charts draw it (pure): the fault periods (from the
//! `fault` and `restore` entries of source `scenario`), and one lane per
//! source, bounded whatever the report holds: at most [`MAX_LANES`] lanes
//! (the busiest sources; the rest share one "other" lane) and at most
//! [`BUCKETS`] marks a lane (entries close in time become one mark that
//! counts them).

use super::svg::{Lane, Mark};
use geolb_proto::scenario::TimelineEntry;
use std::collections::BTreeMap;

/// Most lanes drawn.
pub const MAX_LANES: usize = 30;
/// Most marks on one lane.
pub const BUCKETS: u64 = 160;

/// The CSS class of an entry's kind, and its precedence when entries share a mark.
pub fn class(entry: &TimelineEntry) -> (&'static str, u8) {
    match entry.kind.as_str() {
        "fault" => ("fault", 5),
        "restore" => ("restore", 4),
        "client_moved" => ("move", 2),
        _ if entry.source == "scenario" => ("step", 3),
        _ => ("event", 1),
    }
}

/// The fault periods `(start, end)` in ms: each `fault` opens one (unless
/// one is open), each `restore` closes it; one still open ends at `t_end`.
pub fn fault_periods(entries: &[TimelineEntry], t_end: u64) -> Vec<(u64, u64)> {
    let mut periods = Vec::new();
    let mut open: Option<u64> = None;
    let mut sorted: Vec<&TimelineEntry> =
        entries.iter().filter(|e| e.source == "scenario").collect();
    sorted.sort_by_key(|e| e.t_ms);
    for e in sorted {
        match (e.kind.as_str(), open) {
            ("fault", None) => open = Some(e.t_ms),
            ("restore", Some(start)) => {
                periods.push((start, e.t_ms));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        periods.push((start, t_end.max(start)));
    }
    periods
}

/// When the first fault began, if any.
pub fn first_fault(entries: &[TimelineEntry]) -> Option<u64> {
    fault_periods(entries, u64::MAX).first().map(|p| p.0)
}

/// The last entry's time.
pub fn end(entries: &[TimelineEntry]) -> u64 {
    entries.iter().map(|e| e.t_ms).max().unwrap_or(0)
}

/// The lanes of `entries` over `[0, t_max]`: `scenario` first, then the
/// busiest sources in natural order, then "other" for the rest.
pub fn lanes(entries: &[TimelineEntry], t_max: u64) -> Vec<Lane> {
    let mut by_source: BTreeMap<&str, Vec<&TimelineEntry>> = BTreeMap::new();
    for e in entries {
        by_source.entry(e.source.as_str()).or_default().push(e);
    }
    let mut sources: Vec<(&str, Vec<&TimelineEntry>)> = by_source.into_iter().collect();
    sources.sort_by(|a, b| {
        (b.0 == "scenario")
            .cmp(&(a.0 == "scenario"))
            .then(b.1.len().cmp(&a.1.len()))
            .then_with(|| crate::fleet::natural_cmp(a.0, b.0))
    });
    let mut rest: Vec<&TimelineEntry> = Vec::new();
    let mut others = 0;
    if sources.len() > MAX_LANES {
        for (_, entries) in sources.drain(MAX_LANES - 1..) {
            rest.extend(entries);
            others += 1;
        }
    }
    sources.sort_by(|a, b| {
        (b.0 == "scenario")
            .cmp(&(a.0 == "scenario"))
            .then_with(|| crate::fleet::natural_cmp(a.0, b.0))
    });
    let mut lanes: Vec<Lane> = sources
        .into_iter()
        .map(|(name, entries)| lane(name.to_string(), &entries, t_max))
        .collect();
    if others > 0 {
        lanes.push(lane(format!("{others} other sources"), &rest, t_max));
    }
    lanes
}

fn lane(name: String, entries: &[&TimelineEntry], t_max: u64) -> Lane {
    let width = (t_max / BUCKETS).max(1);
    let mut buckets: BTreeMap<u64, (Mark, u8)> = BTreeMap::new();
    for e in entries {
        let (class, rank) = class(e);
        let slot = e.t_ms.min(t_max) / width;
        let mark = buckets.entry(slot).or_insert_with(|| {
            let title = format!(
                "{:.1}s {} {}: {}",
                e.t_ms as f64 / 1000.0,
                e.source,
                e.kind,
                e.detail
            );
            (
                Mark {
                    t_ms: e.t_ms,
                    class,
                    count: 0,
                    title,
                },
                rank,
            )
        });
        mark.0.count += 1;
        if rank > mark.1 {
            mark.0.class = class;
            mark.0.t_ms = e.t_ms;
            mark.1 = rank;
        }
    }
    let marks = buckets
        .into_values()
        .map(|(mut m, _)| {
            if m.count > 1 {
                m.title = format!(
                    "{} entries from {:.1}s; first: {}",
                    m.count,
                    m.t_ms as f64 / 1000.0,
                    m.title
                );
            }
            m.title = super::svg::clip(&m.title, 200);
            m
        })
        .collect();
    Lane { name, marks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t_ms: u64, source: &str, kind: &str) -> TimelineEntry {
        TimelineEntry {
            t_ms,
            source: source.into(),
            kind: kind.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn faults_open_and_close() {
        let t = [
            e(0, "scenario", "begin"),
            e(10, "scenario", "fault"),
            e(12, "scenario", "fault"),
            e(30, "lon-1", "restore"),
            e(40, "scenario", "restore"),
            e(50, "scenario", "fault"),
        ];
        assert_eq!(fault_periods(&t, 90), vec![(10, 40), (50, 90)]);
        assert_eq!(first_fault(&t), Some(10));
        assert_eq!(first_fault(&t[..1]), None);
    }

    #[test]
    fn lanes_are_bounded() {
        let entries: Vec<TimelineEntry> = (0..100_000u64)
            .map(|i| {
                e(
                    i * 3,
                    &format!("c{}", i % 500),
                    if i % 97 == 0 { "fault" } else { "client_moved" },
                )
            })
            .collect();
        let lanes = lanes(&entries, end(&entries));
        assert_eq!(lanes.len(), MAX_LANES);
        assert!(lanes.last().unwrap().name.ends_with("other sources"));
        assert!(lanes.iter().all(|l| l.marks.len() as u64 <= BUCKETS + 1));
        let counted: usize = lanes
            .iter()
            .flat_map(|l| l.marks.iter().map(|m| m.count))
            .sum();
        assert_eq!(
            counted,
            entries.len(),
            "every entry is counted in some mark"
        );
    }

    #[test]
    fn the_scenario_lane_comes_first_and_faults_win_a_shared_mark() {
        let t = [
            e(5, "c1", "client_moved"),
            e(5, "scenario", "step"),
            e(6, "scenario", "fault"),
        ];
        let lanes = lanes(&t, 10_000);
        assert_eq!(lanes[0].name, "scenario");
        assert_eq!(lanes[0].marks.len(), 1);
        assert_eq!(lanes[0].marks[0].class, "fault");
        assert_eq!(lanes[0].marks[0].count, 2);
    }
}

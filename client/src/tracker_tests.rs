//! Table tests of sequence tracking.

use super::*;
use std::time::Duration;

fn header(id: &str, run: u64, seq: u64) -> Header {
    Header {
        id: id.into(),
        run,
        seq,
        sent_us: 1_000,
    }
}

/// Feeds `seqs` from one sender and returns the counts.
fn feed(seqs: &[u64]) -> Counts {
    let mut r = Receiver::default();
    let now = Instant::now();
    for &seq in seqs {
        r.observe(&header("a", 1, seq), 2_000, now);
    }
    r.counts()
}

fn counts(received: u64, lost: u64, duplicated: u64, out_of_order: u64) -> Counts {
    Counts {
        received,
        lost,
        duplicated,
        out_of_order,
    }
}

#[test]
fn classifies_sequences() {
    let cases: Vec<(&str, Vec<u64>, Counts)> = vec![
        ("in order", vec![1, 2, 3, 4], counts(4, 0, 0, 0)),
        (
            "first seen is the baseline",
            vec![40, 41, 42],
            counts(3, 0, 0, 0),
        ),
        ("a gap", vec![1, 2, 5, 6], counts(4, 2, 0, 0)),
        ("a gap filled late", vec![1, 3, 2, 4], counts(4, 0, 0, 1)),
        ("a gap half filled", vec![1, 5, 3], counts(3, 2, 0, 1)),
        ("a repeat", vec![1, 2, 2, 3], counts(3, 0, 1, 0)),
        (
            "a repeat of an old one",
            vec![1, 2, 3, 1],
            counts(3, 0, 1, 0),
        ),
        ("a late one repeated", vec![1, 3, 2, 2], counts(3, 0, 1, 1)),
        ("before the baseline", vec![5, 6, 4], counts(3, 0, 0, 1)),
        ("swapped pair", vec![2, 1, 3], counts(3, 0, 0, 1)),
    ];
    for (name, seqs, want) in cases {
        assert_eq!(feed(&seqs), want, "{name}");
    }
}

#[test]
fn a_huge_gap_is_counted_but_remembered_only_in_part() {
    let got = feed(&[1, 1_000_002, 2]);
    // 2 fell out of the remembered window: it counts as a repeat.
    assert_eq!(got, counts(2, 1_000_000, 1, 0));
    let got = feed(&[1, 1_000_002, 1_000_001]);
    assert_eq!(got, counts(3, 999_999, 0, 1));
}

#[test]
fn senders_are_tracked_apart_and_restarts_rebase() {
    let mut r = Receiver::default();
    let now = Instant::now();
    for (id, run, seq) in [("a", 1, 1), ("b", 1, 10), ("a", 1, 2), ("b", 1, 12)] {
        r.observe(&header(id, run, seq), 2_000, now);
    }
    assert_eq!(r.counts(), counts(4, 1, 0, 0));
    assert_eq!(r.senders(), 2);
    // "a" restarts: seq 1 of run 2 is a new baseline, not a repeat.
    assert_eq!(r.observe(&header("a", 2, 1), 2_000, now), Arrival::InOrder);
    // A straggler of run 1 changes nothing.
    r.observe(&header("a", 1, 3), 2_000, now);
    assert_eq!(r.counts(), counts(5, 1, 0, 0));
}

#[test]
fn repeats_during_a_move_are_not_duplicates() {
    let mut r = Receiver::default();
    let now = Instant::now();
    r.overlap_until(now + Duration::from_secs(1));
    for seq in [1, 2, 2, 3, 3] {
        r.observe(&header("a", 1, seq), 2_000, now);
    }
    assert_eq!(r.counts(), counts(3, 0, 0, 0));
    r.observe(&header("a", 1, 3), 2_000, now + Duration::from_secs(2));
    assert_eq!(r.counts().duplicated, 1);
}

#[test]
fn latency_counts_first_copies_only() {
    let mut r = Receiver::default();
    let now = Instant::now();
    r.observe(&header("a", 1, 1), 11_000, now); // 10 ms
    r.observe(&header("a", 1, 1), 1_000_000, now); // repeat: ignored
    r.observe(&header("a", 1, 2), 500, now); // clock skew: 0
    let t = r.traffic(7);
    assert_eq!((t.sent, t.received, t.duplicated), (7, 2, 1));
    assert_eq!(t.latency_ms.max, 10.0);
    assert_eq!(t.latency_ms.p50, 0.0);
}

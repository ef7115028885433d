//! Table tests of the election and its hysteresis.

use super::*;

const POLICY: Policy = Policy {
    min_samples: 2,
    hysteresis_pct: 20.0,
    hysteresis_min_ms: 2.0,
    hold: Duration::from_secs(5),
};

fn ok(rtt: f64) -> View {
    View {
        own_region: false,
        rtt_ms: Some(rtt),
        fresh: 5,
        health: Health::Healthy,
        answered_ago: Some(Duration::from_millis(100)),
        recent: Duration::from_millis(400),
        held: 5,
        held_rtt_ms: Some(rtt),
    }
}

fn own(rtt: f64) -> View {
    View {
        own_region: true,
        ..ok(rtt)
    }
}

fn with(health: Health, rtt: f64) -> View {
    View { health, ..ok(rtt) }
}

fn few(rtt: f64) -> View {
    View {
        fresh: 1,
        ..ok(rtt)
    }
}

fn at(i: usize) -> Option<Current> {
    Some(Current {
        index: i,
        failed: None,
    })
}

fn failed(i: usize, reason: MoveReason) -> Option<Current> {
    Some(Current {
        index: i,
        failed: Some(reason),
    })
}

fn to(i: usize, reason: MoveReason) -> Decision {
    Decision::Move { to: i, reason }
}

#[test]
fn elects_the_lowest_eligible() {
    use MoveReason::Initial;
    let cases: Vec<(&str, Vec<View>, Option<usize>)> = vec![
        ("lowest wins", vec![ok(8.0), ok(0.5), ok(105.0)], Some(1)),
        ("needs min samples", vec![few(0.5), ok(8.0)], Some(1)),
        (
            "skips unhealthy",
            vec![with(Health::Unresponsive, 0.5), ok(8.0)],
            Some(1),
        ),
        (
            "skips draining",
            vec![with(Health::Draining, 0.5), ok(8.0)],
            Some(1),
        ),
        (
            "skips down",
            vec![with(Health::Down, 0.5), ok(8.0)],
            Some(1),
        ),
        ("own region wins a tie", vec![ok(1.00), own(1.04)], Some(1)),
        (
            "own region loses past a tie",
            vec![ok(1.0), own(1.5)],
            Some(0),
        ),
        (
            "nothing eligible",
            vec![few(1.0), with(Health::Down, 1.0)],
            None,
        ),
        ("no candidates", vec![], None),
    ];
    for (name, views, want) in cases {
        let mut hold = None;
        let got = decide(&views, None, &POLICY, &mut hold, &[], Instant::now());
        let want = want.map_or(Decision::Stay, |i| to(i, Initial));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn leaves_a_bad_server_at_once() {
    use MoveReason::*;
    let cases: Vec<(&str, Vec<View>, Option<Current>, Decision)> = vec![
        ("lost", vec![ok(0.5), ok(8.0)], failed(0, Lost), to(1, Lost)),
        (
            "ldm event",
            vec![ok(0.5), ok(8.0)],
            failed(0, LameDuck),
            to(1, LameDuck),
        ),
        (
            "probe: unresponsive",
            vec![with(Health::Unresponsive, 0.5), ok(8.0)],
            at(0),
            to(1, Unresponsive),
        ),
        (
            "probe: ldm",
            vec![with(Health::Draining, 0.5), ok(8.0)],
            at(0),
            to(1, LameDuck),
        ),
        (
            "probe: down",
            vec![with(Health::Down, 0.5), ok(8.0)],
            at(0),
            to(1, Lost),
        ),
        (
            "best of the rest",
            vec![ok(9.0), ok(0.5), ok(8.0)],
            failed(1, Lost),
            to(2, Lost),
        ),
        (
            "lost, nowhere to go",
            vec![ok(0.5), few(8.0)],
            failed(0, Lost),
            Decision::Leave { reason: Lost },
        ),
        (
            "draining, nowhere to go",
            vec![with(Health::Draining, 0.5)],
            at(0),
            Decision::Stay,
        ),
        (
            "silent, nowhere to go",
            vec![with(Health::Unresponsive, 0.5)],
            at(0),
            Decision::Stay,
        ),
    ];
    for (name, views, current, want) in cases {
        let mut hold = Some(Instant::now());
        let got = decide(&views, current, &POLICY, &mut hold, &[], Instant::now());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn skips_candidates_the_data_plane_could_not_reach() {
    let views = [ok(0.5), ok(8.0), ok(9.0)];
    let got = decide(&views, None, &POLICY, &mut None, &[0], Instant::now());
    assert_eq!(got, to(1, MoveReason::Initial));
}

#[test]
fn the_margin_is_the_larger_of_percent_and_minimum() {
    let cases = [
        (7.9, 10.0, true),    // 2.1 ms = 21 %: past max(2 ms, 2 ms)
        (8.0, 10.0, false),   // exactly the margin is not past it
        (8.5, 10.0, false),   // 15 %
        (0.3, 1.0, false),    // 70 % better, but only 0.7 ms
        (0.5, 3.0, true),     // 2.5 ms and 83 %
        (100.0, 130.0, true), // 30 ms past a 26 ms margin
        (100.0, 110.0, false),
    ];
    for (theirs, ours, want) in cases {
        assert_eq!(
            clearly_better(theirs, ours, &POLICY),
            want,
            "{theirs} vs {ours}"
        );
    }
}

#[test]
fn moves_to_a_better_server_only_after_the_hold() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let better = [ok(10.0), ok(1.0)];
    let close = [ok(10.0), ok(9.0)];
    // (at, views, expected) in sequence, sharing one hold timer.
    let steps: Vec<(Duration, &[View], Decision)> = vec![
        (s(0), &better, Decision::Stay),
        (s(3), &better, Decision::Stay),
        (s(4), &close, Decision::Stay), // margin lost: the timer restarts
        (s(5), &better, Decision::Stay),
        (s(9), &better, Decision::Stay),
        (s(10), &better, to(1, MoveReason::Better)),
    ];
    let mut hold = None;
    for (offset, views, want) in steps {
        let got = decide(views, at(0), &POLICY, &mut hold, &[], t0 + offset);
        assert_eq!(got, want, "at {offset:?}");
    }
}

#[test]
fn stays_when_nothing_is_clearly_better() {
    let cases: Vec<(&str, Vec<View>)> = vec![
        ("current is best", vec![ok(1.0), ok(8.0)]),
        ("within margin", vec![ok(10.0), ok(8.5)]),
        ("better but not eligible", vec![ok(10.0), few(1.0)]),
        (
            "current has no samples yet",
            vec![
                View {
                    rtt_ms: None,
                    ..ok(0.0)
                },
                ok(1.0),
            ],
        ),
    ];
    for (name, views) in cases {
        let mut hold = None;
        let t0 = Instant::now();
        for step in 0..3 {
            let now = t0 + Duration::from_secs(10 * step);
            let got = decide(&views, at(0), &POLICY, &mut hold, &[], now);
            assert_eq!(got, Decision::Stay, "{name}");
        }
    }
}

#[test]
fn failover_prefers_candidates_that_answered_recently() {
    // lon-1 (current) went silent; lon-2 is as cut but has not timed out yet.
    let silent = View {
        answered_ago: Some(Duration::from_millis(650)),
        ..own(0.5)
    };
    // ams answered just now; or 0.9 s ago, probed once a second (outside
    // the current region), so recent for 2 s; or 2 s ago at 200 ms.
    let idle_ams = View {
        answered_ago: Some(Duration::from_millis(900)),
        recent: Duration::from_secs(2),
        ..ok(8.0)
    };
    let stale_ams = View {
        answered_ago: Some(Duration::from_secs(2)),
        ..ok(8.0)
    };
    // With nothing recent, the best eligible still wins.
    for (ams, want) in [(ok(8.0), 2), (idle_ams, 2), (stale_ams, 1)] {
        let views = [with(Health::Unresponsive, 0.5), silent, ams];
        let current = Current {
            index: 0,
            failed: None,
        };
        let now = Instant::now();
        let decision = decide(&views, Some(current), &POLICY, &mut None, &[], now);
        let reason = MoveReason::Unresponsive;
        assert_eq!(decision, Decision::Move { to: want, reason }, "{ams:?}");
    }
}

#[test]
fn a_burst_waits_for_the_candidates_that_could_still_answer() {
    let ms = Duration::from_millis;
    // lon-1 (current) went silent; lon-2 (0.5 ms) and ams (8 ms) were probed
    // a burst `elapsed` ago; `answered` says who answered it.
    let view = |rtt: f64, answered: Option<u64>| View {
        answered_ago: Some(answered.map_or(ms(900), ms)),
        ..ok(rtt)
    };
    let cases = [
        // Nobody yet: lon-2 still has time (2 x 0.5 + 20 ms).
        (ms(10), None, None, false),
        // ams answered, lon-2 not and its time is up: a cut region.
        (ms(25), None, Some(2), true),
        // ams answered but lon-2, faster, may still answer.
        (ms(15), None, Some(2), false),
        // lon-2 answered: it beats everything left.
        (ms(5), Some(1), None, true),
        // Nobody at all, and every chance is over (ams: 2 x 8 + 20 ms).
        (ms(40), None, None, true),
        (ms(30), None, None, false),
    ];
    for (elapsed, lon2, ams, want) in cases {
        let views = [
            with(Health::Unresponsive, 0.5),
            view(0.5, lon2),
            view(8.0, ams),
        ];
        assert_eq!(
            burst_settled(&views, 0, elapsed),
            want,
            "{elapsed:?} lon-2 {lon2:?} ams {ams:?}"
        );
    }
    // A candidate with no RTT yet is waited for until the cap.
    let unknown = View {
        rtt_ms: None,
        ..view(1.0, None)
    };
    let views = [with(Health::Unresponsive, 0.5), unknown];
    assert!(!burst_settled(&views, 0, ms(499)));
    assert!(burst_settled(&views, 0, BURST_MAX));
}

#[test]
fn a_better_server_must_show_it_in_samples_of_the_hold() {
    // lon-2 looks better on its whole window, but its samples of the hold
    // say 30 ms like the current one, or it has only one of them.
    let stale = View {
        held_rtt_ms: Some(30.0),
        ..ok(1.0)
    };
    let unproven = View {
        held: 1,
        held_rtt_ms: Some(1.0),
        ..ok(1.0)
    };
    let t0 = Instant::now();
    // Each is reviewed (probed fast) while its whole average says better.
    for (name, challenger, moves, review) in [
        ("proven", ok(1.0), true, Some(1)),
        ("its recent samples say no", stale, false, Some(1)),
        ("too few recent samples", unproven, false, Some(1)),
        ("not better at all", ok(29.0), false, None),
    ] {
        let views = [ok(30.0), challenger];
        let mut hold = None;
        let mut got = Decision::Stay;
        for step in 0..3 {
            let now = t0 + Duration::from_secs(3 * step);
            got = decide(&views, at(0), &POLICY, &mut hold, &[], now);
        }
        assert_eq!(got != Decision::Stay, moves, "{name}: {got:?}");
        assert_eq!(seems_better(&views, 0, &POLICY, &[]), review, "{name}");
    }
}

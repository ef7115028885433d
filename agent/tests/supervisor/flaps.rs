//! Flaps in every mode, and their cancellation.

use super::*;

#[tokio::test(flavor = "current_thread")]
async fn flaps_in_every_mode() {
    let _guard = LOCK.lock().await;
    for mode in [FlapMode::Stop, FlapMode::Kill, FlapMode::Pause] {
        let mut spec = spec("/bin/sleep", &["30"]);
        spec.restart = RestartPolicy::Always;
        let mut sup = Sup::start(spec);
        sup.until("running", running).await;
        let first = sup.pid();
        let (down, up) = (Duration::from_millis(500), Duration::from_millis(300));
        let plan = FlapPlan {
            mode,
            down,
            up,
            cycles: 2,
        };
        within("flap", sup.handle.flap(plan))
            .await
            .expect("flap begins");
        let err = within("flap", sup.handle.flap(plan))
            .await
            .expect_err("already flapping");
        assert_eq!(err.kind, ErrorKind::Conflict);
        let began = sup
            .event("began", |e| matches!(e, EventKind::FlapBegan { .. }))
            .await;
        assert_eq!(
            began,
            EventKind::FlapBegan {
                mode,
                cycles: 2,
                down_ms: 500,
                up_ms: 300
            }
        );
        let snap = sup
            .until("down", |s| {
                s.flap.is_some() && s.state() != ChildState::Stopping
            })
            .await;
        let flap = snap.flap.clone().expect("a flap");
        assert_eq!(
            (flap.cycle, flap.cycles, flap.phase),
            (1, 2, geolb_proto::FlapPhase::Down)
        );
        match mode {
            FlapMode::Pause => {
                assert_eq!(snap.state(), ChildState::Paused);
                until_state(first, |state| state == Some('T')).await;
            }
            _ => assert_eq!(
                (snap.state(), snap.pids().len()),
                (ChildState::Stopped, 0),
                "{mode:?}"
            ),
        }
        let ended = sup
            .event("ended", |e| matches!(e, EventKind::FlapEnded { .. }))
            .await;
        assert_eq!(
            ended,
            EventKind::FlapEnded {
                cycles_done: 2,
                cancelled: false
            }
        );
        let snap = sup.until("up", running).await;
        assert_eq!((snap.flap, snap.restarts), (None, 0), "{mode:?}");
        assert_eq!(first == sup.pid(), mode == FlapMode::Pause, "{mode:?}");
        until_state(sup.pid(), |state| state != Some('T')).await;
        assert_eq!(sup.shut_down().await.code, 143);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn flaps_are_cancelled_by_cancel_or_start() {
    let _guard = LOCK.lock().await;
    let mut sup = Sup::start(spec("/bin/sleep", &["30"]));
    sup.until("running", running).await;
    let pid = sup.pid();
    let long = Duration::from_secs(5);
    let pause = FlapPlan {
        mode: FlapMode::Pause,
        down: long,
        up: long,
        cycles: 3,
    };
    within("flap", sup.handle.flap(pause))
        .await
        .expect("flap begins");
    sup.event("paused", |e| matches!(e, EventKind::Paused { replica: 0 }))
        .await;
    within("cancel", sup.handle.cancel_flap())
        .await
        .expect("cancel is ok");
    let ended = sup
        .event("ended", |e| matches!(e, EventKind::FlapEnded { .. }))
        .await;
    assert_eq!(
        ended,
        EventKind::FlapEnded {
            cycles_done: 0,
            cancelled: true
        }
    );
    assert_eq!(sup.handle.snapshot().flap, None);
    until_state(pid, |state| state != Some('T')).await;
    let err = within("cancel", sup.handle.cancel_flap())
        .await
        .expect_err("no flap");
    assert_eq!(err.kind, ErrorKind::Conflict);

    let kill = FlapPlan {
        mode: FlapMode::Kill,
        ..pause
    };
    within("flap", sup.handle.flap(kill))
        .await
        .expect("flap begins");
    sup.until("down", |s| s.state() == ChildState::Stopped)
        .await;
    within("start", sup.handle.start())
        .await
        .expect("start ends the flap");
    let snap = sup.until("up", running).await;
    assert_eq!(snap.flap, None);

    within("stop", sup.handle.stop(StopMode::Kill, None))
        .await
        .expect("stop is ok");
    let err = within("flap", sup.handle.flap(kill))
        .await
        .expect_err("nothing runs");
    assert!(err.message.contains("start it first"), "{}", err.message);
    assert_eq!(sup.shut_down().await.code, 0);
}

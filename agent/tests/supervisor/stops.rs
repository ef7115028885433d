//! The stop modes: term, kill (and escalation), ldm with and without the
//! drain probe.

use super::*;

#[tokio::test(flavor = "current_thread")]
async fn stop_term_lets_a_trapping_child_exit_cleanly() {
    let _guard = LOCK.lock().await;
    let mut sup = Sup::start(bash("trap 'exit 0' TERM; while :; do sleep 0.05; done"));
    sup.until("running", running).await;
    until_trapped(sup.pid(), "SigCgt:", 15).await;
    let begun = Instant::now();
    within("stop", sup.handle.stop(StopMode::Term, None))
        .await
        .expect("stop is ok");
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );
    let snap = sup.handle.snapshot();
    assert_eq!(snap.state(), ChildState::Stopped);
    assert_eq!(snap.replicas[0].last_exit.and_then(|e| e.code), Some(0));
    let stopped = sup
        .event("stopped", |e| matches!(e, EventKind::Stopped { .. }))
        .await;
    assert_eq!(
        stopped,
        EventKind::Stopped {
            replica: 0,
            mode: StopMode::Term
        }
    );
    within("stop again", sup.handle.stop(StopMode::Term, None))
        .await
        .expect("idempotent");
    assert_eq!(sup.shut_down().await.code, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn stop_term_kills_after_grace_and_kill_escalates() {
    let _guard = LOCK.lock().await;
    let ignore = "trap '' TERM; while :; do sleep 0.05; done";
    let sup = Sup::start(bash(ignore));
    sup.until("running", running).await;
    until_trapped(sup.pid(), "SigIgn:", 15).await;
    let begun = Instant::now();
    let grace = Some(Duration::from_millis(400));
    within("stop", sup.handle.stop(StopMode::Term, grace))
        .await
        .expect("stop is ok");
    assert!(
        begun.elapsed() >= Duration::from_millis(400),
        "{:?}",
        begun.elapsed()
    );
    let exit = sup.handle.snapshot().replicas[0]
        .last_exit
        .expect("an exit");
    assert_eq!(exit.signal, Some(9));

    // While a long stop runs: start is refused, stop kill escalates.
    within("start", sup.handle.start())
        .await
        .expect("start is ok");
    sup.until("running", running).await;
    until_trapped(sup.pid(), "SigIgn:", 15).await;
    let begun = Instant::now();
    let slow = sup
        .handle
        .stop(StopMode::Term, Some(Duration::from_secs(8)));
    let other = async {
        sup.until("stopping", |s| s.state() == ChildState::Stopping)
            .await;
        let busy = sup.handle.start().await.expect_err("busy");
        assert_eq!(busy.kind, ErrorKind::Conflict);
        assert!(busy.message.contains("busy: a stop"), "{}", busy.message);
        sup.handle.stop(StopMode::Kill, None).await
    };
    let (slow, kill) = within("escalation", async { tokio::join!(slow, other) }).await;
    assert_eq!((slow, kill), (Ok(()), Ok(())));
    assert!(
        begun.elapsed() < Duration::from_secs(4),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(sup.shut_down().await.code, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn stop_ldm_waits_for_the_drain_or_ends_it_with_sigint() {
    let _guard = LOCK.lock().await;
    let mut sup = Sup::start(bash(
        "trap 'sleep 0.3; exit 0' USR2; while :; do sleep 0.05; done",
    ));
    sup.until("running", running).await;
    until_trapped(sup.pid(), "SigCgt:", 12).await;
    let stop = sup.handle.stop(StopMode::Ldm, None);
    let draining = sup.until("draining", |s| s.state() == ChildState::Draining);
    let (stopped, _) = within("ldm stop", async { tokio::join!(stop, draining) }).await;
    stopped.expect("stop is ok");
    sup.event("lame duck", |e| {
        matches!(e, EventKind::LameDuck { replica: 0 })
    })
    .await;
    let exit = sup.handle.snapshot().replicas[0]
        .last_exit
        .expect("an exit");
    assert_eq!(exit.code, Some(0));
    sup.shut_down().await;

    // The probe says "drained": SIGINT ends it (exit 7), long before grace.
    let asked = Arc::new(AtomicBool::new(false));
    let mut spec = bash("trap ':' USR2; trap 'exit 7' INT; while :; do sleep 0.05; done");
    let seen = asked.clone();
    spec.drain_probe = Some(Arc::new(
        move || -> Pin<Box<dyn Future<Output = bool> + Send>> {
            seen.store(true, Ordering::SeqCst);
            Box::pin(async { true })
        },
    ));
    spec.ldm_grace = Duration::from_secs(8);
    let sup = Sup::start(spec);
    sup.until("running", running).await;
    until_trapped(sup.pid(), "SigCgt:", 2).await;
    let begun = Instant::now();
    within("ldm stop", sup.handle.stop(StopMode::Ldm, None))
        .await
        .expect("stop is ok");
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    assert!(asked.load(Ordering::SeqCst));
    let exit = sup.handle.snapshot().replicas[0]
        .last_exit
        .expect("an exit");
    assert_eq!(exit.code, Some(7));
    sup.shut_down().await;
}

//! Exit codes, restarts by policy, start/restart/replace, scale, shutdown
//! and orphans.

use super::*;
use geolb_testkit::wait_for;

#[tokio::test(flavor = "current_thread")]
async fn exit_codes_propagate() {
    let _guard = LOCK.lock().await;
    let cases = [("exit 3", 3), ("kill -9 $$", 137), ("exit 0", 0)];
    for (script, want) in cases {
        let mut sup = Sup::start(spec("/bin/sh", &["-c", script]));
        let outcome = within(script, &mut sup.task).await.expect("no panic");
        assert_eq!(outcome.code, want, "{script}");
    }
    let mut sup = Sup::start(spec("/nonexistent/geolb-child", &[]));
    let outcome = within("spawn failure", &mut sup.task)
        .await
        .expect("no panic");
    assert_eq!(outcome.code, 127);
    let exited = sup
        .event("exited", |e| matches!(e, EventKind::Exited { .. }))
        .await;
    assert_eq!(
        exited,
        EventKind::Exited {
            replica: 0,
            code: Some(127),
            signal: None
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn restarts_on_failure_with_growing_backoff() {
    let _guard = LOCK.lock().await;
    let mut spec = spec("/bin/sh", &["-c", "exit 1"]);
    spec.restart = RestartPolicy::OnFailure;
    let mut sup = Sup::start(spec);
    let mut delays = Vec::new();
    for _ in 0..3 {
        let event = sup
            .event("restarting", |e| matches!(e, EventKind::Restarting { .. }))
            .await;
        if let EventKind::Restarting {
            attempt, delay_ms, ..
        } = event
        {
            delays.push((attempt, delay_ms));
        }
    }
    assert_eq!(delays, [(1, 100), (2, 200), (3, 400)]);
    sup.until("two restarts", |s| s.restarts >= 2).await;
    within("stop", sup.handle.stop(StopMode::Kill, None))
        .await
        .expect("stop is ok");
    assert_eq!(sup.handle.snapshot().state(), ChildState::Stopped);
    assert_eq!(sup.shut_down().await.code, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn start_restart_and_replace() {
    let _guard = LOCK.lock().await;
    let mut sup = Sup::start(spec("/bin/sleep", &["30"]));
    sup.until("running", running).await;
    let err = within("start", sup.handle.start())
        .await
        .expect_err("conflict");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("already running"), "{}", err.message);

    let first = sup.pid();
    within("stop", sup.handle.stop(StopMode::Kill, None))
        .await
        .expect("stop is ok");
    let snap = sup.handle.snapshot();
    let exit = snap.replicas[0].last_exit.expect("an exit");
    assert_eq!((snap.state(), exit.signal), (ChildState::Stopped, Some(9)));
    let stopped = sup
        .event("stopped", |e| matches!(e, EventKind::Stopped { .. }))
        .await;
    assert_eq!(
        stopped,
        EventKind::Stopped {
            replica: 0,
            mode: StopMode::Kill
        }
    );
    within("start", sup.handle.start())
        .await
        .expect("start is ok");
    let second = sup.pid();
    assert_ne!(first, second);
    within("restart", sup.handle.restart(StopMode::Term, None))
        .await
        .expect("restart is ok");
    assert_ne!(sup.pid(), second);

    let bad = PathBuf::from("/nonexistent/sleep");
    let err = within("replace", sup.handle.replace_program(bad, false, None))
        .await
        .expect_err("fails");
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(
        err.message.contains("/nonexistent/sleep"),
        "{}",
        err.message
    );
    let snap = sup.handle.snapshot();
    assert_eq!(
        (snap.program.to_str(), snap.state()),
        (Some("/bin/sleep"), ChildState::Running)
    );

    let good = PathBuf::from("/usr/bin/sleep");
    within(
        "replace",
        sup.handle.replace_program(good.clone(), true, None),
    )
    .await
    .expect("ok");
    let snap = sup.handle.snapshot();
    assert_eq!((snap.state(), snap.program), (ChildState::Running, good));
    assert_eq!(sup.shut_down().await.code, 143);
}

#[tokio::test(flavor = "current_thread")]
async fn scales_up_and_down() {
    let _guard = LOCK.lock().await;
    let dir = std::env::temp_dir().join(format!("geolb-supervisor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let script = format!(
        "echo $GEOLB_REPLICA > {}/r$GEOLB_REPLICA; exec sleep 30",
        dir.display()
    );
    let mut sup = Sup::start(bash(&script));
    sup.until("running", running).await;
    within("scale", sup.handle.scale(1))
        .await
        .expect("same count is ok");
    within("scale up", sup.handle.scale(3))
        .await
        .expect("scale up is ok");
    sup.event("scaled", |e| *e == EventKind::Scaled { from: 1, to: 3 })
        .await;
    let snap = sup.until("three running", |s| s.pids().len() == 3).await;
    assert_eq!(snap.desired_replicas, 3);
    for index in 0..3 {
        let path = dir.join(format!("r{index}"));
        let seen = within("replica file", async {
            loop {
                match std::fs::read_to_string(&path) {
                    Ok(text) if !text.is_empty() => return text,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        assert_eq!(seen.trim(), index.to_string());
    }
    within("scale down", sup.handle.scale(1))
        .await
        .expect("scale down is ok");
    sup.event("scaled", |e| *e == EventKind::Scaled { from: 3, to: 1 })
        .await;
    let snap = sup.handle.snapshot();
    assert_eq!(
        (
            snap.replicas.len(),
            snap.desired_replicas,
            snap.pids().len()
        ),
        (1, 1, 1)
    );
    let err = within("scale 0", sup.handle.scale(0))
        .await
        .expect_err("invalid");
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(sup.shut_down().await.code, 143);
}

#[tokio::test(flavor = "current_thread")]
async fn forwarded_term_ends_with_143_and_orphans_are_reaped() {
    let _guard = LOCK.lock().await;
    // The subshell's `sleep` is orphaned, reparented to us, and must be reaped.
    let sup = Sup::start(spec("/bin/sh", &["-c", "(sleep 0.5 &); exec sleep 30"]));
    sup.until("running", running).await;
    let me = std::process::id();
    let main = sup.pid();
    let adopted = within("the orphan to be adopted", async {
        loop {
            let orphans: Vec<u32> = children_of(me).into_iter().filter(|p| *p != main).collect();
            if !orphans.is_empty() {
                return orphans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // The orphan ends after 0.5 s; the supervisor must reap it (no zombie left).
    let what = format!("the orphans {adopted:?} to end and be reaped");
    wait_for(&what, Duration::from_secs(10), || async {
        adopted
            .iter()
            .all(|&pid| proc_state(pid).is_none())
            .then_some(())
    })
    .await;
    assert_eq!(zombies_of(std::process::id()), Vec::<u32>::new());
    assert_eq!(sup.shut_down().await.code, 143);
}

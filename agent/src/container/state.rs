//! The container in the process mode's terms: its [`Snapshot`] (one
//! replica, Docker's state mapped to a [`ChildState`]) and the events a
//! change between two inspections gives. Pure functions, table-tested.

use crate::supervisor::Snapshot;
use geolb_engine::ContainerStatus;
use geolb_proto::{ChildState, EventKind, ExitInfo, FlapStatus, ReplicaStatus, StopMode};
use std::path::PathBuf;

/// What commands made of the container, where Docker's state says too little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    /// Report what Docker says.
    Follow,
    /// A stop in this mode is under way.
    Stopping(StopMode),
    /// Stopped by a command or a flap: down until started again.
    Stopped,
}

/// The container as last inspected: `None` when no container has its name.
pub(super) type Seen = Option<ContainerStatus>;

/// Whether it runs or Docker is about to restart it.
pub(super) fn alive(seen: &Seen) -> bool {
    seen.as_ref().is_some_and(|c| c.running || c.restarting)
}

/// Docker's state, and what commands made of it, as a child state.
pub(super) fn child_state(seen: &Seen, intent: Intent) -> ChildState {
    let Some(c) = seen else {
        return ChildState::Exited;
    };
    match (c.running, intent) {
        (true, Intent::Stopping(StopMode::Ldm)) => ChildState::Draining,
        (true, Intent::Stopping(_)) => ChildState::Stopping,
        (true, _) if c.paused => ChildState::Paused,
        (true, _) => ChildState::Running,
        (false, Intent::Stopping(_)) => ChildState::Stopping,
        (false, Intent::Stopped) => ChildState::Stopped,
        (false, Intent::Follow) if c.restarting => ChildState::Backoff,
        (false, Intent::Follow) if c.started_at_ms.is_none() => ChildState::Stopped,
        (false, Intent::Follow) => ChildState::Exited,
    }
}

/// The snapshot replies, heartbeats and metrics are made of.
pub(super) fn snapshot(
    seen: &Seen,
    intent: Intent,
    flap: Option<FlapStatus>,
    image: &str,
) -> Snapshot {
    let c = seen.as_ref();
    let restarts = c.map_or(0, |c| c.restart_count);
    let last_exit = c.and_then(|c| {
        Some(ExitInfo {
            code: Some(c.exit_code?),
            signal: None,
            at_ms: c.finished_at_ms?,
        })
    });
    let replica = ReplicaStatus {
        index: 0,
        state: child_state(seen, intent),
        pid: c.and_then(|c| c.pid),
        restarts,
        started_at_ms: c.and_then(|c| c.started_at_ms),
        last_exit,
    };
    Snapshot {
        program: PathBuf::from(c.map_or(image, |c| c.image.as_str())),
        desired_replicas: 1,
        replicas: vec![replica],
        flap,
        restarts,
    }
}

/// The events between two inspections: the same kinds a process gives
/// (`exited`, `started`, `restarting`, `paused`, `resumed`). A run that
/// began and ended between them still gives both.
pub(super) fn changes(before: &Seen, now: &Seen) -> Vec<EventKind> {
    let mut events = Vec::new();
    let was_up = before.as_ref().is_some_and(|b| b.running);
    let Some(n) = now else {
        if was_up {
            events.push(exited(None));
        }
        return events;
    };
    let new_run = match before {
        Some(b) => {
            b.id != n.id || (n.started_at_ms.is_some() && b.started_at_ms != n.started_at_ms)
        }
        None => n.started_at_ms.is_some(),
    };
    if was_up && (new_run || !n.running) {
        events.push(exited(if new_run { None } else { n.exit_code }));
    }
    if new_run {
        events.push(EventKind::Started {
            replica: 0,
            pid: n.pid.unwrap_or(0),
            program: n.image.clone(),
        });
        if !n.running {
            events.push(exited(n.exit_code));
        }
    }
    let was = |f: fn(&ContainerStatus) -> bool| before.as_ref().is_some_and(f);
    if n.restarting && !was(|b| b.restarting) {
        events.push(EventKind::Restarting {
            replica: 0,
            attempt: n.restart_count.max(1),
            delay_ms: 0,
        });
    }
    if n.paused && !was(|b| b.paused) {
        events.push(EventKind::Paused { replica: 0 });
    }
    if !n.paused && n.running && !new_run && was(|b| b.paused) {
        events.push(EventKind::Resumed { replica: 0 });
    }
    events
}

fn exited(code: Option<i32>) -> EventKind {
    EventKind::Exited {
        replica: 0,
        code,
        signal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(started: u64) -> ContainerStatus {
        ContainerStatus {
            id: "c1".into(),
            name: "lon-1".into(),
            image: "geolb-server:latest".into(),
            running: true,
            paused: false,
            restarting: false,
            pid: Some(4242),
            exit_code: None,
            started_at_ms: Some(started),
            finished_at_ms: None,
            restart_count: 0,
        }
    }

    fn exited_at(started: u64, code: i32) -> ContainerStatus {
        ContainerStatus {
            running: false,
            pid: None,
            exit_code: Some(code),
            finished_at_ms: Some(started + 10),
            ..running(started)
        }
    }

    fn kinds(events: &[EventKind]) -> Vec<String> {
        events.iter().map(EventKind::name).collect()
    }

    #[test]
    fn maps_docker_states_and_intents() {
        use ChildState::*;
        let paused = ContainerStatus {
            paused: true,
            ..running(1)
        };
        let restarting = ContainerStatus {
            restarting: true,
            ..exited_at(1, 1)
        };
        let created = ContainerStatus {
            started_at_ms: None,
            finished_at_ms: None,
            exit_code: None,
            ..exited_at(1, 0)
        };
        let cases = [
            (Some(running(1)), Intent::Follow, Running),
            (Some(paused.clone()), Intent::Follow, Paused),
            (Some(paused), Intent::Stopping(StopMode::Term), Stopping),
            (Some(running(1)), Intent::Stopping(StopMode::Ldm), Draining),
            (Some(running(1)), Intent::Stopped, Running),
            (Some(exited_at(1, 0)), Intent::Follow, Exited),
            (Some(exited_at(1, 0)), Intent::Stopped, Stopped),
            (
                Some(exited_at(1, 0)),
                Intent::Stopping(StopMode::Kill),
                Stopping,
            ),
            (Some(restarting.clone()), Intent::Follow, Backoff),
            (Some(restarting), Intent::Stopped, Stopped),
            (Some(created), Intent::Follow, Stopped),
            (None, Intent::Follow, Exited),
        ];
        for (seen, intent, want) in cases {
            assert_eq!(child_state(&seen, intent), want, "{seen:?} {intent:?}");
        }
    }

    #[test]
    fn the_snapshot_has_the_process_shape() {
        let seen = Some(exited_at(1_000, 137));
        let s = snapshot(&seen, Intent::Stopped, None, "x");
        assert_eq!(s.program, PathBuf::from("geolb-server:latest"));
        assert_eq!((s.desired_replicas, s.replicas.len()), (1, 1));
        assert_eq!(s.state(), ChildState::Stopped);
        let exit = s.replicas[0].last_exit.unwrap();
        assert_eq!((exit.code, exit.at_ms), (Some(137), 1_010));
        assert!(s.pids().is_empty());
        let s = snapshot(&Some(running(5)), Intent::Follow, None, "x");
        assert_eq!(s.pids(), [(0, 4242)]);
        assert_eq!(
            snapshot(&None, Intent::Follow, None, "img").program,
            PathBuf::from("img")
        );
    }

    #[test]
    fn changes_give_the_process_events() {
        let paused = ContainerStatus {
            paused: true,
            ..running(1)
        };
        let restarting = ContainerStatus {
            restarting: true,
            restart_count: 2,
            ..exited_at(1, 1)
        };
        let recreated = ContainerStatus {
            id: "c2".into(),
            ..running(1)
        };
        let cases: [(Seen, Seen, &[&str]); 10] = [
            (Some(running(1)), Some(running(1)), &[]),
            (Some(running(1)), Some(exited_at(1, 0)), &["exited"]),
            (Some(exited_at(1, 0)), Some(running(2)), &["started"]),
            (Some(running(1)), Some(running(2)), &["exited", "started"]),
            (
                Some(exited_at(1, 0)),
                Some(exited_at(2, 1)),
                &["started", "exited"],
            ),
            (
                Some(running(1)),
                Some(restarting),
                &["exited", "restarting"],
            ),
            (Some(running(1)), Some(paused.clone()), &["paused"]),
            (Some(paused), Some(running(1)), &["resumed"]),
            (Some(running(1)), None, &["exited"]),
            (Some(exited_at(1, 0)), Some(recreated), &["started"]),
        ];
        for (before, now, want) in cases {
            let got = kinds(&changes(&before, &now));
            assert_eq!(got, want, "{before:?} -> {now:?}");
        }
        let events = changes(&Some(running(1)), &Some(exited_at(1, 3)));
        assert!(matches!(
            events[0],
            EventKind::Exited {
                code: Some(3),
                signal: None,
                ..
            }
        ));
    }
}

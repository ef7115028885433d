//! What `/proc` says about processes: state, parent, children, zombies, the
//! pid inside a PID namespace, and processes carrying a marker in their
//! environment (to prove a test left nothing running).
//!
//! ```no_run
//! use geolb_tests::procfs::{children, zombie_children};
//! let agent = 1234;
//! let kids = children(agent);
//! assert!(zombie_children(agent).is_empty(), "unreaped: {kids:?}");
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that [`Marker`] sets.
pub const MARK_VAR: &str = "GEOLB_TEST_MARK";

static NEXT_MARK: AtomicU32 = AtomicU32::new(0);

/// The fields of `/proc/<pid>/stat` the tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The process id.
    pub pid: i32,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// The state letter: R, S, D, Z, T, X, ...
    pub state: char,
    /// The parent's pid.
    pub ppid: i32,
    /// The process group id.
    pub pgrp: i32,
}

impl Stat {
    /// Whether the process has ended but was not reaped.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Reads `/proc/<pid>/stat`; `None` once the process is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
    })
}

/// Every process now visible in `/proc`.
pub fn all() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The direct children of `pid`, zombies included.
pub fn children(pid: i32) -> Vec<Stat> {
    all().into_iter().filter(|s| s.ppid == pid).collect()
}

/// The direct children of `pid` that are zombies (ended, not reaped).
pub fn zombie_children(pid: i32) -> Vec<Stat> {
    children(pid).into_iter().filter(Stat::is_zombie).collect()
}

/// The arguments of `pid` (`/proc/<pid>/cmdline`); empty for zombies and
/// processes that are gone.
pub fn cmdline(pid: i32) -> Vec<String> {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return Vec::new();
    };
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The resident set size of `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// A KiB field of `/proc/<pid>/status`: `VmRSS`, `RssAnon`, `RssFile`, `VmHWM`, ...
pub fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The proportional set size of `pid` in KiB (`Pss` in `/proc/<pid>/smaps_rollup`):
/// its resident pages, each shared page divided by the number of processes mapping it.
pub fn pss_kib(pid: i32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find_map(|l| l.strip_prefix("Pss:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds the live threads of `pid` have run on a CPU (first field of
/// `/proc/<pid>/task/*/schedstat`): finer than [`cpu_ticks`], but blind to
/// threads that have exited.
pub fn cpu_ns(pid: i32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// CPU time `pid` has used, user plus system, in clock ticks (fields 14 and 15
/// of `/proc/<pid>/stat`; every thread, not the children).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The executable of `pid` (`/proc/<pid>/exe`); `None` when unreadable.
pub fn exe(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The pids of `pid` from the outermost PID namespace inwards (the `NSpid`
/// line of `/proc/<pid>/status`): `[host, .., innermost]`.
pub fn ns_pids(pid: i32) -> Vec<i32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A unique value for [`MARK_VAR`]: set it on a process and every
/// descendant inherits it, so [`Marker::live`] finds whatever is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker(String);

impl Marker {
    /// A marker unique to this test process and call.
    pub fn new(label: &str) -> Marker {
        let n = NEXT_MARK.fetch_add(1, Ordering::Relaxed);
        Marker(format!("{label}-{}-{n}", std::process::id()))
    }

    /// The value to set.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Live (non-zombie) processes whose environment carries the marker.
    pub fn live(&self) -> Vec<Stat> {
        let wanted = format!("{MARK_VAR}={}", self.0);
        all()
            .into_iter()
            .filter(|s| !s.is_zombie())
            .filter(|s| {
                std::fs::read(format!("/proc/{}/environ", s.pid))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn reads_our_own_stat() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        assert_eq!(s.pid, me);
        assert_ne!(s.state, 'Z');
        assert_eq!(s.ppid, std::os::unix::process::parent_id() as i32);
        assert_eq!(ns_pids(me).first(), Some(&me));
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_ticks(me).is_some());
        assert!(status_kib(me, "RssAnon").is_some_and(|kib| kib > 0));
        assert!(cpu_ns(me).is_some_and(|ns| ns > 0));
        assert!(pss_kib(me).is_some_and(|kib| kib > 0));
        assert_eq!(exe(me), std::env::current_exe().ok());
    }

    #[test]
    fn sees_a_zombie_child_and_the_marker() {
        let mark = Marker::new("procfs");
        let mut child = Command::new("sleep")
            .arg("30")
            .env(MARK_VAR, mark.value())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let me = std::process::id() as i32;
        assert!(children(me)
            .iter()
            .any(|s| s.pid == pid && s.comm == "sleep"));
        assert_eq!(cmdline(pid), ["sleep", "30"]);
        assert_eq!(mark.live().iter().map(|s| s.pid).collect::<Vec<_>>(), [pid]);
        child.kill().expect("kill sleep");
        crate::wait::wait_for_blocking(
            "sleep to be a zombie",
            std::time::Duration::from_secs(5),
            || {
                zombie_children(me)
                    .iter()
                    .any(|s| s.pid == pid)
                    .then_some(())
            },
        );
        assert!(mark.live().is_empty(), "zombies are not live");
        child.wait().expect("reap sleep");
        assert!(stat(pid).is_none());
    }
}

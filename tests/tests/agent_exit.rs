//! The agent without a control plane: its exit code is the child's (128+signal
//! when the child was killed), it forwards signals, passes output through,
//! fails fast on a missing binary, restarts by policy with growing backoff,
//! and takes its child down with it when it is SIGKILLed.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use geolb_tests::agent::AgentBuilder;
use geolb_tests::process::is_alive;
use geolb_tests::procfs::{children, Marker, MARK_VAR};
use geolb_tests::{agent_bin, wait_for, with_timeout, ProcessGuard};
use nix::sys::signal::Signal;

/// Upper bound for one step: an exit, a file appearing, a child starting.
const STEP: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A temp folder for a test's files, removed unless the test panics.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join("geolb-tests")
            .join(format!("{}-{label}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// An agent with `--restart <restart>` whose processes carry `mark`.
fn agent(mark: &Marker, restart: &str) -> AgentBuilder {
    AgentBuilder::new("exit-test", "local")
        .arg("--restart")
        .arg(restart)
        .env(MARK_VAR, mark.value())
}

/// Spawns `builder` around `command` with stdout and stderr piped to the test.
fn spawn_piped(builder: &AgentBuilder, mark: &Marker, command: &[&str]) -> ProcessGuard {
    let child = Command::new(agent_bin())
        .args(builder.command_line(command))
        .env(MARK_VAR, mark.value())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn geolb-agent: {e}"));
    ProcessGuard::new("geolb-agent", child)
}

/// Reads a pipe to its end (the agent and everything holding it exited).
async fn read_all(pipe: Option<impl Read + Send + 'static>) -> String {
    let mut pipe = pipe.expect("piped");
    let read = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).map(|_| text)
    });
    with_timeout(STEP, read)
        .await
        .expect("reader task")
        .expect("read pipe")
}

/// Waits for the agent to exit and returns its code; panics if it is still
/// running or died from a signal itself.
async fn exit_code(agent: &mut ProcessGuard) -> i32 {
    let Some(status) = agent.wait_exit(STEP).await else {
        panic!("{} still running after {STEP:?}", agent.name());
    };
    status.code().unwrap_or_else(|| {
        panic!(
            "{} died from signal {:?} instead of exiting with a code",
            agent.name(),
            status.signal()
        )
    })
}

/// Waits until no live process carries `mark`.
async fn nothing_left(mark: &Marker) {
    wait_for(
        &format!("every process marked {} to be gone", mark.value()),
        STEP,
        || {
            let live = mark.live();
            async move { live.is_empty().then_some(()) }
        },
    )
    .await;
}

/// The pid of the agent's live child named `comm`, once there is one.
async fn child_named(agent: &ProcessGuard, comm: &str) -> i32 {
    let pid = agent.pid() as i32;
    wait_for(&format!("a {comm} child of the agent"), STEP, || {
        let found = children(pid)
            .into_iter()
            .find(|s| s.comm == comm && !s.is_zombie())
            .map(|s| s.pid);
        async move { found }
    })
    .await
}

/// The lines of `path`; none while it does not exist.
fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until `path` has at least `n` lines and returns them.
async fn wait_lines(path: &str, n: usize, timeout: Duration) -> Vec<String> {
    wait_for(&format!("{n} lines in {path}"), timeout, || {
        let got = lines(path);
        async move { (got.len() >= n).then_some(got) }
    })
    .await
}

/// Waits until `path` contains `text`.
async fn wait_contains(path: &str, text: &str) {
    wait_for(&format!("{text:?} in {path}"), STEP, || {
        let found = std::fs::read_to_string(path).is_ok_and(|s| s.contains(text));
        async move { found.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn exit_code_is_the_childs() {
    let mark = Marker::new("exit3");
    let mut agent = agent(&mark, "never").spawn(&["sh", "-c", "exit 3"]);
    assert_eq!(exit_code(&mut agent).await, 3);
    nothing_left(&mark).await;
}

#[tokio::test]
async fn killed_child_gives_128_plus_signal() {
    let mark = Marker::new("kill9");
    let mut agent = agent(&mark, "never").spawn(&["sh", "-c", "kill -9 $$"]);
    assert_eq!(exit_code(&mut agent).await, 128 + 9);
    nothing_left(&mark).await;
}

#[tokio::test]
async fn sigterm_is_forwarded_and_gives_143() {
    let mark = Marker::new("term");
    let mut agent = agent(&mark, "never").spawn(&["sleep", "30"]);
    let child = child_named(&agent, "sleep").await;
    agent.signal(Signal::SIGTERM).expect("SIGTERM the agent");
    // 143 = 128 + SIGTERM: the child died from the forwarded TERM, not a KILL.
    assert_eq!(exit_code(&mut agent).await, 128 + 15);
    assert!(!is_alive(child), "sleep {child} survived the agent");
    nothing_left(&mark).await;
}

#[tokio::test]
async fn child_that_traps_sigterm_decides_the_code() {
    let dir = Scratch::new("trap");
    let (ready, out) = (dir.file("ready"), dir.file("out"));
    let mark = Marker::new("trap");
    let script = r#"trap 'echo TERM >> "$OUT"; exit 0' TERM
echo ready > "$READY"
while :; do sleep 0.1; done"#;
    let mut agent = agent(&mark, "never")
        .env("READY", &ready)
        .env("OUT", &out)
        .spawn(&["bash", "-c", script]);
    wait_contains(&ready, "ready").await;
    agent.signal(Signal::SIGTERM).expect("SIGTERM the agent");
    assert_eq!(exit_code(&mut agent).await, 0);
    assert_eq!(lines(&out), ["TERM"], "the child's trap ran once");
    nothing_left(&mark).await;
}

#[tokio::test]
async fn hup_usr1_usr2_are_forwarded_and_nobody_stops() {
    let dir = Scratch::new("usr");
    let (ready, out) = (dir.file("ready"), dir.file("out"));
    let mark = Marker::new("usr");
    let script = r#"for sig in HUP USR1 USR2; do trap "echo $sig >> \"\$OUT\"" $sig; done
echo ready > "$READY"
while :; do sleep 1 & wait $!; done"#;
    let mut agent = agent(&mark, "never")
        .env("READY", &ready)
        .env("OUT", &out)
        .spawn(&["bash", "-c", script]);
    wait_contains(&ready, "ready").await;
    let child = child_named(&agent, "bash").await;
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
    ] {
        agent.signal(sig).expect("signal the agent");
        wait_contains(&out, name).await;
    }
    assert_eq!(lines(&out), ["HUP", "USR1", "USR2"], "each trap ran once");
    assert_eq!(agent.try_status(), None, "the agent exited");
    assert!(is_alive(child), "the child {child} stopped");
    assert_eq!(
        children(agent.pid() as i32)
            .iter()
            .filter(|s| s.comm == "bash" && !s.is_zombie())
            .map(|s| s.pid)
            .collect::<Vec<_>>(),
        [child],
        "the child was replaced"
    );
}

#[tokio::test]
async fn child_output_passes_through() {
    let mark = Marker::new("output");
    let builder = agent(&mark, "never");
    let script = "echo out-marker-7f3a; echo err-marker-7f3a >&2";
    let mut agent = spawn_piped(&builder, &mark, &["sh", "-c", script]);
    let stdout = read_all(agent.child_mut().stdout.take());
    let stderr = read_all(agent.child_mut().stderr.take());
    let (stdout, stderr) = (stdout.await, stderr.await);
    assert_eq!(exit_code(&mut agent).await, 0);
    assert!(
        stdout.lines().any(|l| l == "out-marker-7f3a"),
        "stdout: {stdout}"
    );
    assert!(
        !stdout.contains("err-marker"),
        "stderr went to stdout: {stdout}"
    );
    assert!(
        stderr.lines().any(|l| l == "err-marker-7f3a"),
        "stderr: {stderr}"
    );
    assert!(
        !stderr.contains("out-marker"),
        "stdout went to stderr: {stderr}"
    );
    nothing_left(&mark).await;
}

#[tokio::test]
async fn missing_binary_fails_fast_with_127() {
    let mark = Marker::new("missing");
    let started = Instant::now();
    let mut agent = spawn_piped(&agent(&mark, "on-failure"), &mark, &["/no/such/binary"]);
    let stdout = read_all(agent.child_mut().stdout.take());
    let stderr = read_all(agent.child_mut().stderr.take());
    let (stdout, stderr) = (stdout.await, stderr.await);
    assert_eq!(exit_code(&mut agent).await, 127, "stderr: {stderr}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?} to give up");
    assert!(stdout.is_empty(), "stdout: {stdout}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    let stderr = strip_ansi(&stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("geolb-agent:"))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].contains("/no/such/binary"),
        "want one error line naming the path, got {}: {errors:#?}",
        errors.len()
    );
    nothing_left(&mark).await;
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the `date +%s%N` lines the child wrote, in ms.
fn start_times_ms(lines: &[String]) -> Vec<f64> {
    lines
        .iter()
        .map(|l| l.trim().parse::<u128>().expect("a date +%s%N line") as f64 / 1e6)
        .collect()
}

#[tokio::test]
async fn on_failure_restarts_with_growing_capped_backoff() {
    let dir = Scratch::new("backoff");
    let starts = dir.file("starts");
    let mark = Marker::new("backoff");
    let agent = agent(&mark, "on-failure")
        .arg("--backoff-min")
        .arg("50ms")
        .arg("--backoff-max")
        .arg("400ms")
        .env("STARTS", &starts)
        .spawn(&["sh", "-c", r#"date +%s%N >> "$STARTS"; exit 1"#]);
    // Delays are 50, 100, 200, 400, 400, 400 ms (±20 %, capped at 400): the
    // seventh start comes about 1.6 s after the first.
    let seen = wait_lines(&starts, 7, Duration::from_secs(6)).await;
    drop(agent);
    let at = start_times_ms(&seen);
    let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // A gap is at least its delay (the delay runs from the reap, after the
    // child wrote its line), so the lower bounds hold on a loaded machine.
    for (i, floor) in [40.0, 80.0, 160.0, 320.0].into_iter().enumerate() {
        assert!(
            gaps[i] >= floor,
            "restart {} came after {:.0} ms, less than {floor} ms; gaps {gaps:?}",
            i + 1,
            gaps[i]
        );
    }
    assert!(gaps[3] > gaps[0] * 2.0, "backoff does not grow: {gaps:?}");
    // Uncapped, restart 6 would wait at least 1280 ms.
    for (i, gap) in gaps.iter().enumerate().skip(4) {
        assert!(
            *gap < 1200.0,
            "restart {} after {gap:.0} ms ignores the 400 ms cap; gaps {gaps:?}",
            i + 1
        );
    }
}

#[tokio::test]
async fn on_failure_does_not_restart_a_success() {
    let dir = Scratch::new("success");
    let starts = dir.file("starts");
    let mark = Marker::new("success");
    let mut agent = agent(&mark, "on-failure")
        .arg("--backoff-min")
        .arg("50ms")
        .env("STARTS", &starts)
        .spawn(&["sh", "-c", r#"echo start >> "$STARTS"; exit 0"#]);
    assert_eq!(exit_code(&mut agent).await, 0);
    assert_eq!(lines(&starts), ["start"], "started more than once");
    nothing_left(&mark).await;
}

#[tokio::test]
async fn always_restarts_a_success() {
    let dir = Scratch::new("always");
    let starts = dir.file("starts");
    let mark = Marker::new("always");
    let mut agent = agent(&mark, "always")
        .arg("--backoff-min")
        .arg("50ms")
        .arg("--backoff-max")
        .arg("100ms")
        .env("STARTS", &starts)
        .spawn(&["sh", "-c", r#"echo start >> "$STARTS"; exit 0"#]);
    wait_lines(&starts, 3, STEP).await;
    assert_eq!(agent.try_status(), None, "the agent exited");
}

#[tokio::test]
async fn child_dies_with_a_sigkilled_agent() {
    let mark = Marker::new("pdeathsig");
    let mut agent = agent(&mark, "never").spawn(&["sleep", "30"]);
    let child = child_named(&agent, "sleep").await;
    agent.signal(Signal::SIGKILL).expect("SIGKILL the agent");
    let status = agent.wait_exit(STEP).await.expect("the agent died");
    assert_eq!(status.signal(), Some(9), "{status}");
    wait_for(&format!("orphaned sleep {child} to die"), STEP, || {
        let gone = !is_alive(child);
        async move { gone.then_some(()) }
    })
    .await;
    nothing_left(&mark).await;
}

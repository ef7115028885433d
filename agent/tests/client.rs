//! `geolb-agent client` against real nats-servers: the `rtt` election,
//! failover from a paused server, the return after the hold, a lame-duck
//! move without a gap, the stock `random` strategy, and bad input.
//!
//! Self-contained: servers are started from `.tools/nats-server/<version>`
//! on free ports and killed on drop; region "b" sits behind a small TCP
//! proxy adding 5 ms each way, so "a" is clearly the nearest.

use geolb_proto::client::{ClientMove, ClientRecord, ClientStatus, MoveReason};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const VERSION: &str = "2.12.8";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = root
            .join(".tools/nats-server")
            .join(VERSION)
            .join("nats-server");
        assert!(
            bin.is_file(),
            "nats-server {VERSION} not found in .tools/; run `make tools`"
        );
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "geolb-client-test-{}-{name}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("nats.conf");
        let text =
            format!("server_name: {name}\nlisten: 127.0.0.1:{port}\nlame_duck_grace_period: 1s\n");
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.join("nats.log")).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"INFO" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server on port {} did not start", self.port);
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.signal_quiet(Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn signal_quiet(&self, sig: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), sig)
    }
}

/// A TCP proxy adding `one_way` delay in each direction; returns its port.
async fn delay_proxy(upstream: u16, one_way: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (down_r, down_w) = down.into_split();
                let (up_r, up_w) = up.into_split();
                tokio::join!(pump(down_r, up_w, one_way), pump(up_r, down_w, one_way));
            });
        }
    });
    port
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let _ = tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec()));
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// The client under test; its stdout records are collected; killed on drop.
struct Client {
    child: Child,
    records: Arc<Mutex<Vec<ClientRecord>>>,
}

impl Client {
    fn start(args: &[&str]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_geolb-agent"))
            .arg("client")
            .args(args)
            .env_remove("GEOLB_REPORT_SOCKET")
            .env_remove("GEOLB_REPLICA")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let record = ClientRecord::decode(line.as_bytes())
                    .unwrap_or_else(|e| panic!("not a record: {line}: {e}"));
                sink.lock().unwrap().push(record);
            }
        });
        Client { child, records }
    }

    fn moves(&self) -> Vec<ClientMove> {
        let records = self.records.lock().unwrap();
        let moves = records.iter().filter_map(|r| match r {
            ClientRecord::Moved(m) => Some(m.clone()),
            _ => None,
        });
        moves.collect()
    }

    fn last_status(&self) -> Option<ClientStatus> {
        let records = self.records.lock().unwrap();
        records.iter().rev().find_map(|r| match r {
            ClientRecord::Status(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// Waits for the `nth` move (0-based) and returns it.
    async fn wait_move(&self, nth: usize, within: Duration) -> ClientMove {
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self.moves().get(nth) {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no move #{nth} within {within:?}: {:?}",
                self.moves()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a status record satisfying `ok`.
    async fn wait_status(
        &self,
        within: Duration,
        ok: impl Fn(&ClientStatus) -> bool,
    ) -> ClientStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.last_status().filter(|s| ok(s)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no such status within {within:?}: {:?}",
                self.last_status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then the exit code (within 10 s).
    fn stop(&mut self) -> Option<i32> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_fails_over_from_a_paused_server_returns_and_moves_on_lame_duck() {
    let a = Server::start("a-1");
    let b = Server::start("b-1");
    let b_far = delay_proxy(b.port, Duration::from_millis(5)).await;
    let (server_a, server_b) = (format!("a={}", url(a.port)), format!("b={}", url(b_far)));
    let mut client = Client::start(&[
        "--id",
        "rtt-test",
        "--region",
        "a",
        "--server",
        &server_a,
        "--server",
        &server_b,
        "--rate",
        "20",
        "--report-interval",
        "200ms",
        "--hold",
        "2s",
    ]);
    let at_a = |m: &ClientMove| m.to.as_ref().map(|s| s.url.clone()) == Some(url(a.port));
    let at_b = |m: &ClientMove| m.to.as_ref().map(|s| s.url.clone()) == Some(url(b_far));

    let first = client.wait_move(0, Duration::from_secs(10)).await;
    assert_eq!(first.reason, MoveReason::Initial, "{first:?}");
    assert!(at_a(&first), "elects the nearest: {first:?}");
    assert_eq!(first.to.as_ref().unwrap().name, "a-1");
    client
        .wait_status(Duration::from_secs(5), |s| s.traffic.received > 5)
        .await;

    // A grey failure: TCP stays open, nothing answers.
    a.signal(Signal::SIGSTOP);
    let paused = Instant::now();
    let away = client.wait_move(1, Duration::from_secs(5)).await;
    let detected = paused.elapsed();
    assert_eq!(away.reason, MoveReason::Unresponsive, "{away:?}");
    assert!(at_b(&away), "{away:?}");
    eprintln!(
        "failover: moved after {detected:?}, reported gap {} ms",
        away.gap_ms
    );

    // A answers again: back after the hold, without a gap.
    a.signal(Signal::SIGCONT);
    let back = client.wait_move(2, Duration::from_secs(20)).await;
    assert_eq!(back.reason, MoveReason::Better, "{back:?}");
    assert!(at_a(&back), "{back:?}");
    assert_eq!(back.gap_ms, 0);

    // Lame duck: make-before-break to B.
    a.signal(Signal::SIGUSR2);
    let drained = client.wait_move(3, Duration::from_secs(5)).await;
    assert_eq!(drained.reason, MoveReason::LameDuck, "{drained:?}");
    assert!(at_b(&drained), "{drained:?}");
    assert_eq!(drained.gap_ms, 0);
    let status = client
        .wait_status(Duration::from_secs(5), |s| s.switches == 3)
        .await;
    assert_eq!(status.strategy, "rtt");
    assert_eq!(status.candidates.len(), 2);

    assert_eq!(client.stop(), Some(0));
    let last = client.records.lock().unwrap().last().cloned();
    assert!(
        matches!(last, Some(ClientRecord::Status(_))),
        "ends with a status: {last:?}"
    );
    assert_eq!(client.moves().len(), 4, "{:?}", client.moves());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_strategy_connects_and_reports() {
    let a = Server::start("a-1");
    let b = Server::start("b-1");
    let (server_a, server_b) = (format!("a={}", url(a.port)), format!("b={}", url(b.port)));
    let mut client = Client::start(&[
        "--id",
        "random-test",
        "--strategy",
        "random",
        "--region",
        "a",
        "--server",
        &server_a,
        "--server",
        &server_b,
        "--rate",
        "20",
        "--report-interval",
        "200ms",
    ]);
    let first = client.wait_move(0, Duration::from_secs(10)).await;
    assert_eq!(first.reason, MoveReason::Initial);
    let to = first.to.expect("connected");
    assert!([url(a.port), url(b.port)].contains(&to.url), "{to:?}");
    let status = client
        .wait_status(Duration::from_secs(10), |s| {
            s.traffic.received > 5 && s.server.is_some()
        })
        .await;
    assert_eq!(status.strategy, "random");
    assert_eq!(status.traffic.lost, 0);
    assert_eq!(client.stop(), Some(0));
}

#[test]
fn refuses_bad_input_with_a_clear_error() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--server",
                "a=nats://127.0.0.1:1",
                "--server",
                "b=127.0.0.1:1",
            ],
            "given twice",
        ),
        (&["--server", "a=nats://127.0.0.1:notaport"], "malformed"),
        (
            &["--server", "a=127.0.0.1:1", "--region", "zz"],
            "known regions: a",
        ),
        (&["--region", "a"], "--server"),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_geolb-agent"))
            .arg("client")
            .args(args)
            .env_remove("GEOLB_CLIENT_SERVERS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_answering_is_reported_without_a_busy_loop() {
    let dead = [free_port(), free_port()];
    let (server_a, server_b) = (format!("a={}", url(dead[0])), format!("b={}", url(dead[1])));
    let mut client = Client::start(&[
        "--id",
        "lonely",
        "--region",
        "a",
        "--server",
        &server_a,
        "--server",
        &server_b,
        "--report-interval",
        "200ms",
    ]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = client.last_status().expect("status records");
    assert!(status.server.is_none());
    assert!(status.candidates.iter().all(|c| !c.healthy));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", client.child.id())).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    assert!(ticks < 100, "{ticks} CPU ticks in 4 s: a busy loop?");
    assert!(client.moves().is_empty());
    assert_eq!(client.stop(), Some(0));
    std::io::stdout().flush().unwrap();
}

//! `geolb-agent client` against real nats-servers: the `rtt` election,
//! failover from a paused server, the return after the hold, a lame-duck
//! move without a gap, the stock `random` strategy, and bad input.
//!
//! Servers are the testkit's (`.tools/nats-server/<version>` on free
//! ports, killed on drop); region "b" sits behind a small TCP
//! proxy adding 5 ms each way, so "a" is clearly the nearest.

use geolb_proto::client::{ClientMove, ClientRecord, ClientStatus, MoveReason};
use geolb_testkit::{default_version, free_port, wait_for, NatsServer, ProcessGuard, ServerConfig};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A nats-server named `name` on free ports, lame duck closing clients after 1 s.
fn server(name: &str) -> NatsServer {
    let mut config = ServerConfig::default().server_name(name);
    config.lame_duck_grace_period = Some(Duration::from_secs(1));
    NatsServer::start(default_version(), config)
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
    process: ProcessGuard,
    records: Arc<Mutex<Vec<ClientRecord>>>,
}

impl Client {
    fn start(args: &[&str]) -> Client {
        let mut command = Command::new(env!("CARGO_BIN_EXE_geolb-agent"));
        command
            .arg("client")
            .args(args)
            .env_remove("GEOLB_REPORT_SOCKET")
            .env_remove("GEOLB_REPLICA")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = ProcessGuard::spawn("geolb-agent client", &mut command).unwrap();
        let stdout = process.child_mut().stdout.take().unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let record = ClientRecord::decode(line.as_bytes())
                    .unwrap_or_else(|e| panic!("not a record: {line}: {e}"));
                sink.lock().unwrap().push(record);
            }
        });
        Client { process, records }
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
        let what = format!("move #{nth}");
        wait_for(&what, within, || async { self.moves().get(nth).cloned() }).await
    }

    /// Waits for a status record satisfying `ok`.
    async fn wait_status(
        &self,
        within: Duration,
        ok: impl Fn(&ClientStatus) -> bool,
    ) -> ClientStatus {
        wait_for("a status record as wanted", within, || async {
            self.last_status().filter(|s| ok(s))
        })
        .await
    }

    /// SIGTERM, then the exit code (within 10 s).
    async fn stop(&mut self) -> Option<i32> {
        self.process.signal(Signal::SIGTERM).unwrap();
        let status = self.process.wait_exit(Duration::from_secs(10)).await;
        status.and_then(|s| s.code())
    }
}

fn url(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_fails_over_from_a_paused_server_returns_and_moves_on_lame_duck() {
    let a = server("a-1");
    let b = server("b-1");
    let b_far = delay_proxy(b.client_port(), Duration::from_millis(5)).await;
    let (server_a, server_b) = (
        format!("a={}", url(a.client_port())),
        format!("b={}", url(b_far)),
    );
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
    let at_a = |m: &ClientMove| m.to.as_ref().map(|s| s.url.clone()) == Some(url(a.client_port()));
    let at_b = |m: &ClientMove| m.to.as_ref().map(|s| s.url.clone()) == Some(url(b_far));

    let first = client.wait_move(0, Duration::from_secs(10)).await;
    assert_eq!(first.reason, MoveReason::Initial, "{first:?}");
    assert!(at_a(&first), "elects the nearest: {first:?}");
    assert_eq!(first.to.as_ref().unwrap().name, "a-1");
    client
        .wait_status(Duration::from_secs(5), |s| s.traffic.received > 5)
        .await;

    // A grey failure: TCP stays open, nothing answers.
    a.signal(Signal::SIGSTOP).unwrap();
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
    a.signal(Signal::SIGCONT).unwrap();
    let back = client.wait_move(2, Duration::from_secs(20)).await;
    assert_eq!(back.reason, MoveReason::Better, "{back:?}");
    assert!(at_a(&back), "{back:?}");
    assert_eq!(back.gap_ms, 0);

    // Lame duck: make-before-break to B.
    a.signal(Signal::SIGUSR2).unwrap();
    let drained = client.wait_move(3, Duration::from_secs(5)).await;
    assert_eq!(drained.reason, MoveReason::LameDuck, "{drained:?}");
    assert!(at_b(&drained), "{drained:?}");
    assert_eq!(drained.gap_ms, 0);
    let status = client
        .wait_status(Duration::from_secs(5), |s| s.switches == 3)
        .await;
    assert_eq!(status.strategy, "rtt");
    assert_eq!(status.candidates.len(), 2);

    assert_eq!(client.stop().await, Some(0));
    let last = client.records.lock().unwrap().last().cloned();
    assert!(
        matches!(last, Some(ClientRecord::Status(_))),
        "ends with a status: {last:?}"
    );
    assert_eq!(client.moves().len(), 4, "{:?}", client.moves());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_strategy_connects_and_reports() {
    let a = server("a-1");
    let b = server("b-1");
    let (server_a, server_b) = (
        format!("a={}", url(a.client_port())),
        format!("b={}", url(b.client_port())),
    );
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
    assert!(
        [url(a.client_port()), url(b.client_port())].contains(&to.url),
        "{to:?}"
    );
    let status = client
        .wait_status(Duration::from_secs(10), |s| {
            s.traffic.received > 5 && s.server.is_some()
        })
        .await;
    assert_eq!(status.strategy, "random");
    assert_eq!(status.traffic.lost, 0);
    assert_eq!(client.stop().await, Some(0));
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
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", client.process.pid())).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    assert!(ticks < 100, "{ticks} CPU ticks in 4 s: a busy loop?");
    assert!(client.moves().is_empty());
    assert_eq!(client.stop().await, Some(0));
    std::io::stdout().flush().unwrap();
}

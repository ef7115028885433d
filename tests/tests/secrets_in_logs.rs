//! No secret reaches a log or an output, even at `RUST_LOG=trace`: the agent
//! and `geolb` run with a password (as a flag and inside the URL), a token,
//! nkey seed files and a signing key, and their stdout and stderr are
//! searched for every one of them.

use geolb_tests::agent::AgentBuilder;
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::ProcessGuard;
use geolb_tests::{agent_bin, default_version, geolb_bin, wait_for, NatsServer, ServerConfig};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn out_file(name: &str) -> PathBuf {
    std::env::temp_dir().join("geolb-tests").join(format!(
        "{}-{name}-{}.log",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Runs an agent with `args` at trace level until it answered `geolb` (run
/// with `geolb_args`, also at trace level), then stops it; returns everything
/// both printed.
async fn run_both(id: &str, url: &str, args: &[String], geolb_args: &[String]) -> String {
    let log = out_file(id);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let file = std::fs::File::create(&log).unwrap();
    let builder = args
        .iter()
        .fold(AgentBuilder::new(id, "lon").control(url), |b, a| {
            b.arg(a.clone())
        })
        .arg("--role")
        .arg("client");
    let mut cmd = Command::new(agent_bin());
    cmd.args(builder.command_line(&["sleep", "60"]))
        .env("RUST_LOG", "trace")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let agent = ProcessGuard::spawn(id, &mut cmd).unwrap();
    let mut seen = String::new();
    wait_for("the agent answers geolb", T, || {
        let output = Command::new(geolb_bin())
            .args(["--control", url])
            .args(geolb_args)
            .args(["cmd", "status", id])
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&output.stdout));
        seen.push_str(&String::from_utf8_lossy(&output.stderr));
        async move { output.status.success().then_some(()) }
    })
    .await;
    let mut agent = agent;
    let _ = agent.signal(Signal::SIGTERM);
    for _ in 0..50 {
        if agent.try_status().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(agent);
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
    let _ = std::fs::remove_file(&log);
    seen
}

fn assert_clean(output: &str, secrets: &[&str]) {
    assert!(
        output.contains("TRACE") || output.contains("DEBUG"),
        "trace logs were on"
    );
    for secret in secrets {
        assert!(!output.contains(secret), "a secret was printed:\n{output}");
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn seed_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[tokio::test]
async fn passwords_and_tokens_are_never_printed() {
    let password = "pw-Sup3rSecret-1";
    let config = ServerConfig {
        extra: format!("authorization {{ user: geo, password: {password:?} }}\n"),
        ..Default::default()
    };
    let server = NatsServer::start(default_version(), config);
    let url = server.client_url();
    let flags = strings(&["--user", "geo", "--password", password]);
    let output = run_both("pw-1", &url, &flags, &flags).await;
    assert_clean(&output, &[password]);
    let in_url = url.replace("nats://", &format!("nats://geo:{password}@"));
    let output = run_both("pw-2", &in_url, &[], &[]).await;
    assert_clean(&output, &[password]);
    assert!(output.contains("geo:***@"), "the URL is shown redacted");

    let token = "tok-Sup3rSecret-2";
    let config = ServerConfig {
        extra: format!("authorization {{ token: {token:?} }}\n"),
        ..Default::default()
    };
    let server = NatsServer::start(default_version(), config);
    let flags = strings(&["--token", token]);
    let output = run_both("tok-1", &server.client_url(), &flags, &flags).await;
    assert_clean(&output, &[token]);
}

#[tokio::test]
async fn seeds_are_never_printed() {
    let cp = SecureControlPlane::start(&[("nk-1", "lon")], 0);
    let agent = strings(&[
        "--nkey-file",
        &cp.seed("agent-nk-1").display().to_string(),
        "--trust",
        cp.trust(),
    ]);
    let geolb = strings(&[
        "--nkey-file",
        &cp.seed("coordinator").display().to_string(),
        "--signing-key",
        &cp.seed("signing").display().to_string(),
    ]);
    let output = run_both("nk-1", &cp.url(), &agent, &geolb).await;
    let seeds: Vec<String> = ["agent-nk-1", "coordinator", "signing"]
        .iter()
        .map(|name| seed_of(cp.seed(name)))
        .collect();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    assert_clean(&output, &seeds);
    // `control-plane init` prints public keys and paths, never seeds.
    let dir = out_file("init");
    let init = Command::new(geolb_bin())
        .args(["control-plane", "init", "--dir"])
        .arg(&dir)
        .args(["--agent", "a-1:lon", "--clients", "1"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(init.status.success());
    let printed =
        String::from_utf8_lossy(&init.stdout).to_string() + &String::from_utf8_lossy(&init.stderr);
    for name in ["coordinator", "agent-a-1", "client-1", "signing"] {
        let seed = seed_of(&dir.join(format!("{name}.nk")));
        assert!(!printed.contains(&seed), "{name}'s seed was printed");
    }
    assert!(printed.contains("authorization {"));
    let _ = std::fs::remove_dir_all(&dir);
}

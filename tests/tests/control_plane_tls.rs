//! TLS to the control plane: a real nats-server requiring client
//! certificates (`verify: true`), with a CA, server and client certificates
//! made in the test. The agent and `geolb` connect with `--tls-ca`,
//! `--tls-cert` and `--tls-key`; trusting a CA that did not sign the server's
//! certificate fails with one clear line.

use geolb_tests::agent::AgentBuilder;
use geolb_tests::pki::Pki;
use geolb_tests::{default_version, geolb_bin, wait_for, NatsServer, ServerConfig};
use std::process::{Command, Output};
use std::time::Duration;

fn tls_server(pki: &Pki) -> NatsServer {
    let config = ServerConfig {
        extra: pki.server_tls(true),
        ..Default::default()
    };
    NatsServer::start(default_version(), config)
}

fn tls_args(pki: &Pki, ca: &str) -> Vec<String> {
    [
        ("--tls-ca", pki.path(ca)),
        ("--tls-cert", pki.path("client.pem")),
        ("--tls-key", pki.path("client.key")),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
    .collect()
}

fn geolb(url: &str, tls: &[String], args: &[&str]) -> Output {
    Command::new(geolb_bin())
        .args(["--control", url])
        .args(tls)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn agents_and_geolb_speak_tls_with_client_certificates() {
    let pki = Pki::new();
    let server = tls_server(&pki);
    let url = server.client_url();
    let mut agent = AgentBuilder::new("tls-1", "lon").control(&url);
    for arg in tls_args(&pki, "ca.pem") {
        agent = agent.arg(arg);
    }
    let _agent = agent.arg("--role").arg("client").spawn(&["sleep", "60"]);
    let tls = tls_args(&pki, "ca.pem");
    let out = wait_for(
        "tls-1 answers over TLS",
        Duration::from_secs(20),
        || async {
            let output = geolb(&url, &tls, &["cmd", "status", "tls-1"]);
            output.status.success().then_some(output)
        },
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tls-1") && stdout.contains("ok"),
        "{stdout}"
    );

    // A CA that did not sign the server's certificate: one clear line.
    let output = geolb(
        &url,
        &tls_args(&pki, "rogue.pem"),
        &["cmd", "status", "tls-1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("TLS to the control plane"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(stderr.contains("--tls-ca"), "{stderr}");

    // Without a client certificate the server refuses us.
    let only_ca = vec![
        "--tls-ca".to_string(),
        pki.path("ca.pem").display().to_string(),
    ];
    let output = geolb(&url, &only_ca, &["cmd", "status", "tls-1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

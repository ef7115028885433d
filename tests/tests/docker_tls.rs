//! TLS to the control plane from the images `make images` builds, which are
//! `FROM scratch` and hold no certificate store: the agent trusts Mozilla's
//! roots compiled into it, and the test checks that they are there and
//! used. A local nats-server speaks TLS with a certificate from a test CA:
//!
//! - with the CA given through `GEOLB_TLS_CA` (the documented override), the
//!   agent in the image connects and answers over TLS, trusting that CA alone;
//! - with the CA added through `SSL_CERT_FILE`, it connects and trusts the
//!   compiled-in roots as well;
//! - with neither, the compiled-in roots (all of webpki-roots, counted in
//!   `/metrics`) do not vouch for the test CA: the agent keeps supervising,
//!   logs an ERROR naming the URL and the TLS reason, and its `/metrics` and
//!   `/healthz` say so.
//!
//! The containers share the host's network (`--network host`), so
//! everything stays on 127.0.0.1. Each case reports itself skipped without
//! an engine or the images, and removes its containers on `Drop`.

use geolb_tests::docker::{available, logs, Cleanup, SERVER_IMAGE};
use geolb_tests::http::http_get;
use geolb_tests::pki::Pki;
use geolb_tests::{default_version, free_port, geolb_bin, wait_for, NatsServer, ServerConfig};
use std::process::Command;
use std::time::Duration;

/// Upper bound for one step: a container starting, a connection, an alarm.
const STEP: Duration = Duration::from_secs(30);

/// A TLS control plane with the test CA's server certificate.
fn control_plane(pki: &Pki) -> NatsServer {
    let config = ServerConfig {
        extra: pki.server_tls(false),
        ..Default::default()
    };
    NatsServer::start(default_version(), config)
}

/// A server-image container whose agent connects to `url` with `env`
/// (`KEY=VALUE`), the PKI mounted on `/pki`; its id and its agent's Prometheus address.
fn agent_container(
    guard: &Cleanup,
    pki: &Pki,
    id: &str,
    url: &str,
    env: &[&str],
) -> (String, String) {
    let prometheus = format!("127.0.0.1:{}", free_port());
    let (client, monitor) = (free_port(), free_port());
    let mount = format!("{}:/pki:ro", pki.dir().display());
    let mut args: Vec<String> = ["--network", "host", "-v", &mount]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let base = [
        format!("GEOLB_ID={id}"),
        "GEOLB_REGION=lon".into(),
        format!("GEOLB_CONTROL={url}"),
        format!("GEOLB_PROMETHEUS_LISTEN={prometheus}"),
        format!("GEOLB_MONITOR=http://127.0.0.1:{monitor}"),
        "GEOLB_CONTROL_ALARM=1s".into(),
    ];
    for kv in base.iter().map(String::as_str).chain(env.iter().copied()) {
        args.extend(["-e".to_string(), kv.to_string()]);
    }
    args.push(SERVER_IMAGE.into());
    let (client, monitor) = (client.to_string(), monitor.to_string());
    args.extend(
        [
            "nats-server",
            "-a",
            "127.0.0.1",
            "-p",
            &client,
            "-m",
            &monitor,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (guard.run(&args), prometheus)
}

/// `/metrics` of the agent at `addr`, once it answers.
async fn metrics(addr: &str) -> String {
    let url = format!("http://{addr}/metrics");
    wait_for(&format!("{url} to answer"), STEP, || {
        let body = http_get(&url).ok().filter(|(code, _)| *code == 200);
        async move { body.map(|(_, body)| body) }
    })
    .await
}

/// The value of the sample of `name` whose line contains `label` (e.g. `source="compiled"`).
fn sample(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// `geolb cmd status ID` over TLS, trusting the test CA.
fn status_over_tls(pki: &Pki, url: &str, id: &str) -> bool {
    Command::new(geolb_bin())
        .args(["--control", url, "--tls-ca"])
        .arg(pki.path("ca.pem"))
        .args(["cmd", "status", id])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test]
async fn the_images_agent_trusts_a_ca_given_by_geolb_tls_ca() {
    let test = "the_images_agent_trusts_a_ca_given_by_geolb_tls_ca";
    let Some(()) = available(test, &[SERVER_IMAGE]) else {
        return;
    };
    let pki = Pki::new();
    let server = control_plane(&pki);
    let url = format!("tls://127.0.0.1:{}", server.client_port());
    let guard = Cleanup::new("img-tls-ca");
    let (_, prometheus) = agent_container(
        &guard,
        &pki,
        "img-tls-ca",
        &url,
        &["GEOLB_TLS_CA=/pki/ca.pem"],
    );
    wait_for("img-tls-ca to answer over TLS", STEP, || {
        let ok = status_over_tls(&pki, &url, "img-tls-ca");
        async move { ok.then_some(()) }
    })
    .await;
    let text = metrics(&prometheus).await;
    assert_eq!(
        sample(&text, "geolb_control_connected", ""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "geolb_control_tls_roots", "source=\"tls_ca\""),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "geolb_control_tls_roots", "source=\"compiled\""),
        Some(0.0),
        "the override trusts its CA alone"
    );
    let (code, body) = http_get(&format!("http://{prometheus}/healthz")).unwrap();
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn the_images_agent_adds_a_ca_from_ssl_cert_file_to_the_compiled_in_roots() {
    let test = "the_images_agent_adds_a_ca_from_ssl_cert_file_to_the_compiled_in_roots";
    let Some(()) = available(test, &[SERVER_IMAGE]) else {
        return;
    };
    let pki = Pki::new();
    let server = control_plane(&pki);
    let url = format!("tls://127.0.0.1:{}", server.client_port());
    let guard = Cleanup::new("img-tls-add");
    let (_, prometheus) = agent_container(
        &guard,
        &pki,
        "img-tls-add",
        &url,
        &["SSL_CERT_FILE=/pki/ca.pem"],
    );
    wait_for("img-tls-add to answer over TLS", STEP, || {
        let ok = status_over_tls(&pki, &url, "img-tls-add");
        async move { ok.then_some(()) }
    })
    .await;
    let text = metrics(&prometheus).await;
    let compiled = sample(&text, "geolb_control_tls_roots", "source=\"compiled\"");
    assert_eq!(
        compiled,
        Some(webpki_roots::TLS_SERVER_ROOTS.len() as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, "geolb_control_tls_roots", "source=\"ssl_cert_env\""),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_images_agent_says_loudly_when_no_root_vouches_for_the_control_plane() {
    let test = "the_images_agent_says_loudly_when_no_root_vouches_for_the_control_plane";
    let Some(()) = available(test, &[SERVER_IMAGE]) else {
        return;
    };
    let pki = Pki::new();
    let server = control_plane(&pki);
    let url = format!("tls://127.0.0.1:{}", server.client_port());
    let guard = Cleanup::new("img-tls-none");
    let (container, prometheus) = agent_container(&guard, &pki, "img-tls-none", &url, &[]);

    // The roots shipped in the image: every one of webpki-roots, loaded.
    let text = metrics(&prometheus).await;
    let compiled = sample(&text, "geolb_control_tls_roots", "source=\"compiled\"");
    assert_eq!(
        compiled,
        Some(webpki_roots::TLS_SERVER_ROOTS.len() as f64),
        "{text}"
    );
    assert!(webpki_roots::TLS_SERVER_ROOTS.len() >= 100);
    assert_eq!(
        sample(&text, "geolb_control_tls_roots", "source=\"ssl_cert_env\""),
        Some(0.0),
        "no store in the image"
    );

    // None of them vouches for the test CA: an ERROR naming the URL and why.
    let line = wait_for("the agent's ERROR about the control plane", STEP, || {
        let line = logs(&container)
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("Cannot reach the control plane"))
            .map(str::to_string);
        async move { line }
    })
    .await;
    assert!(line.contains(&url), "{line}");
    assert!(line.contains("UnknownIssuer"), "{line}");
    assert!(line.contains("GEOLB_TLS_CA"), "{line}");

    let text = metrics(&prometheus).await;
    assert_eq!(
        sample(&text, "geolb_control_connected", ""),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "geolb_control_alarm", ""),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("geolb_control_failure_info{")
                && l.contains("kind=\"tls\"")
                && l.contains("UnknownIssuer")),
        "{text}"
    );
    let (code, body) = http_get(&format!("http://{prometheus}/healthz")).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains(&url) && body.contains("UnknownIssuer"),
        "{body}"
    );
    // Supervision goes on: the agent's nats-server runs.
    assert_eq!(
        sample(&text, "geolb_child_state", "state=\"running\""),
        Some(1.0),
        "{text}"
    );
}

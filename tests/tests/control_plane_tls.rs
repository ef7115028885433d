//! TLS to the control plane: a real nats-server requiring client
//! certificates (`verify: true`), with a CA, server and client certificates
//! made in the test. The agent and `geolb` connect with `--tls-ca`,
//! `--tls-cert` and `--tls-key`; trusting a CA that did not sign the server's
//! certificate fails with one clear line.

use geolb_tests::agent::AgentBuilder;
use geolb_tests::{default_version, geolb_bin, wait_for, NatsServer, ServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// A CA, a server and a client certificate it signed, and a rogue CA.
fn pki() -> Pki {
    let dir = std::env::temp_dir().join("geolb-tests").join(format!(
        "{}-pki-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = new_ca("geolb test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    leaf(
        &dir,
        "server",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    leaf(
        &dir,
        "client",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    );
    std::fs::write(dir.join("rogue.pem"), new_ca("rogue CA").pem()).unwrap();
    Pki { dir }
}

fn tls_server(pki: &Pki) -> NatsServer {
    let config = ServerConfig {
        extra: format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  timeout: 2\n}}\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem"),
        ),
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
    let pki = pki();
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

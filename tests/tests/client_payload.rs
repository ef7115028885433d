//! `geolb-agent client --payload obj:NAME`: a file stored with `geolb data
//! put` is read from the least-privilege control plane as the client's
//! agent, and every message the client sends on the data plane carries the
//! file's bytes after its header line, successive pieces cut to `--size`
//! (wrapping around). A missing object stops the client at start with a
//! line naming it.

use futures::StreamExt;
use geolb_tests::objects::geolb_json_as_coordinator;
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::{
    agent_bin, default_version, wait_for, with_timeout, NatsServer, ProcessGuard, ServerConfig,
};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const SIZE: usize = 20 * 1024;

fn client(
    cp: &SecureControlPlane,
    data_url: &str,
    payload: &str,
    stderr: &std::path::Path,
) -> ProcessGuard {
    let mut command = Command::new(agent_bin());
    command
        .args([
            "client",
            "--id",
            "pc",
            "--region",
            "lon",
            "--strategy",
            "ordered",
        ])
        .args([
            "--no-probes",
            "--profile",
            "html",
            "--rate",
            "20",
            "--duration",
            "30s",
        ])
        .args(["--server", &format!("lon={data_url}"), "--payload", payload])
        .args(["--control", &cp.url(), "--nkey-file"])
        .arg(cp.seed("agent-pc"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    ProcessGuard::spawn("geolb-agent client pc", &mut command).expect("spawn the client")
}

#[tokio::test]
async fn clients_send_a_stored_files_bytes() {
    let cp = SecureControlPlane::start(&[("pc", "lon")], 0);
    let data = NatsServer::start(default_version(), ServerConfig::default());
    let dir = std::env::temp_dir().join(format!("geolb-payload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: Vec<u8> = (0..3000)
        .flat_map(|i| format!("<p>paragraph {i}</p>\n").into_bytes())
        .collect();
    assert!(file.len() > 3 * SIZE, "longer than three messages");
    let path = dir.join("page.html");
    std::fs::write(&path, &file).unwrap();
    let (code, put) = geolb_json_as_coordinator(&cp, &["data", "put", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{put}");

    let listener = async_nats::connect(data.client_url()).await.unwrap();
    let mut traffic = listener.subscribe("geolb.traffic.>").await.unwrap();
    listener.flush().await.unwrap();
    let _client = client(
        &cp,
        &data.client_url(),
        "obj:page.html",
        &dir.join("ok.err"),
    );
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let message = with_timeout(T, traffic.next()).await.expect("traffic");
        let payload = message.payload.to_vec();
        assert_eq!(payload.len(), SIZE, "the html profile's size");
        let line = payload.iter().position(|&b| b == b'\n').unwrap() + 1;
        let header: serde_json::Value = serde_json::from_slice(&payload[..line]).unwrap();
        let seq = header["seq"].as_u64().unwrap();
        let body = &payload[line..];
        let start = ((seq - 1) as usize * body.len()) % file.len();
        let expected: Vec<u8> = file
            .iter()
            .cycle()
            .skip(start)
            .take(body.len())
            .copied()
            .collect();
        assert!(
            body == expected.as_slice(),
            "message {seq} carries the file from byte {start}"
        );
        seen.push(seq);
    }
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "{seen:?}");

    // A missing object: the client stops at start and says which.
    let err = dir.join("missing.err");
    let mut missing = client(&cp, &data.client_url(), "obj:no-such-page", &err);
    let status = wait_for("the client gives up", T, || {
        let status = missing.try_status();
        async move { status }
    })
    .await;
    assert!(!status.success());
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(
        said.contains("no object no-such-page in GEOLB_DATA"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

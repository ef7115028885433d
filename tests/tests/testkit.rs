//! The testkit itself: real nats-servers start, talk, restart, cluster, federate and die.

use std::time::Duration;

use futures::StreamExt;
use geolb_tests::cluster::route_peers;
use geolb_tests::process::is_alive;
use geolb_tests::supercluster::outbound_gateways;
use geolb_tests::tools::installed_versions;
use geolb_tests::{default_version, with_timeout, Cluster, NatsServer, ServerConfig, SuperCluster};

/// Upper bound for any single network step in these tests.
const STEP: Duration = Duration::from_secs(10);

/// Connects a client to `url`.
async fn connect(url: &str) -> async_nats::Client {
    with_timeout(STEP, async_nats::connect(url))
        .await
        .expect("connect")
}

/// Serves `subject` on `client` by echoing every request with a `re:` prefix.
async fn echo(client: &async_nats::Client, subject: &str) {
    let mut sub = with_timeout(STEP, client.subscribe(subject.to_string()))
        .await
        .unwrap();
    with_timeout(STEP, client.flush()).await.unwrap();
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let body = [b"re:".as_slice(), &msg.payload].concat();
            let _ = client.publish(msg.reply.unwrap(), body.into()).await;
        }
    });
}

#[tokio::test]
async fn single_server_round_trip_and_stop_on_drop() {
    let server = NatsServer::start(
        default_version(),
        ServerConfig::default().server_name("one"),
    );
    let pid = server.pid().expect("running") as i32;
    let client = connect(&server.client_url()).await;
    echo(&client, "echo").await;
    let reply = with_timeout(STEP, client.request("echo", "hi".into()))
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"re:hi");
    assert_eq!(server.varz()["server_name"], "one");

    let dir = server.dir().to_path_buf();
    drop(client);
    drop(server);
    assert!(!is_alive(pid), "nats-server {pid} still running after drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[tokio::test]
async fn restart_keeps_the_port_and_clients_reconnect() {
    let mut server = NatsServer::start(default_version(), ServerConfig::default());
    let (port, pid) = (server.client_port(), server.pid().unwrap());
    let client = connect(&server.client_url()).await;

    server.restart();
    assert_eq!(server.client_port(), port);
    assert_ne!(server.pid().unwrap(), pid);
    assert!(!is_alive(pid as i32));

    echo(&client, "again").await;
    let reply = with_timeout(STEP, client.request("again", "x".into()))
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"re:x");
}

#[tokio::test]
async fn three_node_cluster_forms_routes() {
    let cluster = Cluster::start("c", 3, default_version(), false);
    for server in cluster.servers() {
        assert_eq!(route_peers(server), 2, "{} routes", server.name());
        assert_eq!(server.varz()["cluster"]["name"], "c");
    }
    let responder = connect(&cluster.server(2).client_url()).await;
    echo(&responder, "across").await;
    let client = connect(&cluster.server(0).client_url()).await;
    let reply = geolb_tests::wait_for("a reply across routes", STEP, || async {
        client.request("across", "r".into()).await.ok()
    })
    .await;
    assert_eq!(&reply.payload[..], b"re:r");
}

#[tokio::test]
async fn super_cluster_forms_gateways_and_carries_messages() {
    let sc = SuperCluster::start(&["lon", "ams"], 2, default_version());
    for server in sc.servers() {
        let other = if server.name().starts_with("lon") {
            "ams"
        } else {
            "lon"
        };
        assert!(
            outbound_gateways(server).contains(other),
            "{}",
            server.name()
        );
    }
    let sub_client = connect(&sc.region("ams").server(1).client_url()).await;
    let mut sub = with_timeout(STEP, sub_client.subscribe("news"))
        .await
        .unwrap();
    with_timeout(STEP, sub_client.flush()).await.unwrap();
    let pub_client = connect(&sc.region("lon").server(0).client_url()).await;

    // Interest crosses the gateway asynchronously: publish until a message arrives.
    let got = with_timeout(STEP, async {
        loop {
            pub_client.publish("news", "hello".into()).await.unwrap();
            let next = tokio::time::timeout(Duration::from_millis(100), sub.next());
            if let Ok(Some(msg)) = next.await {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(&got.payload[..], b"hello");
}

#[tokio::test]
async fn jetstream_server_reports_jetstream_in_varz() {
    let server = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let varz = server.varz();
    let store = varz["jetstream"]["config"]["store_dir"]
        .as_str()
        .expect("jetstream in varz");
    assert!(
        store.starts_with(server.dir().to_str().unwrap()),
        "store_dir {store}"
    );

    let js = async_nats::jetstream::new(connect(&server.client_url()).await);
    let config = async_nats::jetstream::stream::Config {
        name: "S".into(),
        subjects: vec!["s.>".into()],
        ..Default::default()
    };
    with_timeout(STEP, js.create_stream(config))
        .await
        .expect("create stream");
    let ack = with_timeout(STEP, js.publish("s.1", "v".into()))
        .await
        .unwrap();
    assert_eq!(with_timeout(STEP, ack).await.unwrap().sequence, 1);
}

#[tokio::test]
async fn every_installed_version_starts_with_websocket() {
    let versions = installed_versions();
    assert!(
        versions.iter().any(|v| v == default_version()),
        "installed: {versions:?}"
    );
    for version in versions {
        let server = NatsServer::start(&version, ServerConfig::default().websocket(0));
        let varz = server.varz();
        assert_eq!(varz["version"], version.as_str());
        assert_eq!(
            varz["websocket"]["port"],
            server.config().websocket_port.unwrap()
        );
    }
}

#[test]
fn a_bad_config_fails_start_with_the_log() {
    let config = ServerConfig {
        extra: "this is { not valid".into(),
        ..Default::default()
    };
    let panic = std::panic::catch_unwind(|| NatsServer::start(default_version(), config))
        .expect_err("start must fail");
    let msg = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(msg.contains("exited early"), "{msg}");
    assert!(msg.contains("Parse error"), "the log tail is shown: {msg}");
    // The failed server keeps its folder for inspection; this test knows it is expected.
    let log = msg
        .split("last lines of ")
        .nth(1)
        .and_then(|s| s.split(":\n").next());
    let dir = std::path::Path::new(log.expect("log path in message"))
        .parent()
        .unwrap();
    std::fs::remove_dir_all(dir).expect("remove the kept folder");
}

//! `geolb-agent run --front`: the child's listener behind the agent's own
//! link, announced on the control plane as emulator `<agent id>` with the
//! region it leads to, cut and healed by `set`; a front whose target never
//! opens is reported loudly; bad flags are refused before anything starts.

use futures::StreamExt;
use geolb_proto::wan::{Carries, LinkState};
use geolb_proto::{Event, EventKind};
use geolb_tests::agent::{geolb_json, AgentBuilder};
use geolb_tests::{
    agent_bin, default_version, free_port, wait_for, with_timeout, NatsServer, ServerConfig,
};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

async fn nats_through(port: u16) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
}

#[tokio::test]
async fn a_front_link_is_announced_and_obeys_the_control_plane() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let front = free_port();
    let mut config = ServerConfig::default().server_name("tok-1");
    config.resolve_ports();
    let inner = config.port;
    let (_agent, _server) = AgentBuilder::new("tok-1", "tok")
        .control(&url)
        .arg("--front")
        .arg(format!("client=127.0.0.1:{front}->127.0.0.1:{inner}"))
        .server(default_version(), config);

    let links: Value = wait_for("the front link is announced", T, || {
        let url = url.clone();
        async move {
            let (out, links) = geolb_json(&url, &["fleet", "links"]);
            (out.status.success() && links.as_array().is_some_and(|l| l.len() == 1))
                .then_some(links)
        }
    })
    .await;
    let link = &links[0];
    assert_eq!(link["emulator"], "tok-1");
    assert_eq!(link["link"]["name"], "front:tok-1:client");
    assert_eq!(link["link"]["listen"], format!("127.0.0.1:{front}"));
    assert_eq!(link["link"]["path"]["carries"], "client");
    assert_eq!(link["link"]["path"]["to"], "tok");
    assert!(
        link["link"]["path"]["from"].is_null(),
        "anyone may dial a front"
    );
    let _: Carries = serde_json::from_value(link["link"]["path"]["carries"].clone()).unwrap();

    // Traffic flows through the front to the server.
    let client = wait_for("a client connects through the front", T, || async {
        nats_through(front).await.ok()
    })
    .await;
    assert_eq!(client.server_info().server_name, "tok-1");
    let mut echo = client.subscribe("front.echo").await.unwrap();
    client.publish("front.echo", "1".into()).await.unwrap();
    with_timeout(T, echo.next())
        .await
        .expect("a message through the front");

    // Cut: the open connection hangs, a new one is held.
    let coordinator = geolb::Control::connect(&geolb_proto::connect::ControlArgs {
        url: Some(url.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let found = geolb::links::discover(&coordinator).await.unwrap();
    assert_eq!(found.len(), 1);
    geolb::links::set(&coordinator, &found, |l| {
        l.link.config.with_state(LinkState::Cut)
    })
    .await
    .unwrap();
    client.publish("front.echo", "2".into()).await.unwrap();
    let held = tokio::time::timeout(Duration::from_millis(800), echo.next()).await;
    assert!(held.is_err(), "a cut front holds the traffic");
    assert!(
        nats_through(front).await.is_err(),
        "nobody gets through a cut front"
    );

    geolb::links::set(&coordinator, &found, |l| l.link.config)
        .await
        .unwrap();
    let healed = with_timeout(T, echo.next())
        .await
        .expect("healed, the held traffic arrives");
    assert_eq!(&healed.payload[..], b"2");
    let listed = geolb::links::discover(&coordinator).await.unwrap();
    assert_eq!(listed[0].link.config.state, LinkState::Up);
}

#[tokio::test]
async fn a_front_whose_target_never_opens_is_reported() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let nats = async_nats::connect(&url).await.unwrap();
    let mut events = nats.subscribe("geolb.evt.>").await.unwrap();
    nats.flush().await.unwrap();
    let (front, nothing) = (free_port(), free_port());
    let mut agent = AgentBuilder::new("lonely", "tok")
        .control(&url)
        .arg("--front-timeout")
        .arg("1s")
        .arg("--front")
        .arg(format!("client=127.0.0.1:{front}->127.0.0.1:{nothing}"));
    agent = agent.arg("--role").arg("client");
    let mut cmd = Command::new(agent_bin());
    cmd.args(agent.command_line(&["sleep", "30"]))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut guard = geolb_tests::ProcessGuard::spawn("agent lonely", &mut cmd).unwrap();
    let down = with_timeout(T, async {
        while let Some(message) = events.next().await {
            let Ok(event) = serde_json::from_slice::<Event>(&message.payload) else {
                continue;
            };
            if let EventKind::FrontTargetDown { link, target, .. } = event.event {
                return (link, target);
            }
        }
        panic!("no front_target_down event")
    })
    .await;
    assert_eq!(down.0, "front:lonely:client");
    assert_eq!(down.1, format!("127.0.0.1:{nothing}"));
    // A connection to the front is refused at once, not left hanging.
    let refused = tokio::time::timeout(Duration::from_secs(2), nats_through(front)).await;
    assert!(matches!(refused, Ok(Err(_))), "refused quickly");
    drop(events);
    guard.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut stderr = String::new();
    use std::io::Read;
    guard
        .child_mut()
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("ERROR") && stderr.contains("Nothing listens on the front link's target"),
        "{stderr}"
    );
}

#[test]
fn bad_front_flags_start_nothing() {
    for (flag, says) in [
        ("route=127.0.0.1:1->127.0.0.1:2", "routes stay direct"),
        ("client=127.0.0.1:5", "KIND=LISTEN->TARGET"),
        ("client=nowhere:1->127.0.0.1:2", "is not IP:PORT"),
    ] {
        let out = Command::new(agent_bin())
            .args(["run", "--id", "x", "--front", flag, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains(says), "{flag}: {text}");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(agent_bin())
        .args(["run", "--id", "x", "--front"])
        .arg(format!("client=127.0.0.1:{port}->127.0.0.1:1"))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("--front client") && text.contains("cannot listen"),
        "{text}"
    );
}

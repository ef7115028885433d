//! A region's servers find each other even when DNS was late: two
//! `geolb-agent fly-server` machines started together, each in a network
//! namespace of its own (a host with its own IPv6 address, like a Fly
//! machine on 6PN), each told by DNS that `<region>.<app>.internal` is only
//! itself. nats-server leaves its own address out, finds no route and never
//! tries again: both run alone, and the agents say so. Once DNS lists both,
//! the agents add a route to the other's address and reload nats-server,
//! and the two join one cluster.
//!
//! A third host runs the same configuration under nats-server alone, as a
//! control: DNS first lists only itself there too, then itself and the
//! first machine, and it never asks again; it stays alone while the
//! agents' servers, which keep asking, join.
//!
//! DNS is the testkit's server on the bridge, port 53; `ip netns exec`
//! points each host's resolver (the agent's and nats-server's) at it.

use geolb_tests::dns::DnsServer;
use geolb_tests::http::get_json;
use geolb_tests::netns::{self, Lan};
use geolb_tests::{agent_bin, default_version, nats_server_bin, wait_for, ProcessGuard};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

const APP: &str = "geolb-test";
const REGION: &str = "ams";
/// Upper bound for one step: servers up, a DNS change seen, a reload done.
const STEP: Duration = Duration::from_secs(30);

/// A scratch folder removed on drop (kept when the test fails).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `geolb-agent fly-server` around nats-server in host `i`, logging to `<dir>/m<i>.log`.
fn machine(lan: &Lan, i: usize, dir: &Path) -> ProcessGuard {
    let host = lan.host(i);
    let log = std::fs::File::create(dir.join(format!("m{i}.log"))).unwrap();
    let mut cmd = lan.command(i, agent_bin());
    cmd.args(["fly-server", "--fly-regions", REGION, "--fly-app", APP])
        .args(["--fly-region", REGION, "--fly-machine-id", &format!("m{i}")])
        .args(["--fly-private-ip", &host.ip.to_string()])
        .arg("--fly-config")
        .arg(dir.join(format!("m{i}.conf")))
        .arg("--fly-store-dir")
        .arg(dir.join(format!("js{i}")))
        .args(["--fly-route-check", "300ms"])
        .args(["--monitor", "http://127.0.0.1:8222", "--role", "server"])
        .arg("--")
        .arg(nats_server_bin(default_version()))
        .env_remove("FLY_APP_NAME")
        .env_remove("GEOLB_CONTROL")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    ProcessGuard::spawn(&format!("fly-server m{i}"), &mut cmd).expect("spawn the agent")
}

/// nats-server alone in host `i`, on the configuration `fly-server` generates for it.
fn bare_server(lan: &Lan, i: usize, dir: &Path) -> ProcessGuard {
    let out = std::process::Command::new(agent_bin())
        .args(["fly-server", "--print-config", "--fly-regions", REGION])
        .args(["--fly-app", APP, "--fly-region", REGION])
        .args(["--fly-machine-id", &format!("m{i}")])
        .args(["--fly-private-ip", &lan.host(i).ip.to_string()])
        .arg("--fly-store-dir")
        .arg(dir.join(format!("js{i}")))
        .args(["--", "nats-server"])
        .output()
        .expect("run fly-server --print-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = dir.join(format!("m{i}.conf"));
    std::fs::write(&conf, &out.stdout).unwrap();
    let log = std::fs::File::create(dir.join(format!("m{i}.log"))).unwrap();
    let mut cmd = lan.command(i, nats_server_bin(default_version()));
    cmd.arg("-c")
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    ProcessGuard::spawn(&format!("nats-server m{i}"), &mut cmd).expect("spawn nats-server")
}

/// `/routez` of host `i`'s nats-server, seen from the root namespace.
fn routez(lan: &Lan, i: usize) -> Option<serde_json::Value> {
    get_json(&format!("http://[{}]:8222/routez", lan.host(i).ip)).ok()
}

/// The names of the servers host `i` routes to.
fn route_peers(lan: &Lan, i: usize) -> Option<Vec<String>> {
    let routez = routez(lan, i)?;
    let mut names: Vec<String> = routez["routes"]
        .as_array()?
        .iter()
        .filter_map(|r| r["remote_name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

fn log(dir: &Path, i: usize) -> String {
    std::fs::read_to_string(dir.join(format!("m{i}.log"))).unwrap_or_default()
}

#[tokio::test]
async fn two_servers_started_alone_in_dns_join_once_dns_lists_both() {
    let test = "two_servers_started_alone_in_dns_join_once_dns_lists_both";
    let Some(()) = netns::available(test) else {
        return;
    };
    let lan = Lan::new(3);
    let dns = DnsServer::start(SocketAddr::new(IpAddr::V6(lan.gateway()), 53));
    lan.use_dns(IpAddr::V6(lan.gateway()));
    let name = format!("{REGION}.{APP}.internal");
    let ips: Vec<IpAddr> = lan.hosts().iter().map(|h| IpAddr::V6(h.ip)).collect();
    // Each machine's DNS lists only itself: the two started together.
    for ip in &ips {
        dns.set_for(*ip, &name, &[*ip]);
    }
    let (agents, control) = (&ips[..2], ips[2]);

    let dir = std::env::temp_dir().join("geolb-tests").join(format!(
        "{}-fly-routes-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let _scratch = Scratch(dir.clone());
    let _machines: Vec<ProcessGuard> = (0..2).map(|i| machine(&lan, i, &dir)).collect();
    let _control = bare_server(&lan, 2, &dir);

    wait_for(
        "the control server up, alone, having asked DNS",
        STEP,
        || {
            let alone =
                route_peers(&lan, 2).is_some_and(|p| p.is_empty()) && dns.queries_from(ips[2]) > 0;
            async move { alone.then_some(()) }
        },
    )
    .await;
    for i in 0..2 {
        wait_for(
            &format!("m{i} alone, and its agent saying so"),
            STEP,
            || {
                let alone = log(&dir, i).contains("No other server of this region in DNS yet")
                    && route_peers(&lan, i).is_some_and(|p| p.is_empty());
                async move { alone.then_some(()) }
            },
        )
        .await;
    }
    assert!(dns.queries() > 0, "the hosts asked our DNS server");
    // nats-server has given up on the name: still alone after the agents spoke.
    for i in 0..2 {
        assert_eq!(route_peers(&lan, i), Some(vec![]), "m{i}");
    }

    // DNS catches up: the region's name lists both machines; the control
    // host sees itself and the first machine.
    for ip in agents {
        dns.clear_for(*ip);
    }
    dns.set(&name, agents);
    dns.set_for(control, &name, &[control, ips[0]]);
    let control_asked = dns.queries_from(control);
    let agent_asked = dns.queries_from(ips[0]);
    for (i, other) in [(0, "m1"), (1, "m0")] {
        wait_for(&format!("m{i} to route to {other}"), STEP, || {
            let joined = route_peers(&lan, i).is_some_and(|p| p == [other]);
            async move { joined.then_some(()) }
        })
        .await;
    }
    // Long enough for nats-server to have asked again, were it retrying
    // (it tries an explicit route every second): the first machine's agent
    // has asked ten more times meanwhile.
    wait_for("ten more questions from the first machine", STEP, || {
        let asked = dns.queries_from(ips[0]) >= agent_asked + 10;
        async move { asked.then_some(()) }
    })
    .await;
    assert_eq!(
        dns.queries_from(control),
        control_asked,
        "nats-server alone never resolves the route again"
    );
    assert_eq!(route_peers(&lan, 2), Some(vec![]), "so it stays alone");

    let logs = log(&dir, 0) + &log(&dir, 1);
    assert!(
        logs.contains("adding a route to each and reloading nats-server"),
        "an agent added the routes:\n{logs}"
    );
    assert!(
        logs.contains("Reloaded: cluster routes"),
        "nats-server took them by a reload:\n{logs}"
    );
    for i in 0..2 {
        let conf = std::fs::read_to_string(dir.join(format!("m{i}.conf"))).unwrap();
        assert!(
            conf.contains(&format!("nats-route://{name}:6222")),
            "{conf}"
        );
    }
}

//! The Fly.io apps in `fly/`: every `fly.toml` runs the agent as its
//! entrypoint on an image `make images` builds, a Fly stop drains the server
//! before Fly's SIGKILL, deploys replace the servers one at a time, each
//! gated on nats-server's health and on the agent having reached the control
//! plane, Fly's metrics scraper finds the agent's Prometheus listener, the
//! clients are pointed at the server app's regions, and the configuration
//! `geolb-agent fly-server` generates is one nats-server accepts.

use geolb_tests::tools::repo_root;
use geolb_tests::{agent_bin, default_version, nats_server_bin};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use toml::{Table, Value};

/// Where the images are installed the agent (the images' ENTRYPOINT).
const AGENT: &str = "/usr/local/bin/geolb-agent";

/// Every `fly/*/fly.toml`, parsed, with its folder name.
fn apps() -> Vec<(String, Table)> {
    let dir = repo_root().join("fly");
    let mut apps: Vec<(String, Table)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("fly.toml"))
        .filter(|p| p.is_file())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let table: Table = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not TOML: {e}", p.display()));
            let name = p.parent().unwrap().file_name().unwrap().to_string_lossy();
            (name.into_owned(), table)
        })
        .collect();
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    apps
}

fn app(name: &str) -> Table {
    apps()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("fly/{name}/fly.toml missing"))
        .1
}

fn str_at<'a>(t: &'a Table, path: &[&str]) -> Option<&'a str> {
    value_at(t, path)?.as_str()
}

fn value_at<'a>(t: &'a Table, path: &[&str]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut table = t;
    for key in parents {
        table = table.get(*key)?.as_table()?;
    }
    table.get(*last)
}

fn env<'a>(t: &'a Table, key: &str) -> Option<&'a str> {
    str_at(t, &["env", key])
}

/// `kill_timeout`: seconds as an integer, or a duration string ("60s").
fn kill_timeout(t: &Table) -> Duration {
    match t.get("kill_timeout") {
        Some(Value::Integer(secs)) => Duration::from_secs(*secs as u64),
        Some(Value::String(d)) => humantime::parse_duration(d).unwrap(),
        other => panic!("kill_timeout must be set (Fly's default is 5 s): {other:?}"),
    }
}

/// `name:tag` of every image `make images` builds, read from
/// scripts/build-images.sh (`build geolb-... ` lines, tag `${IMAGE_TAG:-latest}`).
fn built_images() -> Vec<String> {
    let script = std::fs::read_to_string(repo_root().join("scripts/build-images.sh")).unwrap();
    let tag = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("tag=\"${IMAGE_TAG:-"))
        .and_then(|rest| rest.strip_suffix("}\""))
        .expect("build-images.sh sets tag=\"${IMAGE_TAG:-...}\"");
    let images: Vec<String> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("build geolb-"))
        .map(|rest| format!("geolb-{}:{tag}", rest.split_whitespace().next().unwrap()))
        .collect();
    assert!(
        images.len() >= 2,
        "no `build geolb-...` lines found: {images:?}"
    );
    images
}

#[test]
fn every_app_runs_the_agent_on_an_image_make_images_builds() {
    let images = built_images();
    let apps = apps();
    assert!(
        apps.len() >= 2,
        "fly/server and fly/client expected: {apps:?}"
    );
    for (name, t) in &apps {
        let image =
            str_at(t, &["build", "image"]).unwrap_or_else(|| panic!("{name}: no [build] image"));
        assert!(
            images.iter().any(|i| i == image),
            "{name}: image {image} is not one of {images:?}"
        );
        let entrypoint: Vec<&str> = value_at(t, &["experimental", "entrypoint"])
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{name}: no [experimental] entrypoint"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(entrypoint.first(), Some(&AGENT), "{name}: {entrypoint:?}");
        assert_eq!(
            entrypoint.last(),
            Some(&"--"),
            "{name}: CMD must follow `--`: {entrypoint:?}"
        );
        let cmd = value_at(t, &["experimental", "cmd"]).and_then(Value::as_array);
        assert!(
            cmd.is_some_and(|c| !c.is_empty()),
            "{name}: set [experimental] cmd too, so the image's CMD is not appended"
        );
    }
}

#[test]
fn a_fly_stop_drains_the_server_before_the_kill() {
    for (name, t) in apps() {
        assert_eq!(
            t.get("kill_signal").and_then(Value::as_str),
            Some("SIGTERM"),
            "{name}"
        );
        let timeout = kill_timeout(&t);
        assert!(
            timeout <= Duration::from_secs(300),
            "{name}: shared-CPU machines allow 300 s at most"
        );
        if let Some(grace) = env(&t, "GEOLB_TERM_DRAIN_GRACE") {
            let grace = humantime::parse_duration(grace).unwrap();
            assert!(
                grace + Duration::from_secs(10) <= timeout,
                "{name}: GEOLB_TERM_DRAIN_GRACE {grace:?} must end well before kill_timeout {timeout:?}"
            );
        }
    }
    let server = app("server");
    assert_eq!(env(&server, "GEOLB_ON_TERM"), Some("drain"));
    let grace =
        humantime::parse_duration(env(&server, "GEOLB_TERM_DRAIN_GRACE").expect("set explicitly"))
            .unwrap();
    assert!(
        grace > Duration::from_secs(30),
        "the drain may take nats-server's whole 30 s lame-duck duration: {grace:?}"
    );
}

/// flyctl's default: a third of the machines at once (`DefaultMaxUnavailable`).
const FLYCTL_DEFAULT_MAX_UNAVAILABLE: f64 = 0.33;

/// Machines a rolling deploy replaces at once, as flyctl reads
/// `max_unavailable` (`getPoolSize`: 1 or more is a count, below 1 a
/// fraction of `machines`, rounded up).
fn replaced_at_once(max_unavailable: f64, machines: u32) -> u32 {
    match max_unavailable {
        m if m >= 1.0 => m as u32,
        m => (f64::from(machines) * m).ceil() as u32,
    }
}

#[test]
fn deploys_replace_one_server_at_a_time() {
    let server = app("server");
    assert_eq!(
        str_at(&server, &["deploy", "strategy"]),
        Some("rolling"),
        "max_unavailable counts only for rolling (and canary) deploys"
    );
    let max = value_at(&server, &["deploy", "max_unavailable"])
        .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
        .expect("[deploy] max_unavailable set");
    // 3 regions of 3: the default would take 3 at once, perhaps a region.
    assert_eq!(replaced_at_once(FLYCTL_DEFAULT_MAX_UNAVAILABLE, 9), 3);
    for machines in [3, 9, 30] {
        assert_eq!(replaced_at_once(max, machines), 1, "{machines} servers");
    }
}

#[test]
fn a_deploy_waits_for_the_agent_on_the_control_plane() {
    for (name, t) in apps() {
        let check = value_at(&t, &["checks", "agent"])
            .and_then(Value::as_table)
            .unwrap_or_else(|| panic!("{name}: no [checks.agent]"));
        let listen: std::net::SocketAddr =
            env(&t, "GEOLB_PROMETHEUS_LISTEN").unwrap().parse().unwrap();
        assert_eq!(
            check.get("type").and_then(Value::as_str),
            Some("http"),
            "{name}"
        );
        assert_eq!(
            check.get("port").and_then(Value::as_integer),
            Some(i64::from(listen.port())),
            "{name}: the agent answers /healthz on its Prometheus listener"
        );
        assert_eq!(
            check.get("path").and_then(Value::as_str),
            Some("/healthz"),
            "{name}"
        );
    }
}

#[test]
fn fly_scrapes_the_agents_prometheus_listener() {
    for (name, t) in apps() {
        let listen = env(&t, "GEOLB_PROMETHEUS_LISTEN")
            .unwrap_or_else(|| panic!("{name}: no GEOLB_PROMETHEUS_LISTEN"));
        let addr: std::net::SocketAddr = listen.parse().unwrap();
        assert!(
            addr.is_ipv6() && addr.ip().is_unspecified(),
            "{name}: Fly scrapes over IPv6; listen on [::]: {listen}"
        );
        let port = value_at(&t, &["metrics", "port"]).and_then(Value::as_integer);
        assert_eq!(port, Some(addr.port() as i64), "{name}: [metrics] port");
        assert_eq!(str_at(&t, &["metrics", "path"]), Some("/metrics"), "{name}");
    }
}

#[test]
fn credentials_files_are_where_the_agent_reads_them() {
    for (name, t) in apps() {
        let files = t
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for file in files {
            let guest = file.get("guest_path").and_then(Value::as_str).unwrap();
            assert!(
                file.get("secret_name").is_some() || file.get("local_path").is_some(),
                "{name}: {file:?}"
            );
            if let Some(creds) = env(&t, "GEOLB_CREDS") {
                assert_eq!(creds, guest, "{name}: GEOLB_CREDS points elsewhere");
            }
        }
    }
}

#[test]
fn clients_know_a_server_url_in_every_server_region() {
    let server = app("server");
    let client = app("client");
    let server_app = server.get("app").and_then(Value::as_str).unwrap();
    let regions: Vec<&str> = env(&server, "GEOLB_FLY_REGIONS")
        .unwrap()
        .split(',')
        .collect();
    assert!(regions.contains(&str_at(&server, &["primary_region"]).unwrap()));
    let servers = env(&client, "GEOLB_CLIENT_SERVERS").unwrap();
    let mut named: Vec<&str> = Vec::new();
    for entry in servers.split(',') {
        let (region, url) = entry.split_once('=').unwrap();
        assert_eq!(
            url,
            format!("nats://{region}.{server_app}.internal:4222"),
            "{entry}"
        );
        named.push(region);
    }
    assert_eq!(named, regions);
}

/// A scratch file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn nats_server_accepts_the_generated_configuration() {
    let server = app("server");
    let regions = env(&server, "GEOLB_FLY_REGIONS").unwrap();
    let app_name = server.get("app").and_then(Value::as_str).unwrap();
    let out = Command::new(agent_bin())
        .args(["fly-server", "--print-config", "--", "nats-server"])
        .env_clear()
        .env("GEOLB_FLY_REGIONS", regions)
        .env("FLY_APP_NAME", app_name)
        .env("FLY_REGION", "ams")
        .env("FLY_MACHINE_ID", "148e272f4d9589")
        .env("FLY_PRIVATE_IP", "fdaa:0:1:a7b:abc:21de:af5f:2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8(out.stdout).unwrap();
    assert!(
        config.contains(&format!("nats-route://ams.{app_name}.internal:6222")),
        "{config}"
    );
    assert!(
        config.contains(&format!("nats://dfw.{app_name}.internal:7222")),
        "{config}"
    );

    let file =
        TempFile(std::env::temp_dir().join(format!("geolb-fly-{}.conf", std::process::id())));
    std::fs::write(&file.0, &config).unwrap();
    let check = Command::new(nats_server_bin(default_version()))
        .arg("-t")
        .arg("-c")
        .arg(&file.0)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nats-server refused the configuration:\n{config}\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn fly_server_off_fly_says_what_is_missing() {
    let out = Command::new(agent_bin())
        .args(["fly-server", "--fly-regions", "lhr", "--", "nats-server"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FLY_APP_NAME is not set"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

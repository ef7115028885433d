//! Tests of `fly.rs`.
use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;
use std::net::IpAddr;

pub(crate) fn env() -> FlyEnv {
    FlyEnv {
        app: "geolb-server".into(),
        region: "lhr".into(),
        machine_id: "148e272f4d9589".into(),
        regions: vec!["lhr".into(), "ams".into(), "dfw".into()],
        private_ip: Some("fdaa:0:1:a7b:abc:21de:af5f:2".parse().unwrap()),
        store_dir: "/data/jetstream".into(),
    }
}

#[test]
fn renders_routes_gateways_and_listeners_for_6pn() {
    let conf = render(&env(), &[]);
    for line in [
        "server_name: \"148e272f4d9589\"",
        "listen: \"[::]:4222\"",
        "http: \"[::]:8222\"",
        "client_advertise: \"[fdaa:0:1:a7b:abc:21de:af5f:2]:4222\"",
        "lame_duck_duration: \"30s\"",
        "  name: \"lhr\"",
        "  listen: \"[::]:6222\"",
        "  advertise: \"[fdaa:0:1:a7b:abc:21de:af5f:2]:6222\"",
        "  routes: [\"nats-route://lhr.geolb-server.internal:6222\"]",
        "  listen: \"[::]:7222\"",
        "  advertise: \"[fdaa:0:1:a7b:abc:21de:af5f:2]:7222\"",
        "    { name: \"ams\", urls: [\"nats://ams.geolb-server.internal:7222\"] }",
        "    { name: \"dfw\", urls: [\"nats://dfw.geolb-server.internal:7222\"] }",
        "  store_dir: \"/data/jetstream\"",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line:?} missing in\n{conf}"
        );
    }
    assert!(
        !conf.contains("lhr.geolb-server.internal:7222"),
        "no gateway to its own region:\n{conf}"
    );
    assert_eq!(conf.matches('{').count(), conf.matches('}').count());
}

#[test]
fn peers_the_agent_found_get_routes_of_their_own() {
    let peers: Vec<IpAddr> = vec!["fdaa::3".parse().unwrap(), "10.0.0.4".parse().unwrap()];
    let conf = render(&env(), &peers);
    let routes = "  routes: [\"nats-route://lhr.geolb-server.internal:6222\", \"nats-route://[fdaa::3]:6222\", \"nats-route://10.0.0.4:6222\"]";
    assert!(conf.lines().any(|l| l == routes), "{conf}");
}

#[test]
fn without_a_private_ip_nothing_is_advertised() {
    let conf = render(
        &FlyEnv {
            private_ip: None,
            ..env()
        },
        &[],
    );
    assert!(!conf.contains("advertise"), "{conf}");
}

#[test]
fn quotes_paths() {
    let conf = render(
        &FlyEnv {
            store_dir: "/data/a \"b\"".into(),
            ..env()
        },
        &[],
    );
    assert!(conf.contains(r#"store_dir: "/data/a \"b\"""#), "{conf}");
}

fn parse(args: &[&str]) -> FlyServerArgs {
    let mut argv = vec!["geolb-agent", "fly-server"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::FlyServer(args) => *args,
        other => panic!("not fly-server: {other:?}"),
    }
}

const FULL: [&str; 11] = [
    "--fly-regions",
    "lhr, ams,dfw",
    "--fly-app",
    "geolb-server",
    "--fly-region",
    "ams",
    "--fly-machine-id",
    "ABC123",
    "--",
    "nats-server",
    "-DV",
];

#[test]
fn reads_the_flags_and_appends_the_config_to_cmd() {
    let args = parse(&FULL);
    let env = FlyEnv::from_args(&args).unwrap();
    assert_eq!(env.regions, ["lhr", "ams", "dfw"]);
    assert_eq!(env.region, "ams");
    assert!(env.region_listed());
    let run = run_args(args.run, &env, Path::new("/tmp/x.conf"));
    assert_eq!(run.command, ["nats-server", "-DV", "-c", "/tmp/x.conf"]);
    assert_eq!(run.id().as_deref(), Some("ABC123"));
    assert_eq!(run.region(), "ams");
}

#[test]
fn refuses_missing_or_bad_settings() {
    let mut args = parse(&FULL);
    args.fly_app = None;
    assert_eq!(
        FlyEnv::from_args(&args),
        Err(FlyError::Missing {
            var: "FLY_APP_NAME",
            flag: "--fly-app"
        })
    );
    let mut args = parse(&FULL);
    args.fly_regions = vec![" ".into()];
    assert_eq!(FlyEnv::from_args(&args), Err(FlyError::NoRegions));
    for bad in ["LHR", "l.hr", "-x", ""] {
        let mut args = parse(&FULL);
        args.fly_region = Some(bad.into());
        assert!(FlyEnv::from_args(&args).is_err(), "{bad:?}");
    }
    let mut args = parse(&FULL);
    args.fly_regions.push("a_b".into());
    assert!(FlyEnv::from_args(&args).is_err());
}

use super::*;
use clap::Parser;
use geolb_proto::{FlapArgs, FlapMode, ScaleArgs, StopArgs, UpgradeArgs};

#[derive(Parser)]
struct Line {
    #[command(flatten)]
    flags: VerbFlags,
}

fn request(verb: Verb, line: &[&str]) -> Result<Request, String> {
    let argv = std::iter::once("t").chain(line.iter().copied());
    let line = Line::try_parse_from(argv).map_err(|e| e.to_string())?;
    line.flags.request(verb).map_err(|e| e.0)
}

fn ms(n: u64) -> Option<WireDuration> {
    Some(WireDuration::from_millis(n))
}

#[test]
fn builds_each_verb() {
    let cases: Vec<(Verb, &[&str], Request)> = vec![
        (Verb::Status, &[], Request::Status),
        (Verb::Start, &[], Request::Start),
        (Verb::Stop, &[], Request::Stop(StopArgs::default())),
        (
            Verb::Stop,
            &["--mode", "ldm", "--grace", "30s"],
            Request::Stop(StopArgs {
                mode: StopMode::Ldm,
                grace: ms(30_000),
            }),
        ),
        (
            Verb::Restart,
            &["--mode", "kill"],
            Request::Restart(StopArgs {
                mode: StopMode::Kill,
                grace: None,
            }),
        ),
        (
            Verb::Upgrade,
            &["--to", "2.14.6"],
            Request::Upgrade(UpgradeArgs {
                to: "2.14.6".into(),
                drain: true,
                timeout: None,
                grace: None,
                check: false,
                prefetch: false,
            }),
        ),
        (
            Verb::Upgrade,
            &[
                "--to",
                "/bin/x",
                "--drain",
                "false",
                "--health-timeout",
                "1m",
            ],
            Request::Upgrade(UpgradeArgs {
                to: "/bin/x".into(),
                drain: false,
                timeout: ms(60_000),
                grace: None,
                check: false,
                prefetch: false,
            }),
        ),
        (
            Verb::Flap,
            &[
                "--down", "500ms", "--up", "2s", "--cycles", "4", "--mode", "pause",
            ],
            Request::Flap(FlapArgs {
                down: ms(500),
                up: ms(2000),
                cycles: Some(4),
                mode: FlapMode::Pause,
                cancel: false,
            }),
        ),
        (
            Verb::Flap,
            &["--cancel"],
            Request::Flap(FlapArgs {
                cancel: true,
                ..Default::default()
            }),
        ),
        (
            Verb::Scale,
            &["--replicas", "3"],
            Request::Scale(ScaleArgs { replicas: 3 }),
        ),
    ];
    for (verb, line, want) in cases {
        assert_eq!(request(verb, line), Ok(want), "{verb} {line:?}");
    }
}

#[test]
fn refuses_bad_flags_before_sending() {
    let cases: Vec<(Verb, &[&str], &str)> = vec![
        (
            Verb::Status,
            &["--replicas", "2"],
            "--replicas does not apply to status; status takes no flags",
        ),
        (
            Verb::Stop,
            &["--replicas", "2"],
            "--replicas does not apply to stop; stop takes --mode, --grace",
        ),
        (
            Verb::Scale,
            &["--mode", "kill"],
            "--mode does not apply to scale",
        ),
        (
            Verb::Start,
            &["--cancel"],
            "--cancel does not apply to start",
        ),
        (Verb::Stop, &["--mode", "nuke"], "unknown variant `nuke`"),
        (Verb::Stop, &["--mode", "pause"], "unknown variant `pause`"),
        (Verb::Flap, &["--mode", "ldm"], "unknown variant `ldm`"),
        (Verb::Flap, &["--cycles", "0"], "cycles 0 would do nothing"),
        (
            Verb::Scale,
            &["--replicas", "0"],
            "replicas 0 is out of range",
        ),
        (Verb::Scale, &["--replicas", "9999"], "out of range"),
        (Verb::Scale, &[], "scale needs --replicas N"),
        (Verb::Upgrade, &[], "upgrade needs --to"),
        (Verb::Upgrade, &["--to", " "], "upgrade needs `to`"),
        (Verb::Stop, &["--grace=-1s"], "negative"),
        (Verb::Stop, &["--grace", "soon"], "not a number"),
        (Verb::Scale, &["--replicas", "-1"], "unexpected argument"),
        (
            Verb::Upgrade,
            &["--to", "v", "--drain", "maybe"],
            "invalid value",
        ),
    ];
    for (verb, line, want) in cases {
        let err = request(verb, line).unwrap_err();
        assert!(err.contains(want), "{verb} {line:?}: {err}");
    }
}

#[test]
fn timeouts_allow_for_drains_and_grace() {
    let stop = |mode, grace| Request::Stop(StopArgs { mode, grace });
    let upgrade = |timeout| {
        Request::Upgrade(UpgradeArgs {
            to: "v".into(),
            drain: true,
            timeout,
            grace: None,
            check: false,
            prefetch: false,
        })
    };
    let secs = Duration::from_secs;
    let cases = [
        (Request::Status, secs(10)),
        (Request::Start, secs(10)),
        (stop(StopMode::Term, None), secs(10)),
        (stop(StopMode::Term, ms(30_000)), secs(40)),
        (stop(StopMode::Ldm, None), secs(120)),
        (stop(StopMode::Ldm, ms(300_000)), secs(310)),
        (upgrade(None), secs(120)),
        (upgrade(ms(180_000)), secs(240)),
        (Request::Scale(ScaleArgs { replicas: 2 }), secs(10)),
    ];
    for (request, want) in cases {
        assert_eq!(default_timeout(&request), want, "{request:?}");
    }
}

//! Tests of `command.rs`.
use super::*;
use serde_json::json;

fn parse(verb: Verb, args: serde_json::Value) -> Result<Request, ReplyError> {
    Request::parse(verb, &args)
}

#[test]
fn verbs_round_trip_through_their_names() {
    for verb in Verb::ALL {
        assert_eq!(verb.as_str().parse::<Verb>().unwrap(), verb);
    }
    let err = "explode".parse::<Verb>().unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownVerb);
}

#[test]
fn decodes_a_hand_written_stop() {
    let body = br#"{"v":1,"id":"c-1","args":{"mode":"ldm","grace":"30s"}}"#;
    let command = Command::decode(body).unwrap();
    assert_eq!(command.id, "c-1");
    let request = Request::parse(Verb::Stop, &command.args).unwrap();
    assert_eq!(
        request,
        Request::Stop(StopArgs {
            mode: StopMode::Ldm,
            grace: Some(WireDuration::from_millis(30_000)),
        })
    );
}

#[test]
fn commands_round_trip() {
    let requests = [
        Request::Status,
        Request::Start,
        Request::Stop(StopArgs::default()),
        Request::Restart(StopArgs {
            mode: StopMode::Kill,
            grace: None,
        }),
        Request::Upgrade(UpgradeArgs {
            to: "2.14.6".into(),
            drain: true,
            timeout: Some(WireDuration::from_millis(5000)),
            grace: None,
            check: false,
            prefetch: false,
        }),
        Request::Upgrade(UpgradeArgs {
            to: "obj:nats-rc1".into(),
            drain: true,
            timeout: None,
            grace: None,
            check: false,
            prefetch: true,
        }),
        Request::Flap(FlapArgs {
            down: Some(WireDuration::from_millis(100)),
            up: Some(WireDuration::from_millis(200)),
            cycles: Some(2),
            mode: FlapMode::Pause,
            cancel: false,
        }),
        Request::Scale(ScaleArgs { replicas: 3 }),
    ];
    for request in requests {
        let command = Command::new("x", &request);
        let decoded = Command::decode(&command.encode()).unwrap();
        assert_eq!(
            Request::parse(request.verb(), &decoded.args).unwrap(),
            request
        );
    }
}

#[test]
fn bad_input_gets_typed_errors() {
    let cases: Vec<(Verb, serde_json::Value, ErrorKind)> = vec![
        (
            Verb::Stop,
            json!({"mode": "nuke"}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Stop,
            json!({"grace": "-1s"}),
            ErrorKind::InvalidArgument,
        ),
        (Verb::Stop, json!({"grace": -5}), ErrorKind::InvalidArgument),
        (
            Verb::Stop,
            json!({"force": true}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Scale,
            json!({"replicas": 0}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Scale,
            json!({"replicas": 5000}),
            ErrorKind::InvalidArgument,
        ),
        (Verb::Scale, json!({}), ErrorKind::InvalidArgument),
        (Verb::Flap, json!({"cycles": 0}), ErrorKind::InvalidArgument),
        (
            Verb::Flap,
            json!({"down": "-2s"}),
            ErrorKind::InvalidArgument,
        ),
        (Verb::Upgrade, json!({}), ErrorKind::InvalidArgument),
        (
            Verb::Upgrade,
            json!({"to": " "}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Upgrade,
            json!({"to": "obj:../../etc"}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Upgrade,
            json!({"to": "obj:"}),
            ErrorKind::InvalidArgument,
        ),
        (
            Verb::Upgrade,
            json!({"to": "obj:x", "check": true, "prefetch": true}),
            ErrorKind::InvalidArgument,
        ),
        (Verb::Start, json!({"now": 1}), ErrorKind::InvalidArgument),
        (Verb::Status, json!([1, 2]), ErrorKind::InvalidArgument),
    ];
    for (verb, args, kind) in cases {
        let err = parse(verb, args.clone()).unwrap_err();
        assert_eq!(err.kind, kind, "{verb} {args}: {}", err.message);
    }
}

#[test]
fn malformed_bodies_are_bad_requests() {
    for body in [
        &b"not json"[..],
        b"{}",
        b"{\"id\":\"\"}",
        b"[1]",
        b"\xff\xfe",
        b"{\"v\":9,\"id\":\"a\"}",
    ] {
        let err = Command::decode(body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
    }
}

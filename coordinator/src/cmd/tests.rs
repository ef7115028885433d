use super::*;
use geolb_proto::{ChildState, ErrorKind, ReplicaStatus, ReplyError, Role};

fn state(pids: &[u32]) -> AgentStatus {
    AgentStatus {
        id: "lon-1".into(),
        region: "lon".into(),
        role: Role::Server,
        host: "h".into(),
        agent_version: "0.1.0".into(),
        state: ChildState::Running,
        version: Some("2.12.8".into()),
        program: "nats-server".into(),
        restarts: 0,
        desired_replicas: 2,
        replicas: pids
            .iter()
            .enumerate()
            .map(|(i, pid)| ReplicaStatus {
                index: i as u32,
                state: ChildState::Running,
                pid: Some(*pid),
                restarts: 0,
                started_at_ms: None,
                last_exit: None,
            })
            .collect(),
        flap: None,
        uptime_ms: 5,
    }
}

fn args(line: &[&str]) -> Result<CmdArgs, String> {
    #[derive(clap::Parser)]
    struct Line {
        #[command(flatten)]
        cmd: CmdArgs,
    }
    let argv = std::iter::once("geolb").chain(line.iter().copied());
    <Line as clap::Parser>::try_parse_from(argv)
        .map(|l| l.cmd)
        .map_err(|e| e.to_string())
}

#[test]
fn plans_validate_verb_selector_flags_and_timeout() {
    let plan = args(&["stop", "region=lon", "--mode", "ldm"])
        .unwrap()
        .plan()
        .unwrap();
    assert_eq!(plan.timeout, DRAIN_TIMEOUT);
    assert_eq!(plan.selector, Selector::Region("lon".into()));
    let plan = args(&["status", "lon-1", "--timeout", "250ms"])
        .unwrap()
        .plan()
        .unwrap();
    assert_eq!(plan.timeout, Duration::from_millis(250));
    assert_eq!(plan.request, Request::Status);

    let err = args(&["explode", "all"]).unwrap_err();
    assert!(
        err.contains("unknown verb \"explode\"; use one of status, stop"),
        "{err}"
    );
    let err = args(&["status", "foo=bar"]).unwrap_err();
    assert!(err.contains("unknown key \"foo\""), "{err}");
    let err = args(&["status", "all", "--timeout", "0s"])
        .unwrap()
        .plan()
        .unwrap_err();
    assert!(err.0.contains("--timeout must be more than 0"), "{}", err.0);
    let err = args(&["status", "all", "--mode", "kill"])
        .unwrap()
        .plan()
        .unwrap_err();
    assert!(
        err.0.contains("--mode does not apply to status"),
        "{}",
        err.0
    );
}

#[test]
fn rows_show_state_or_error() {
    let ok = Reply::new("c-1", Ok(()), state(&[41, 42]));
    let refused = Reply::new(
        "c-2",
        Err(ReplyError::new(ErrorKind::Conflict, "already running")),
        state(&[7]),
    );
    let targets = vec![
        Target {
            id: "lon-1".into(),
            region: None,
        },
        Target {
            id: "lon-2".into(),
            region: Some("lon".into()),
        },
        Target {
            id: "ams-1".into(),
            region: Some("ams".into()),
        },
        Target {
            id: "ghost".into(),
            region: None,
        },
    ];
    let outcomes = vec![
        ("lon-1".to_string(), Ok(ok.clone())),
        ("lon-2".to_string(), Ok(refused.clone())),
        (
            "ams-1".to_string(),
            Err(RequestFailure::TimedOut(Duration::from_secs(10))),
        ),
        (
            "ghost".to_string(),
            Err(RequestFailure::NoAgent("ghost".into())),
        ),
    ];
    let text = render(&targets, &outcomes);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "TARGET  REGION  RESULT    DETAIL");
    assert_eq!(
        lines[1],
        "lon-1   lon     ok        state=running replicas=2/2 pids=41,42 version=2.12.8"
    );
    assert_eq!(
        lines[2],
        "lon-2   lon     conflict  already running (state=running replicas=1/2 pids=7 version=2.12.8)"
    );
    assert_eq!(lines[3], "ams-1   ams     timeout   no reply within 10s");
    assert_eq!(
        lines[4],
        "ghost   -       no_agent  no agent with id ghost answers; check `geolb fleet ls`"
    );

    let ok = Ok(ok);
    let row = serde_json::to_value(json_row("lon-1", &ok)).unwrap();
    assert_eq!(row["ok"], true);
    assert_eq!(row["reply"]["state"]["id"], "lon-1");
    let refused = Ok(refused);
    let row = serde_json::to_value(json_row("lon-2", &refused)).unwrap();
    assert_eq!(
        (row["ok"].clone(), row["error"]["kind"].clone()),
        (json!(false), json!("conflict"))
    );
    let ghost = Err(RequestFailure::NoAgent("ghost".into()));
    let row = serde_json::to_value(json_row("ghost", &ghost)).unwrap();
    let text = serde_json::to_string(&json_row("ghost", &ghost)).unwrap();
    assert!(
        text.starts_with(r#"{"target":"ghost","ok":false,"error":"#),
        "{text}"
    );
    assert_eq!(row["error"]["kind"], "no_agent");
    assert!(row.get("reply").is_none());
}

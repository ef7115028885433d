//! Property-based fuzzing of every decoder of the wire protocol: arbitrary
//! bytes, arbitrary JSON, and valid samples with random mutations must never
//! panic, and whatever decodes must hold the decoder's promises.
//!
//! `cargo test -p geolb-proto --features signing --test fuzz` runs a quick
//! pass (256 cases a property); `make fuzz` runs it in release with
//! `PROPTEST_CASES=200000`. A failing input is shrunk and saved by proptest
//! under `proto/tests/fuzz.proptest-regressions` (commit it: it is replayed
//! first on every run), and should also be copied into [`regressions`]
//! as a named case.
//!
//! # Adding a decoder
//! Add one line to [`decoders`] (a name and a `fn(&[u8])` that decodes and
//! checks) and, if it has one, a valid sample to [`samples`]; every property
//! below then covers it. The lab config decoder (in the coordinator) has its
//! own harness: `coordinator/tests/fuzz_lab_config.rs`.

use geolb_proto::signing::{self, Envelope, Signer, Trust, Window};
use geolb_proto::{
    client::ClientRecord, duration, Command, Event, Heartbeat, Metrics, Reply, Request, Verb,
};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

/// A signer and the trust that knows it, made once.
fn keys() -> &'static (Signer, Trust) {
    static KEYS: OnceLock<(Signer, Trust)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signer = Signer::generate();
        let trust = Trust::new([signer.public_key()]).unwrap();
        (signer, trust)
    })
}

fn command(bytes: &[u8]) {
    if let Ok(c) = Command::decode(bytes) {
        assert!(!c.id.is_empty() && c.id.len() <= 128);
        assert_eq!(c.v, 1);
        for verb in Verb::ALL {
            if let Ok(request) = Request::parse(verb, &c.args) {
                assert_eq!(request.verb(), verb);
                // What parses must survive its own round trip.
                assert_eq!(Request::parse(verb, &request.args()).unwrap(), request);
            }
        }
    }
}

fn reply(bytes: &[u8]) {
    if let Ok(r) = Reply::decode(bytes) {
        assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
    }
}

fn heartbeat(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Heartbeat>(bytes);
}

fn event(bytes: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<Event>(bytes) {
        let _ = e.event.name();
        let _ = serde_json::to_vec(&e).unwrap();
    }
}

fn metrics(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Metrics>(bytes);
}

fn client_record(bytes: &[u8]) {
    if let Ok(r) = ClientRecord::decode(bytes) {
        assert!(ClientRecord::decode(&r.encode()).is_ok());
    }
}

fn envelope(bytes: &[u8]) {
    let (_, trust) = keys();
    if let Ok(Some(e)) = Envelope::detect(bytes) {
        let _ = signing::open_unverified(&e);
        if let Ok(opened) = signing::open(&e, trust) {
            let now = geolb_proto::now_ms();
            let _ = Window::default().check(&opened.command, "a-1", Verb::Stop, now);
        }
    }
}

fn wire_duration(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = duration::parse(text);
    }
}

/// One decoder under test: it decodes the bytes and checks what it got.
type Decoder = fn(&[u8]);

/// Every decoder of the wire protocol, by name.
fn decoders() -> Vec<(&'static str, Decoder)> {
    vec![
        ("command", command),
        ("reply", reply),
        ("heartbeat", heartbeat),
        ("event", event),
        ("metrics", metrics),
        ("client_record", client_record),
        ("envelope", envelope),
        ("duration", wire_duration),
    ]
}

/// Valid samples, the seeds of the mutation properties.
fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(make_samples)
}

fn make_samples() -> Vec<Vec<u8>> {
    let (signer, _) = keys();
    let stop = Command::new("c-1", &Request::Stop(Default::default()));
    let mut out: Vec<Vec<u8>> = [
        r#"{"v":1,"id":"c-7f3a","args":{"mode":"ldm","grace":"30s"},"issued_at_ms":1763700000000}"#,
        r#"{"v":1,"id":"u","args":{"to":"2.14.6","drain":true,"timeout":5000}}"#,
        r#"{"v":1,"id":"f","args":{"down":"1s","up":200,"cycles":3,"mode":"pause"}}"#,
        r#"{"v":1,"id":"c","ok":false,"error":{"kind":"not_installed","message":"m"},"state":{"id":"lon-1","region":"lon","role":"server","host":"h","agent_version":"0.1.0","state":"running","version":"2.12.8","program":"p","restarts":0,"desired_replicas":1,"replicas":[{"index":0,"state":"running","pid":4242,"restarts":0,"started_at_ms":1763700000000}],"uptime_ms":5123}}"#,
        r#"{"v":1,"seq":12,"at_ms":1763700000000,"agent":"lon-1","region":"lon","role":"server","event":{"kind":"exited","replica":0,"signal":9}}"#,
        r#"{"v":1,"at_ms":1763700000000,"agent":"lon-1","region":"lon","role":"server","host":{"cpu_pct":12.5,"cpus":2,"mem_used_bytes":1200000000,"mem_total_bytes":25000000000,"load1":0.4},"agent_process":{"pid":4241,"cpu_pct":0.0,"rss_bytes":5000000},"children":[{"replica":0,"pid":4242,"cpu_pct":0.3,"rss_bytes":14000000}],"server":{"healthy":true,"healthz_status":200,"version":"2.12.8","server_name":"lon-1","cluster":"lon","connections":3,"in_msgs":10,"out_msgs":12,"routes":2,"gateway_name":"lon","gateways":[{"name":"ams","outbound":true,"inbound":3}]}}"#,
        r#"{"type":"status","v":1,"at_ms":1763700000000,"client":"lon-c1-0","region":"lon","strategy":"rtt","server":{"url":"nats://127.0.0.1:4222","region":"lon","name":"lon-1","cluster":"lon"},"candidates":[{"url":"nats://127.0.0.1:4222","region":"lon","rtt_ms":0.61,"samples":10,"healthy":true}],"traffic":{"sent":120,"received":480,"lost":0,"duplicated":0,"out_of_order":0,"latency_ms":{"p50":4.1,"p90":9.0,"p99":11.2,"max":14.0}},"switches":0}"#,
        r#"{"type":"moved","v":1,"at_ms":1763700004000,"client":"lon-c1-0","region":"lon","reason":"unresponsive","from":{"url":"nats://127.0.0.1:4222","region":"lon"},"to":{"url":"nats://127.0.0.1:4223","region":"lon"},"gap_ms":820}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    out.push(signer.sign(stop, "a-1", Verb::Stop, signing::DEFAULT_VALIDITY));
    out
}

/// JSON values of any shape, nested up to a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("ldm"),
            Just("kill"),
            Just("2s"),
            Just("-1s"),
            Just("2.14.6"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the decoders know, and a few they do not.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "v",
            "id",
            "args",
            "issued_at_ms",
            "agent",
            "verb",
            "expires_at_ms",
            "mode",
            "grace",
            "to",
            "drain",
            "timeout",
            "down",
            "up",
            "cycles",
            "cancel",
            "replicas",
            "type",
            "key",
            "sig",
            "signed",
            "ok",
            "error",
            "state",
            "kind",
            "message",
            "event",
            "seq",
            "at_ms",
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
    ]
}

/// Mutates `bytes`: flips, inserts, deletes and truncates.
fn mutate(mut bytes: Vec<u8>, edits: Vec<(u8, usize, u8)>) -> Vec<u8> {
    for (op, at, byte) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % bytes.len()
        };
        match op % 4 {
            0 if !bytes.is_empty() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {}
        }
    }
    bytes
}

fn all(bytes: &[u8]) {
    for (_, decode) in decoders() {
        decode(bytes);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all(&bytes);
    }

    #[test]
    fn arbitrary_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        all(&bytes);
        for verb in Verb::ALL {
            let _ = Request::parse(verb, &value);
        }
    }

    #[test]
    fn mutated_samples(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..8),
    ) {
        let samples = samples();
        let sample = samples[which.index(samples.len())].clone();
        all(&mutate(sample, edits));
    }

    #[test]
    fn command_shaped_objects(
        id in prop_oneof![Just(String::new()), ".{1,20}", "x{129}"],
        verb in prop::sample::select(Verb::ALL.to_vec()),
        args in json(),
        v in prop_oneof![Just(1u64), any::<u64>()],
    ) {
        let body = serde_json::json!({"v": v, "id": id, "args": args});
        let bytes = serde_json::to_vec(&body).unwrap();
        command(&bytes);
        if let Ok(c) = Command::decode(&bytes) {
            let _ = Request::parse(verb, &c.args);
        }
    }

    #[test]
    fn forged_envelopes_never_verify(
        key in "[A-Z2-7]{56}",
        sig in "[A-Za-z0-9_-]{0,100}",
        signed in "[A-Za-z0-9_-]{0,200}",
    ) {
        let (_, trust) = keys();
        let e = Envelope { v: 1, key, sig, signed };
        prop_assert!(signing::open(&e, trust).is_err());
        envelope(&e.encode());
    }

    #[test]
    fn signed_commands_survive_only_intact(
        id in "[a-z0-9-]{1,20}",
        flip in any::<prop::sample::Index>(),
    ) {
        let (signer, trust) = keys();
        let body = signer.sign(Command::new(id, &Request::Start), "a-1", Verb::Start, signing::DEFAULT_VALIDITY);
        let e = Envelope::detect(&body).unwrap().unwrap();
        prop_assert!(signing::open(&e, trust).is_ok());
        let mut inner = e.signed_bytes().unwrap();
        let at = flip.index(inner.len());
        inner[at] ^= 0x01;
        let tampered = Envelope { signed: data_encoding::BASE64URL_NOPAD.encode(&inner), ..e };
        prop_assert!(signing::open(&tampered, trust).is_err());
    }
}

/// Inputs that once broke (or could break) a decoder, kept as named cases.
#[test]
fn regressions() {
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000);
    let deep_args = format!(r#"{{"v":1,"id":"x","args":{}}}"#, deep_array);
    let cases: Vec<Vec<u8>> = vec![
        deep_array.into_bytes(),
        deep_object.into_bytes(),
        deep_args.into_bytes(),
        b"\xff\xfe\xfd".to_vec(),
        b"{\"id\":\"\xc3\x28\"}".to_vec(),
        vec![b'a'; 1 << 20],
        br#"{"signed":1}"#.to_vec(),
        br#"{"v":1,"key":"","sig":"","signed":""}"#.to_vec(),
        br#"{"v":1,"id":"x","args":{"grace":"99999999999999999999999h"}}"#.to_vec(),
        br#"{"v":1,"id":"x","args":{"grace":1e308}}"#.to_vec(),
        br#"{"v":1,"id":"x","args":{"cycles":4294967296}}"#.to_vec(),
        // Found by `make fuzz`: positional args, and a duration that did not survive its round trip.
        br#"{"v":1,"id":"x","args":[15921499151]}"#.to_vec(),
        br#"{"v":1,"id":"x","args":{"down":15921499151}}"#.to_vec(),
        br#"{"v":1,"id":"x","issued_at_ms":18446744073709551615,"expires_at_ms":18446744073709551615,"agent":"a-1","verb":"stop"}"#.to_vec(),
    ];
    for case in &cases {
        all(case);
    }
    let (signer, trust) = keys();
    let mut far = Command::new("x", &Request::Status);
    far.issued_at_ms = Some(u64::MAX);
    let e = signer.seal(&far.bound(
        "a-1",
        Verb::Stop,
        std::time::Duration::from_secs(u64::MAX / 4),
    ));
    let opened = signing::open(&e, trust).unwrap();
    assert!(Window::default()
        .check(&opened.command, "a-1", Verb::Stop, 0)
        .is_err());
}

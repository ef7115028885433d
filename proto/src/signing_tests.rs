use super::*;
use crate::command::{Request, StopArgs};

const NOW: u64 = 1_763_700_000_000;
/// A key made for this test only; it signs nothing anywhere else.
const TEST_SEED: &str = "SAAN4HQZ2IZULJKCKJIKFQDAVXLJADTYDEABHA43D5CTNYCLRPBEO374EM";
const TEST_PUBLIC: &str = "AA36LTSBTXKPQ4CZV5NKVHEY5AKOP4VQQATVHFB3YDYEOEXW4WUS3XYK";
/// The envelope `TEST_SEED` makes for `stop` to `lon-1`, written out so the format cannot drift.
const SAMPLE: &str = r#"{"v":1,"key":"AA36LTSBTXKPQ4CZV5NKVHEY5AKOP4VQQATVHFB3YDYEOEXW4WUS3XYK","sig":"-q7toNHhzI7AyFMgkfZxXcrTt-PBelcj4kT2FI9ZUj42w8En3lpNaL_LiUmDO52N8xbQiBmpondKHZVRPMUqBg","signed":"eyJ2IjoxLCJpZCI6ImMtMSIsImFyZ3MiOnsibW9kZSI6InRlcm0ifSwiaXNzdWVkX2F0X21zIjoxNzYzNzAwMDAwMDAwLCJhZ2VudCI6Imxvbi0xIiwidmVyYiI6InN0b3AiLCJleHBpcmVzX2F0X21zIjoxNzYzNzAwMDYwMDAwfQ"}"#;

fn stop(id: &str) -> Command {
    let mut c = Command::new(id, &Request::Stop(StopArgs::default()));
    c.issued_at_ms = Some(NOW);
    c
}

fn trust(keys: &[&str]) -> Trust {
    Trust::new(keys.iter().copied()).unwrap()
}

fn kind(result: Result<impl std::fmt::Debug, ReplyError>) -> ErrorKind {
    result.unwrap_err().kind
}

#[test]
fn the_hand_written_sample_decodes_and_verifies() {
    let envelope = Envelope::detect(SAMPLE.as_bytes()).unwrap().unwrap();
    let opened = open(&envelope, &trust(&[TEST_PUBLIC])).unwrap();
    assert_eq!(opened.key, TEST_PUBLIC);
    let signed = String::from_utf8(envelope.signed_bytes().unwrap()).unwrap();
    assert_eq!(
        signed,
        r#"{"v":1,"id":"c-1","args":{"mode":"term"},"issued_at_ms":1763700000000,"agent":"lon-1","verb":"stop","expires_at_ms":1763700060000}"#
    );
    let window = Window::default();
    assert_eq!(
        window.check(&opened.command, "lon-1", Verb::Stop, NOW + 1),
        Ok(NOW + 60_000 + 30_000)
    );
    // ed25519 is deterministic: the same key and command give the same bytes.
    let signer = Signer::from_seed(TEST_SEED, "test").unwrap();
    assert_eq!(signer.public_key(), TEST_PUBLIC);
    let again = signer.sign(stop("c-1"), "lon-1", Verb::Stop, DEFAULT_VALIDITY);
    assert_eq!(String::from_utf8(again).unwrap(), SAMPLE);
}

#[test]
fn signed_commands_round_trip() {
    let signer = Signer::generate();
    let body = signer.sign(stop("x"), "a-1", Verb::Stop, Duration::from_secs(10));
    let envelope = Envelope::detect(&body).unwrap().expect("an envelope");
    let opened = open(&envelope, &trust(&[signer.public_key()])).unwrap();
    assert_eq!(opened.command.id, "x");
    assert_eq!(opened.command.expires_at_ms, Some(NOW + 10_000));
    assert_eq!(open_unverified(&envelope).unwrap(), opened.command);
    let plain = stop("y").encode();
    assert_eq!(Envelope::detect(&plain).unwrap(), None);
    assert_eq!(Envelope::detect(b"not json").unwrap(), None);
}

#[test]
fn forged_envelopes_are_unauthorized() {
    let signer = Signer::generate();
    let other = Signer::generate();
    let trusted = trust(&[signer.public_key()]);
    let good = signer.seal(&stop("x").bound("a-1", Verb::Stop, DEFAULT_VALIDITY));

    let by_other = other.seal(&stop("x").bound("a-1", Verb::Stop, DEFAULT_VALIDITY));
    assert_eq!(kind(open(&by_other, &trusted)), ErrorKind::Unauthorized);

    let mut claimed = by_other.clone();
    claimed.key = signer.public_key().to_string();
    assert_eq!(kind(open(&claimed, &trusted)), ErrorKind::Unauthorized);

    let mut tampered = good.clone();
    let mut bytes = tampered.signed_bytes().unwrap();
    let at = bytes.iter().position(|b| *b == b'x').unwrap();
    bytes[at] = b'z';
    tampered.signed = BASE64URL_NOPAD.encode(&bytes);
    assert_eq!(kind(open(&tampered, &trusted)), ErrorKind::Unauthorized);

    let mut garbled = good.clone();
    garbled.sig = "!!".into();
    assert_eq!(kind(open(&garbled, &trusted)), ErrorKind::Unauthorized);
    let mut short_sig = good.clone();
    short_sig.sig = BASE64URL_NOPAD.encode(b"short");
    assert_eq!(kind(open(&short_sig, &trusted)), ErrorKind::Unauthorized);

    let mut not_b64 = good.clone();
    not_b64.signed = "%%%".into();
    assert_eq!(kind(open(&not_b64, &trusted)), ErrorKind::BadRequest);
    assert!(open(&good, &trusted).is_ok());
}

#[test]
fn the_window_binds_target_and_time() {
    let w = Window::default();
    let bound = |agent: &str, verb| stop("x").bound(agent, verb, DEFAULT_VALIDITY);
    let ok = bound("a-1", Verb::Stop);
    assert!(w.check(&ok, "a-1", Verb::Stop, NOW).is_ok());
    let cases: Vec<(Command, u64)> = vec![
        (bound("a-2", Verb::Stop), NOW),
        (bound("a-1", Verb::Restart), NOW),
        (stop("x"), NOW),
        (ok.clone(), NOW + 60_000 + 30_001),
        (ok.clone(), NOW - 30_001),
        (
            stop("x").bound("a-1", Verb::Stop, Duration::from_secs(61)),
            NOW,
        ),
        (
            Command {
                expires_at_ms: Some(NOW - 1),
                ..ok.clone()
            },
            NOW,
        ),
    ];
    for (command, now) in cases {
        let err = w.check(&command, "a-1", Verb::Stop, now).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized, "{command:?} at {now}");
        assert!(!err.message.is_empty());
    }
    // Within the skew either way is fine.
    assert!(w.check(&ok, "a-1", Verb::Stop, NOW - 29_000).is_ok());
    assert!(w.check(&ok, "a-1", Verb::Stop, NOW + 89_000).is_ok());
}

#[test]
fn bad_keys_are_refused_without_echoing_seeds() {
    assert!(Trust::new(["not-a-key"]).is_err());
    assert!(Trust::new([TEST_SEED]).is_err());
    assert!(Trust::new(Vec::<String>::new()).unwrap().is_empty());
    assert_eq!(trust(&[TEST_PUBLIC, TEST_PUBLIC]).keys().count(), 1);
    let broken = format!("{}X", &TEST_SEED[..57]);
    let err = Signer::from_seed(&broken, "key.nk")
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&broken[..20]), "{err}");
    assert!(err.contains("key.nk"), "{err}");
    let creds =
        format!("-----BEGIN USER NKEY SEED-----\n{TEST_SEED}\n------END USER NKEY SEED------\n");
    assert_eq!(
        Signer::from_seed(&creds, "creds").unwrap().public_key(),
        TEST_PUBLIC
    );
    let debug = format!("{:?}", Signer::from_seed(TEST_SEED, "t").unwrap());
    assert!(!debug.contains(TEST_SEED) && debug.contains(TEST_PUBLIC));
}

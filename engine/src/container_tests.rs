//! Tests of `container.rs`.
use super::*;

#[test]
fn parses_docker_times() {
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_ms("2024-05-01T12:34:56.123456789Z"),
        Some(1_714_566_896_123)
    );
    assert_eq!(rfc3339_ms("2000-02-29T00:00:01.5Z"), Some(951_782_401_500));
    assert_eq!(rfc3339_ms("0001-01-01T00:00:00Z"), None);
    assert_eq!(rfc3339_ms("yesterday"), None);
}

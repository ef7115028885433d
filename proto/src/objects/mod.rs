//! Binaries and test data delivered over the back channel: two JetStream
//! Object Store buckets on the control plane, written by the coordinator
//! (`geolb binary put`, `geolb data put`) and read by agents (`upgrade --to
//! obj:NAME`, `geolb-agent client --payload obj:NAME`).
//!
//! An object's integrity is the Object Store's own `digest` (`SHA-256=`
//! and the URL-safe base64 of the sha256 of its bytes), checked by every
//! reader on arrival. A binary also carries, in the object's metadata, the
//! version it reported (`--version`) and the architecture it was built for,
//! so an agent can refuse one before downloading it.

/// Reading one object with direct gets (feature `connect`).
#[cfg(feature = "connect")]
pub mod read;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bucket of executables (`geolb binary ...`; stream `OBJ_GEOLB_BINARIES`).
pub const BINARIES_BUCKET: &str = "GEOLB_BINARIES";
/// The bucket of payload files (`geolb data ...`; stream `OBJ_GEOLB_DATA`).
pub const DATA_BUCKET: &str = "GEOLB_DATA";
/// What an `upgrade --to` or a `--payload` starts with to name an object.
pub const REFERENCE_PREFIX: &str = "obj:";
/// Metadata key: the version the binary reports (`nats-server --version`).
pub const META_VERSION: &str = "geolb-version";
/// Metadata key: the architecture the binary is built for (Rust's names: `x86_64`, `aarch64`).
pub const META_ARCH: &str = "geolb-arch";
/// Longest object name.
pub const MAX_NAME: usize = 64;

/// What an object's metadata message says (ADR-20's `ObjectInfo`, the
/// fields geolb reads): the last message on `$O.<bucket>.M.<base64url(name)>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredInfo {
    /// The object's name.
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// The id of this version of the object: its chunks are on `$O.<bucket>.C.<nuid>`.
    pub nuid: String,
    /// Bytes.
    pub size: u64,
    /// Chunks it was stored in.
    pub chunks: u64,
    /// `SHA-256=<base64url>` of the bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A delete marker: the object was removed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Metadata given when it was put ([`META_VERSION`], [`META_ARCH`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl StoredInfo {
    /// The sha256 of the bytes as hex, when the digest is a valid one.
    pub fn sha256(&self) -> Option<String> {
        self.digest.as_deref().and_then(digest_hex)
    }

    /// The version it reported when it was put, if any.
    pub fn version(&self) -> Option<&str> {
        self.metadata.get(META_VERSION).map(String::as_str)
    }

    /// The architecture it was put for, if said.
    pub fn arch(&self) -> Option<&str> {
        self.metadata.get(META_ARCH).map(String::as_str)
    }
}

/// The subject of an object's metadata: `$O.<bucket>.M.<base64url(name)>`.
pub fn meta_subject(bucket: &str, name: &str) -> String {
    // Padded, as the Object Store writes it (the unpadded encoder is the one
    // the agent links anyway, for signatures).
    let mut encoded = data_encoding::BASE64URL_NOPAD.encode(name.as_bytes());
    encoded.push_str(["", "==", "="][name.len() % 3]);
    format!("$O.{bucket}.M.{encoded}")
}

/// The subject of an object's chunks: `$O.<bucket>.C.<nuid>`.
pub fn chunk_subject(bucket: &str, nuid: &str) -> String {
    format!("$O.{bucket}.C.{nuid}")
}

/// The stream behind a bucket: `OBJ_<bucket>`.
pub fn stream(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

/// Every subject of a bucket's stream: chunks `$O.<bucket>.C.>` and metadata `$O.<bucket>.M.>`.
pub fn subjects(bucket: &str) -> String {
    format!("$O.{bucket}.>")
}

/// The object name in `obj:NAME`, or `None` when `to` names something else.
pub fn reference(to: &str) -> Option<&str> {
    to.trim().strip_prefix(REFERENCE_PREFIX)
}

/// The inbox prefix of an agent's control-plane connection, so that the
/// least-privilege layout can let it read only its own replies.
pub fn inbox_prefix(agent_id: &str) -> String {
    format!("_INBOX.geolb-agent.{agent_id}")
}

/// An object name that geolb does not store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "object name {0:?} is not valid: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot"
)]
pub struct InvalidObjectName(pub String);

/// Checks a name for `binary put --name` and `obj:NAME`: it becomes a
/// folder name on every agent, so nothing that could climb out of it.
pub fn validate_name(name: &str) -> Result<(), InvalidObjectName> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match ok {
        true => Ok(()),
        false => Err(InvalidObjectName(name.to_string())),
    }
}

/// The sha256 in an Object Store digest (`SHA-256=<base64url>`), as lower-case hex.
pub fn digest_hex(digest: &str) -> Option<String> {
    let encoded = digest.strip_prefix("SHA-256=")?.trim_end_matches('=');
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(encoded.as_bytes())
        .ok()?;
    (bytes.len() == 32).then(|| hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_names() {
        assert_eq!(reference("obj:nats-rc1"), Some("nats-rc1"));
        assert_eq!(reference(" obj:x "), Some("x"));
        assert_eq!(reference("2.14.6"), None);
        assert_eq!(reference("/bin/obj:x"), None);
        for good in ["nats-server", "nats-2.14.6", "a_b.C-9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "x:y", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(stream(BINARIES_BUCKET), "OBJ_GEOLB_BINARIES");
        assert_eq!(subjects(DATA_BUCKET), "$O.GEOLB_DATA.>");
        assert_eq!(inbox_prefix("lon-1"), "_INBOX.geolb-agent.lon-1");
    }

    #[test]
    fn decodes_object_info_as_the_object_store_writes_it() {
        let written = r#"{"name":"nats-rc1","description":null,"metadata":{"geolb-version":"2.14.6","geolb-arch":"x86_64"},
            "headers":null,"options":{"link":null,"max_chunk_size":131072},"bucket":"GEOLB_BINARIES",
            "nuid":"Q2nNnTPlHhfw9UqiIzFBbR","size":16580792,"chunks":127,"mtime":"2026-12-01T10:00:00Z",
            "digest":"SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="}"#;
        let info: StoredInfo = serde_json::from_str(written).unwrap();
        assert_eq!(
            (info.size, info.chunks, info.deleted),
            (16_580_792, 127, false)
        );
        assert_eq!(info.version(), Some("2.14.6"));
        assert_eq!(info.arch(), Some("x86_64"));
        assert!(info.sha256().unwrap().starts_with("e3b0c442"));
        let deleted: StoredInfo = serde_json::from_str(
            r#"{"name":"x","bucket":"B","nuid":"N","size":0,"chunks":0,"deleted":true}"#,
        )
        .unwrap();
        assert!(deleted.deleted && deleted.digest.is_none());
        assert_eq!(meta_subject("B", "nats-rc1"), "$O.B.M.bmF0cy1yYzE=");
        for name in ["a", "ab", "abc", "nats-2.14.6"] {
            let padded = data_encoding::BASE64URL.encode(name.as_bytes());
            assert_eq!(meta_subject("B", name), format!("$O.B.M.{padded}"));
        }
        assert_eq!(chunk_subject("B", "N"), "$O.B.C.N");
    }

    #[test]
    fn digests_decode_to_hex() {
        // sha256("") as the Object Store writes it.
        let empty = "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(
            digest_hex(empty).as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            digest_hex("SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU").as_deref(),
            digest_hex(empty).as_deref()
        );
        assert_eq!(digest_hex("MD5=abc"), None);
        assert_eq!(digest_hex("SHA-256=****"), None);
        assert_eq!(digest_hex("SHA-256=AAAA"), None, "not 32 bytes");
    }
}

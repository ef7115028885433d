//! What a traffic message carries after its header line: `.` filler (the
//! default), or the bytes of a real file (`--payload FILE`, or `--payload
//! obj:NAME` for one stored with `geolb data put`, read from the control
//! plane once at start). Message `seq` carries the file from offset
//! `(seq - 1) * n` on, wrapping around, where `n` is what fits after the
//! header: a file longer than a message is cut into successive pieces, a
//! shorter one repeated, so a video file streams through as a video would.
//!
//! `obj:NAME` connects with the control-plane flags (`--control`,
//! `--nkey-file`, ... as for `run`), as the identity of agent `--id` (its
//! replies come on that agent's inbox, as the least-privilege layout
//! allows), and gives up with an error when the object is missing or does
//! not match its digest.

use super::message::{self, Header};
use anyhow::Context as _;
use bytes::Bytes;
use geolb_proto::connect::ControlArgs;
use geolb_proto::objects::read::{Bucket, FetchError};
use geolb_proto::objects::{self, DATA_BUCKET};
use std::time::Duration;

/// Largest payload file taken (it is held in memory once).
pub const MAX_FILE: u64 = 64 * 1024 * 1024;
/// How long connecting to the control plane may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The body of every message.
#[derive(Debug, Clone, Default)]
pub enum Payload {
    /// `.` up to the size.
    #[default]
    Filler,
    /// A file's bytes, cut or repeated to the size.
    File(Bytes),
}

impl Payload {
    /// Encodes message `header.seq`: the header line, then the body up to `size` bytes in all.
    pub fn encode(&self, header: &Header, size: usize) -> Vec<u8> {
        let mut out = message::encode(header, 0);
        let room = size.saturating_sub(out.len());
        match self {
            Payload::File(bytes) if !bytes.is_empty() && room > 0 => {
                let start = (header.seq.saturating_sub(1) as u128 * room as u128
                    % bytes.len() as u128) as usize;
                out.reserve(room);
                let mut at = start;
                while out.len() < size {
                    let take = (bytes.len() - at).min(size - out.len());
                    out.extend_from_slice(&bytes[at..at + take]);
                    at = (at + take) % bytes.len();
                }
            }
            _ => out.resize(out.len() + room, b'.'),
        }
        out
    }

    /// Loads `--payload`: none, a file path, or `obj:NAME` from the control
    /// plane as agent `agent_id`.
    pub async fn load(
        spec: Option<&str>,
        control: &ControlArgs,
        agent_id: &str,
    ) -> anyhow::Result<Payload> {
        let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Payload::Filler);
        };
        let bytes = match objects::reference(spec) {
            Some(name) => fetch(name, control, agent_id).await?,
            None => read_file(spec)?,
        };
        tracing::info!(payload = spec, bytes = bytes.len(), "Payload loaded.");
        Ok(Payload::File(bytes))
    }
}

fn read_file(path: &str) -> anyhow::Result<Bytes> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("--payload {path}: cannot read it"))?
        .len();
    if size > MAX_FILE {
        anyhow::bail!("--payload {path} is {size} bytes; at most {MAX_FILE} are taken");
    }
    let bytes = std::fs::read(path).with_context(|| format!("--payload {path}: cannot read it"))?;
    Ok(bytes.into())
}

/// Reads data object `name` over the control plane.
async fn fetch(name: &str, control: &ControlArgs, agent_id: &str) -> anyhow::Result<Bytes> {
    objects::validate_name(name).context("--payload obj:NAME")?;
    if control.url.is_none() {
        anyhow::bail!(
            "--payload obj:{name} is read from the control plane: give --control (and the agent's --nkey-file)"
        );
    }
    let options = control
        .options(&format!("geolb-agent client {agent_id} payload"))
        .await?
        .custom_inbox_prefix(objects::inbox_prefix(agent_id))
        .connection_timeout(CONNECT_TIMEOUT);
    let client = options
        .connect(control.server_url())
        .await
        .with_context(|| {
            format!(
                "--payload obj:{name}: cannot reach the control plane at {}",
                control.display_url()
            )
        })?;
    let bucket = Bucket::open(client.clone(), DATA_BUCKET, "data");
    let info = bucket.info(name).await?;
    if info.size > MAX_FILE {
        return Err(FetchError::TooLarge {
            name: name.to_string(),
            size: info.size,
            limit: MAX_FILE,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(info.size as usize);
    bucket
        .read(&info, &mut |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
    let _ = client.drain().await;
    Ok(bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64) -> Header {
        Header {
            id: "c1".into(),
            run: 1,
            seq,
            sent_us: 2,
        }
    }

    fn body(payload: &Payload, seq: u64, size: usize) -> Vec<u8> {
        let bytes = payload.encode(&header(seq), size);
        assert_eq!(message::decode(&bytes), Some(header(seq)));
        let line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        bytes[line..].to_vec()
    }

    #[test]
    fn files_are_cut_into_successive_pieces_and_wrap() {
        let file = Payload::File(Bytes::from_static(b"0123456789"));
        let line = message::encode(&header(1), 0).len();
        let size = line + 4;
        assert_eq!(body(&file, 1, size), b"0123");
        assert_eq!(body(&file, 2, size), b"4567");
        assert_eq!(body(&file, 3, size), b"8901");
        assert_eq!(body(&file, 4, size), b"2345");
        assert_eq!(file.encode(&header(3), size).len(), size);
    }

    #[test]
    fn short_files_are_repeated_and_filler_stays_the_default() {
        let file = Payload::File(Bytes::from_static(b"<p>"));
        let line = message::encode(&header(1), 0).len();
        assert_eq!(body(&file, 1, line + 8), b"<p><p><p");
        assert_eq!(body(&Payload::Filler, 1, line + 3), b"...");
        assert_eq!(
            Payload::Filler.encode(&header(7), 300),
            message::encode(&header(7), 300)
        );
        // A size smaller than the header line sends the header alone.
        assert_eq!(body(&file, 1, 3), b"");
        assert_eq!(body(&Payload::File(Bytes::new()), 1, line + 2), b"..");
    }
}

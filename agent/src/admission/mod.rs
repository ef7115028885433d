//! Admission: what a request passes before a verb runs. One decoding path
//! for every request ([`decode`]: size, verb, signature and arguments, with
//! [`auth`] deciding which commands are obeyed), the [`gate`] that keeps a
//! flood of requests cheap and bounded, and the [`memory`] of answered
//! command ids so a repeated id is not applied twice.

pub mod auth;
pub mod gate;
pub mod memory;

pub use auth::Auth;
pub use gate::{Bucket, Gate};
pub use memory::{Memory, Seen};

use geolb_proto::{Command, ErrorKind, ReplyError, Request, Verb};

/// Largest request body accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Decodes `payload` sent to the endpoint `verb` and admits it through
/// `auth`; on refusal, the command id when one could be read (to answer
/// with), and why.
pub fn decode(
    auth: &Auth,
    verb: &str,
    payload: &[u8],
) -> Result<(Command, Request), (String, ReplyError)> {
    let no_id = |e| (String::new(), e);
    if payload.len() > MAX_PAYLOAD {
        return Err(no_id(ReplyError::new(
            ErrorKind::BadRequest,
            format!(
                "command is {} bytes; the limit is {MAX_PAYLOAD}",
                payload.len()
            ),
        )));
    }
    let verb: Verb = verb.parse().map_err(no_id)?;
    let command = auth.admit(verb, payload)?;
    match Request::parse(verb, &command.args) {
        Ok(request) => Ok((command, request)),
        Err(e) => Err((command.id, e)),
    }
}

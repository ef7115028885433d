//! `stop` and `restart`.

use super::Context;
use geolb_proto::{ReplyError, StopArgs};

/// Stops every replica; it stays stopped until `start`.
pub async fn stop(ctx: &Context, args: StopArgs) -> Result<(), ReplyError> {
    ctx.handle.stop(args.mode, args.grace.map(|g| g.0)).await
}

/// Stops, then starts every replica.
pub async fn restart(ctx: &Context, args: StopArgs) -> Result<(), ReplyError> {
    ctx.handle.restart(args.mode, args.grace.map(|g| g.0)).await
}

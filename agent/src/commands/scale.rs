//! `scale`: for client agents; a server listens on fixed ports, so more
//! than one replica of it cannot run.

use super::Context;
use geolb_proto::{ErrorKind, ReplyError, Role, ScaleArgs};

/// Changes the number of replicas.
pub async fn scale(ctx: &Context, args: ScaleArgs) -> Result<(), ReplyError> {
    if ctx.identity.role == Role::Server && args.replicas != 1 {
        return Err(ReplyError::new(
            ErrorKind::Conflict,
            "scale is for client agents: a nats-server replica would fight over its ports; \
             add server agents instead",
        ));
    }
    ctx.handle.scale(args.replicas).await
}

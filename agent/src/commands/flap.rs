//! `flap`: down and up repeatedly, or `cancel` to end it early.

use super::Context;
use crate::supervisor::FlapPlan;
use geolb_proto::{FlapArgs, ReplyError};
use std::time::Duration;

/// Default down and up phase.
const DEFAULT_PHASE: Duration = Duration::from_secs(2);
/// Default number of cycles.
const DEFAULT_CYCLES: u32 = 3;

/// Begins a flap, or cancels the running one.
pub async fn flap(ctx: &Context, args: FlapArgs) -> Result<(), ReplyError> {
    if args.cancel {
        return ctx.handle.cancel_flap().await;
    }
    ctx.handle.flap(plan(&args)).await
}

/// The plan with defaults filled in.
pub fn plan(args: &FlapArgs) -> FlapPlan {
    FlapPlan {
        mode: args.mode,
        down: args.down.map_or(DEFAULT_PHASE, |d| d.0),
        up: args.up.map_or(DEFAULT_PHASE, |d| d.0),
        cycles: args.cycles.unwrap_or(DEFAULT_CYCLES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::{FlapMode, WireDuration};

    #[test]
    fn fills_defaults() {
        let p = plan(&FlapArgs::default());
        assert_eq!(
            (p.down, p.up, p.cycles, p.mode),
            (DEFAULT_PHASE, DEFAULT_PHASE, 3, FlapMode::Stop)
        );
        let p = plan(&FlapArgs {
            down: Some(WireDuration::from_millis(100)),
            cycles: Some(7),
            mode: FlapMode::Pause,
            ..FlapArgs::default()
        });
        assert_eq!(
            (p.down, p.up, p.cycles, p.mode),
            (
                Duration::from_millis(100),
                DEFAULT_PHASE,
                7,
                FlapMode::Pause
            )
        );
    }
}

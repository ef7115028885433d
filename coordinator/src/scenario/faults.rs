//! The faults a scenario applies, each kept with the way to undo it, so a
//! run that fails half-way (a gate times out, an agent goes stale, Ctrl-C)
//! undoes every fault it applied before it ends: servers started again,
//! links given back the behaviour they were listed with, flaps cancelled,
//! Fly machines scaled back, containers started.

use super::fleet::Fleet;
use super::observe::Observer;
use crate::links::{self, LinkControl};
use geolb_proto::wan::LinkConfig;
use geolb_proto::{FlapArgs, Request, StopArgs, StopMode};
use std::sync::Mutex;
use std::time::Duration;

/// How long an agent may take to answer a fault's command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A fault applied, and what undoes it.
#[derive(Debug, Clone)]
enum Applied {
    /// Servers stopped by their agents: `start` them.
    Stopped(Vec<String>),
    /// Links changed: give each its listed behaviour back.
    Links(Vec<LinkControl>),
    /// Servers flapping: cancel the flap.
    Flapping(Vec<String>),
    /// A Fly region scaled to 0: scale it back to `count`.
    Fly {
        flyctl: String,
        app: String,
        region: String,
        count: u32,
    },
    /// Containers killed by the engine: start them.
    Engine(Vec<String>),
}

/// One applied fault, to undo it by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(usize);

/// Every fault applied and not undone yet.
#[derive(Default)]
pub struct Faults {
    applied: Mutex<Vec<Option<Applied>>>,
}

impl Faults {
    fn keep(&self, applied: Applied) -> FaultId {
        let mut all = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        all.push(Some(applied));
        FaultId(all.len() - 1)
    }

    fn take(&self, id: FaultId) -> Option<Applied> {
        let mut all = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        all.get_mut(id.0).and_then(Option::take)
    }

    /// SIGKILLs (or stops with `mode`) the servers `ids` through their agents.
    pub async fn stop_servers(
        &self,
        fleet: &Fleet,
        ids: &[String],
        mode: StopMode,
    ) -> anyhow::Result<FaultId> {
        let id = self.keep(Applied::Stopped(ids.to_vec()));
        let stop = Request::Stop(StopArgs { mode, grace: None });
        fleet.command(ids, &stop, COMMAND_TIMEOUT).await?;
        Ok(id)
    }

    /// Gives `links` the behaviour `config` makes of each one's own.
    pub async fn change_links(
        &self,
        fleet: &Fleet,
        links: &[LinkControl],
        config: impl Fn(&LinkConfig) -> LinkConfig,
    ) -> anyhow::Result<FaultId> {
        let id = self.keep(Applied::Links(links.to_vec()));
        links::set(&fleet.control, links, |l| config(&l.link.config)).await?;
        Ok(id)
    }

    /// Starts a flap on the servers `ids`.
    pub async fn flap(
        &self,
        fleet: &Fleet,
        ids: &[String],
        args: FlapArgs,
    ) -> anyhow::Result<FaultId> {
        let id = self.keep(Applied::Flapping(ids.to_vec()));
        fleet
            .command(ids, &Request::Flap(args), COMMAND_TIMEOUT)
            .await?;
        Ok(id)
    }

    /// Scales Fly app `app` to 0 machines in `region` (a hard outage:
    /// machines are destroyed), to be scaled back to `count`.
    pub fn fly_down(
        &self,
        flyctl: &str,
        app: &str,
        region: &str,
        count: u32,
    ) -> anyhow::Result<FaultId> {
        let id = self.keep(Applied::Fly {
            flyctl: flyctl.into(),
            app: app.into(),
            region: region.into(),
            count,
        });
        crate::fly::execute(&crate::fly::scale_count(flyctl, app, region, 0))?;
        Ok(id)
    }

    /// Kills the containers of `ids` through the Docker engine (a lab in containers).
    pub async fn engine_kill(&self, fleet: &Fleet, ids: &[String]) -> anyhow::Result<FaultId> {
        let docker = fleet
            .docker()
            .ok_or_else(|| anyhow::anyhow!("--fault engine needs a lab in containers"))?;
        let id = self.keep(Applied::Engine(ids.to_vec()));
        crate::lab::docker::kill(docker, ids).await?;
        Ok(id)
    }

    /// Forgets fault `id`: it ended by itself (a flap that ran its cycles).
    pub fn forget(&self, id: FaultId) {
        self.take(id);
    }

    /// Undoes fault `id` now (the scenario's restore step).
    pub async fn undo(&self, fleet: &Fleet, id: FaultId) -> anyhow::Result<()> {
        match self.take(id) {
            Some(applied) => undo(fleet, applied).await,
            None => Ok(()),
        }
    }

    /// Undoes every fault still applied, newest first, noting each; errors
    /// are noted and the rest still undone.
    pub async fn undo_all(&self, fleet: &Fleet, obs: &Observer) {
        loop {
            let last = {
                let mut all = self.applied.lock().unwrap_or_else(|p| p.into_inner());
                all.iter_mut().rev().find_map(Option::take)
            };
            let Some(applied) = last else { return };
            let what = describe(&applied);
            match undo(fleet, applied).await {
                Ok(()) => obs.note("undo", what),
                Err(e) => obs.note("undo_failed", format!("{what}: {e:#}")),
            }
        }
    }
}

fn describe(applied: &Applied) -> String {
    match applied {
        Applied::Stopped(ids) => format!("start {}", ids.join(", ")),
        Applied::Links(links) => format!("give {} links their behaviour back", links.len()),
        Applied::Flapping(ids) => format!("cancel the flap of {}", ids.join(", ")),
        Applied::Fly {
            app, region, count, ..
        } => format!("scale {app} in {region} back to {count} machines"),
        Applied::Engine(ids) => format!("docker start {}", ids.join(", ")),
    }
}

async fn undo(fleet: &Fleet, applied: Applied) -> anyhow::Result<()> {
    match applied {
        Applied::Stopped(ids) => {
            fleet
                .command(&ids, &Request::Start, COMMAND_TIMEOUT)
                .await?;
        }
        Applied::Links(links) => {
            links::set(&fleet.control, &links, |l| l.link.config).await?;
        }
        Applied::Flapping(ids) => {
            let cancel = Request::Flap(FlapArgs {
                cancel: true,
                ..FlapArgs::default()
            });
            fleet.command(&ids, &cancel, COMMAND_TIMEOUT).await?;
        }
        Applied::Fly {
            flyctl,
            app,
            region,
            count,
        } => crate::fly::execute(&crate::fly::scale_count(&flyctl, &app, &region, count))?,
        Applied::Engine(ids) => {
            let docker = fleet
                .docker()
                .ok_or_else(|| anyhow::anyhow!("no Docker lab to start containers in"))?;
            crate::lab::docker::start(docker, &ids).await?;
        }
    }
    Ok(())
}

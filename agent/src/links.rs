//! The `geolb-wan` micro service over a set of emulated links: `list` and
//! `set` on `geolb.wan.<id>.<verb>`, each link announced with the regions
//! it joins ([`LinkPath`]), so scenarios find and change links by region.
//! Served by the WAN emulator process (`geolb-agent wan`) and by an agent's
//! own front links (`geolb-agent run --front`).

use async_nats::service::{Request, ServiceExt};
use futures::StreamExt;
use geolb_proto::wan::{self, LinkPath, LinkSpec, LinkView, SetLinks, WanReply};
use geolb_proto::{Command, ErrorKind, ReplyError, PROTOCOL_VERSION};
use geolb_wan::Emulator;
use std::collections::HashMap;

/// Links and what each one joins.
#[derive(Clone, Default)]
pub struct Links {
    /// The running links.
    pub emulator: Emulator,
    paths: HashMap<String, LinkPath>,
}

impl Links {
    /// No links yet.
    pub fn new() -> Links {
        Links::default()
    }

    /// Starts the link of `spec`; returns the address it listens on.
    pub async fn add(&mut self, spec: &LinkSpec) -> anyhow::Result<std::net::SocketAddr> {
        let listen = spec.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "link {}: bad listen address {:?}: {e}",
                spec.name,
                spec.listen
            )
        })?;
        // A name (a container's, in `lab up --docker`) is resolved at each
        // connection, so a target may start after the link.
        let addr = self
            .emulator
            .add(&spec.name, listen, &spec.target, spec.config)
            .await?;
        if let Some(path) = &spec.path {
            self.paths.insert(spec.name.clone(), path.clone());
        }
        Ok(addr)
    }

    /// Registers the service as emulator `id` on `client` and answers
    /// requests until the connection ends.
    pub async fn serve(&self, client: &async_nats::Client, id: &str) -> anyhow::Result<()> {
        let service = client
            .service_builder()
            .description("nats-geolb WAN links")
            .start(wan::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot register the link service: {e}"))?;
        let group = service.group(format!("geolb.wan.{id}"));
        let list = group
            .endpoint("list")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let set = group
            .endpoint("set")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut requests =
            futures::stream::select(list.map(|r| (false, r)), set.map(|r| (true, r)));
        while let Some((is_set, request)) = requests.next().await {
            let reply = self.answer(is_set, &request);
            let _ = request
                .respond(Ok(serde_json::to_vec(&reply)?.into()))
                .await;
        }
        Ok(())
    }

    fn answer(&self, is_set: bool, request: &Request) -> WanReply {
        let (id, outcome) = match Command::decode(&request.message.payload) {
            Err(e) => (String::new(), Err(e)),
            Ok(command) if is_set => (command.id.clone(), self.set(&command)),
            Ok(command) => (command.id, Ok(self.emulator.names())),
        };
        let (links, error) = match outcome {
            Ok(names) => (self.views(&names), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        WanReply {
            v: PROTOCOL_VERSION,
            id,
            ok: error.is_none(),
            error,
            links,
        }
    }

    /// Applies a `set` to every matching link; nothing changes when none match.
    fn set(&self, command: &Command) -> Result<Vec<String>, ReplyError> {
        let args: SetLinks = serde_json::from_value(command.args.clone()).map_err(|e| {
            ReplyError::new(
                ErrorKind::InvalidArgument,
                format!("bad arguments for set: {e}"),
            )
        })?;
        let names: Vec<String> = self
            .emulator
            .names()
            .into_iter()
            .filter(|n| args.matches(n))
            .collect();
        if names.is_empty() {
            return Err(ReplyError::new(
                ErrorKind::InvalidArgument,
                format!("no link matches {:?}; `list` shows the links", args.links),
            ));
        }
        for name in &names {
            let _ = self.emulator.set(name, args.config);
        }
        tracing::info!(links = names.len(), config = ?args.config, "Links changed.");
        Ok(names)
    }

    fn views(&self, names: &[String]) -> Vec<LinkView> {
        self.emulator
            .list()
            .into_iter()
            .filter(|l| names.contains(&l.name))
            .map(|l| LinkView {
                path: self.paths.get(&l.name).cloned(),
                name: l.name,
                listen: l.listen.to_string(),
                target: l.target.to_string(),
                config: l.config,
                open: l.stats.open,
            })
            .collect()
    }
}

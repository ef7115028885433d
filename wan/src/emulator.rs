//! A named set of links, shared by clones.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::link::{Link, LinkStats};
use crate::Error;
use geolb_proto::wan::LinkConfig;

/// A named set of links; clones share the same links.
#[derive(Clone, Debug, Default)]
pub struct Emulator {
    links: Arc<Mutex<BTreeMap<String, Link>>>,
}

/// What one link is and does, for reports and the lab's API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// The link's name.
    pub name: String,
    /// The address clients dial.
    pub listen: SocketAddr,
    /// Where connections are forwarded to (`ip:port` or `host:port`).
    pub target: String,
    /// The current configuration.
    pub config: LinkConfig,
    /// The traffic counters.
    pub stats: LinkStats,
}

impl Emulator {
    /// An emulator without links.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a link named `name`, and returns the address clients dial.
    pub async fn add(
        &self,
        name: &str,
        listen: SocketAddr,
        target: impl std::fmt::Display,
        config: LinkConfig,
    ) -> Result<SocketAddr, Error> {
        if self.links.lock().unwrap().contains_key(name) {
            return Err(Error::Duplicate(name.to_owned()));
        }
        let link = Link::start(name, listen, target, config).await?;
        let local = link.local_addr();
        let mut links = self.links.lock().unwrap();
        if links.contains_key(name) {
            return Err(Error::Duplicate(name.to_owned()));
        }
        links.insert(name.to_owned(), link);
        Ok(local)
    }

    /// Stops the link named `name` and resets its connections.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let link = self.links.lock().unwrap().remove(name);
        link.map(drop)
            .ok_or_else(|| Error::Unknown(name.to_owned()))
    }

    /// Changes the configuration of the link named `name`.
    pub fn set(&self, name: &str, config: LinkConfig) -> Result<(), Error> {
        let links = self.links.lock().unwrap();
        let link = links
            .get(name)
            .ok_or_else(|| Error::Unknown(name.to_owned()))?;
        link.set(config);
        Ok(())
    }

    /// Changes every named link, or none if one name is unknown.
    pub fn set_many<S: AsRef<str>>(&self, names: &[S], config: LinkConfig) -> Result<(), Error> {
        let links = self.links.lock().unwrap();
        if let Some(unknown) = names.iter().find(|n| !links.contains_key(n.as_ref())) {
            return Err(Error::Unknown(unknown.as_ref().to_owned()));
        }
        names.iter().for_each(|n| links[n.as_ref()].set(config));
        Ok(())
    }

    /// Changes every link whose name passes `filter`, and returns how many.
    pub fn set_where(&self, filter: impl Fn(&str) -> bool, config: LinkConfig) -> usize {
        let links = self.links.lock().unwrap();
        let chosen: Vec<_> = links.iter().filter(|(n, _)| filter(n)).collect();
        chosen.iter().for_each(|(_, link)| link.set(config));
        chosen.len()
    }

    /// What the link named `name` is and does.
    pub fn get(&self, name: &str) -> Option<LinkInfo> {
        self.links.lock().unwrap().get(name).map(info)
    }

    /// Every link, by name.
    pub fn list(&self) -> Vec<LinkInfo> {
        self.links.lock().unwrap().values().map(info).collect()
    }

    /// The names of all links, sorted.
    pub fn names(&self) -> Vec<String> {
        self.links.lock().unwrap().keys().cloned().collect()
    }
}

fn info(link: &Link) -> LinkInfo {
    LinkInfo {
        name: link.name().to_owned(),
        listen: link.local_addr(),
        target: link.target().to_string(),
        config: link.config(),
        stats: link.stats(),
    }
}

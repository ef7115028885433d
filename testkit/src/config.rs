//! `ServerConfig`: what a test nats-server listens on, rendered as nats-server config text.
//!
//! Every listener binds 127.0.0.1. A port of 0 means "pick a free one" and is resolved by
//! [`ServerConfig::resolve_ports`] (called by `NatsServer::start`), so a restart keeps it.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::ports::free_port;

/// Configuration of one test nats-server; build with `Default` and the chained setters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerConfig {
    /// `server_name`; empty means nats-server picks its id.
    pub server_name: String,
    /// Client port (0: pick a free one).
    pub port: u16,
    /// Monitoring HTTP port (0: pick a free one).
    pub http_port: u16,
    /// Enable JetStream; its `store_dir` is `store_dir` or a folder next to the config.
    pub jetstream: bool,
    /// JetStream storage folder (set by `NatsServer` when empty).
    pub store_dir: Option<PathBuf>,
    /// `cluster` block (routes inside a region).
    pub cluster: Option<ClusterBlock>,
    /// `gateway` block (links between regions).
    pub gateway: Option<GatewayBlock>,
    /// WebSocket port, without TLS (0: pick a free one).
    pub websocket_port: Option<u16>,
    /// `lame_duck_duration` (nats-server refuses less than 30 s).
    pub lame_duck_duration: Option<Duration>,
    /// `lame_duck_grace_period`.
    pub lame_duck_grace_period: Option<Duration>,
    /// Raw config text appended verbatim.
    pub extra: String,
    /// The whole config text, used instead of rendering the fields (e.g. a
    /// lab plan's); `port` and `http_port` must be the ones it listens on.
    pub text: Option<String>,
}

/// The `cluster` block: routes to the other servers of one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterBlock {
    /// Cluster name (the region).
    pub name: String,
    /// Route port (0: pick a free one).
    pub port: u16,
    /// Route URLs, e.g. `nats-route://127.0.0.1:6222`.
    pub routes: Vec<String>,
}

/// The `gateway` block: this server's cluster name and every region's gateway URLs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayBlock {
    /// Gateway name (the cluster name).
    pub name: String,
    /// Gateway port (0: pick a free one).
    pub port: u16,
    /// `(gateway name, URLs)` for each remote (listing our own name is allowed).
    pub gateways: Vec<(String, Vec<String>)>,
    /// `advertise`: the `host:port` gossiped to other gateways instead of `listen`.
    pub advertise: Option<String>,
    /// `authorization { user, password }` required of inbound gateway connections.
    pub authorization: Option<(String, String)>,
}

impl ServerConfig {
    /// Sets `server_name`.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Enables JetStream.
    pub fn jetstream(mut self) -> Self {
        self.jetstream = true;
        self
    }

    /// Adds a `cluster` block.
    pub fn cluster(mut self, name: &str, port: u16, routes: Vec<String>) -> Self {
        let name = name.to_string();
        self.cluster = Some(ClusterBlock { name, port, routes });
        self
    }

    /// Adds a `gateway` block.
    pub fn gateway(mut self, name: &str, port: u16, gateways: Vec<(String, Vec<String>)>) -> Self {
        let name = name.to_string();
        self.gateway = Some(GatewayBlock {
            name,
            port,
            gateways,
            advertise: None,
            authorization: None,
        });
        self
    }

    /// Adds a TLS-less `websocket` listener (0: pick a free port).
    pub fn websocket(mut self, port: u16) -> Self {
        self.websocket_port = Some(port);
        self
    }

    /// Replaces every 0 port with a free one.
    pub fn resolve_ports(&mut self) {
        let pick = |p: &mut u16| *p = if *p == 0 { free_port() } else { *p };
        pick(&mut self.port);
        pick(&mut self.http_port);
        if let Some(c) = &mut self.cluster {
            pick(&mut c.port);
        }
        if let Some(g) = &mut self.gateway {
            pick(&mut g.port);
        }
        if let Some(w) = &mut self.websocket_port {
            pick(w);
        }
    }

    /// Renders nats-server configuration text (or returns [`ServerConfig::text`]).
    pub fn render(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        let mut out = String::new();
        let w = &mut out;
        if !self.server_name.is_empty() {
            line(w, 0, "server_name", &q(&self.server_name));
        }
        line(w, 0, "listen", &q(&addr(self.port)));
        line(w, 0, "http", &q(&addr(self.http_port)));
        if let Some(d) = self.lame_duck_duration {
            line(
                w,
                0,
                "lame_duck_duration",
                &q(&format!("{}ms", d.as_millis())),
            );
        }
        if let Some(d) = self.lame_duck_grace_period {
            line(
                w,
                0,
                "lame_duck_grace_period",
                &q(&format!("{}ms", d.as_millis())),
            );
        }
        if self.jetstream {
            w.push_str("jetstream {\n");
            if let Some(dir) = &self.store_dir {
                line(w, 1, "store_dir", &q(&dir.to_string_lossy()));
            }
            w.push_str("}\n");
        }
        if let Some(c) = &self.cluster {
            w.push_str("cluster {\n");
            line(w, 1, "name", &q(&c.name));
            line(w, 1, "listen", &q(&addr(c.port)));
            line(w, 1, "no_advertise", "true");
            line(w, 1, "routes", &list(&c.routes));
            w.push_str("}\n");
        }
        if let Some(g) = &self.gateway {
            w.push_str("gateway {\n");
            line(w, 1, "name", &q(&g.name));
            line(w, 1, "listen", &q(&addr(g.port)));
            if let Some(advertise) = &g.advertise {
                line(w, 1, "advertise", &q(advertise));
            }
            if let Some((user, password)) = &g.authorization {
                let auth = format!("{{ user: {}, password: {} }}", q(user), q(password));
                line(w, 1, "authorization", &auth);
            }
            w.push_str("  gateways: [\n");
            for (name, urls) in &g.gateways {
                let _ = writeln!(w, "    {{ name: {}, urls: {} }}", q(name), list(urls));
            }
            w.push_str("  ]\n}\n");
        }
        if let Some(port) = self.websocket_port {
            w.push_str("websocket {\n");
            line(w, 1, "listen", &q(&addr(port)));
            line(w, 1, "no_tls", "true");
            w.push_str("}\n");
        }
        if !self.extra.is_empty() {
            w.push_str(self.extra.trim_end());
            w.push('\n');
        }
        out
    }
}

/// Appends `key: value` indented by `depth` levels.
fn line(w: &mut String, depth: usize, key: &str, value: &str) {
    let _ = writeln!(w, "{:indent$}{key}: {value}", "", indent = depth * 2);
}

/// A quoted, escaped config string (JSON strings are valid nats-server strings).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// A config list of quoted strings.
fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// `127.0.0.1:port`.
fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_full_config() {
        let mut cfg = ServerConfig {
            port: 4222,
            http_port: 8222,
            store_dir: Some("/tmp/js".into()),
            lame_duck_duration: Some(Duration::from_secs(30)),
            ..Default::default()
        }
        .server_name("lon-0")
        .jetstream()
        .cluster("lon", 6222, vec!["nats-route://127.0.0.1:6223".into()])
        .gateway(
            "lon",
            7222,
            vec![("ams".into(), vec!["nats://127.0.0.1:7333".into()])],
        )
        .websocket(8080);
        cfg.extra = "max_payload: 2MB\n".into();
        let want = r#"server_name: "lon-0"
listen: "127.0.0.1:4222"
http: "127.0.0.1:8222"
lame_duck_duration: "30000ms"
jetstream {
  store_dir: "/tmp/js"
}
cluster {
  name: "lon"
  listen: "127.0.0.1:6222"
  no_advertise: true
  routes: ["nats-route://127.0.0.1:6223"]
}
gateway {
  name: "lon"
  listen: "127.0.0.1:7222"
  gateways: [
    { name: "ams", urls: ["nats://127.0.0.1:7333"] }
  ]
}
websocket {
  listen: "127.0.0.1:8080"
  no_tls: true
}
max_payload: 2MB
"#;
        assert_eq!(cfg.render(), want);
    }

    #[test]
    fn renders_gateway_advertise_and_authorization() {
        let mut cfg = ServerConfig::default().gateway("lon", 7222, vec![]);
        let gateway = cfg.gateway.as_mut().unwrap();
        gateway.advertise = Some("127.0.0.1:1".into());
        gateway.authorization = Some(("gw-lon".into(), "secret".into()));
        let text = cfg.render();
        assert!(text.contains("  advertise: \"127.0.0.1:1\"\n"), "{text}");
        let auth = "  authorization: { user: \"gw-lon\", password: \"secret\" }\n";
        assert!(text.contains(auth), "{text}");
    }

    #[test]
    fn renders_a_minimal_config_and_resolves_ports() {
        let mut cfg = ServerConfig::default().websocket(0);
        cfg.resolve_ports();
        assert_ne!(cfg.port, 0);
        assert_ne!(cfg.http_port, cfg.port);
        assert_ne!(cfg.websocket_port, Some(0));
        let text = cfg.render();
        assert!(text.starts_with(&format!("listen: \"127.0.0.1:{}\"\n", cfg.port)));
        assert!(!text.contains("jetstream") && !text.contains("cluster"));
    }
}

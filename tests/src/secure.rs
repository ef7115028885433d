//! A least-privilege control plane for tests: the layout of
//! [`geolb::control_plane`] (one nkey user per identity, a signing key)
//! applied to a real nats-server with JetStream, and helpers to connect as
//! any identity.
//!
//! ```no_run
//! # async fn f() {
//! use geolb_tests::secure::SecureControlPlane;
//! let cp = SecureControlPlane::start(&[("lon-1", "lon")], 1);
//! let _agent = cp.agent("lon-1", "lon").spawn(&["sleep", "60"]);
//! let control = cp.coordinator().await;
//! # }
//! ```

use crate::agent::AgentBuilder;
use crate::{default_version, NatsServer, ServerConfig};
use geolb::control_plane::{layout, Layout, LayoutSpec};
use geolb::Control;
use geolb_proto::connect::ControlArgs;
use geolb_proto::signing::{Signer, DEFAULT_VALIDITY};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// A nats-server whose `authorization` block is a generated layout.
pub struct SecureControlPlane {
    /// The server.
    pub server: NatsServer,
    /// The identities and the authorization block.
    pub layout: Layout,
    dir: PathBuf,
}

impl SecureControlPlane {
    /// Lays out `agents` (`(id, region)`) and `clients` client identities and starts the server.
    pub fn start(agents: &[(&str, &str)], clients: usize) -> SecureControlPlane {
        let dir = std::env::temp_dir().join("geolb-tests").join(format!(
            "{}-keys-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let spec = LayoutSpec {
            agents: agents
                .iter()
                .map(|(id, region)| (id.to_string(), region.to_string()))
                .collect(),
            clients,
            archiver: true,
            ..Default::default()
        };
        let layout = layout(&dir, &spec).expect("lay out the control plane");
        let mut config = ServerConfig::default().jetstream();
        config.extra = layout.server_config.clone();
        let server = NatsServer::start(default_version(), config);
        SecureControlPlane {
            server,
            layout,
            dir,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.client_url()
    }

    /// The seed file of identity `name` (`coordinator`, `agent-<id>`, `client-<n>`, `archiver`, `signing`).
    pub fn seed(&self, name: &str) -> &Path {
        &self
            .layout
            .identity(name)
            .unwrap_or_else(|| panic!("no identity {name}"))
            .seed_path
    }

    /// The public key agents trust.
    pub fn trust(&self) -> &str {
        &self.layout.signing().public_key
    }

    /// The signer of commands.
    pub fn signer(&self) -> Signer {
        Signer::from_file(self.seed("signing")).expect("the signing key")
    }

    /// Control-plane flags connecting as identity `name`.
    pub fn args(&self, name: &str) -> ControlArgs {
        ControlArgs {
            url: Some(self.url()),
            nkey_file: Some(self.seed(name).to_path_buf()),
            ..Default::default()
        }
    }

    /// The coordinator: its identity, signing every command.
    pub async fn coordinator(&self) -> Control {
        Control::connect(&self.args("coordinator"))
            .await
            .expect("connect as the coordinator")
            .with_signer(Some(self.signer()), DEFAULT_VALIDITY)
    }

    /// A raw connection as identity `name`, and the errors the server sends it
    /// (`Permissions Violation ...`).
    pub async fn connect_as(
        &self,
        name: &str,
    ) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        self.connect_with_inbox(name, "_INBOX").await
    }

    /// A raw connection as agent `id`, with the agent's own inbox (as
    /// `geolb-agent` connects), and the errors the server sends it.
    pub async fn connect_as_agent(
        &self,
        id: &str,
    ) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let inbox = geolb_proto::objects::inbox_prefix(id);
        self.connect_with_inbox(&format!("agent-{id}"), &inbox)
            .await
    }

    async fn connect_with_inbox(
        &self,
        name: &str,
        inbox: &str,
    ) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let options = self
            .args(name)
            .options(name)
            .await
            .expect("options")
            .custom_inbox_prefix(inbox)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            });
        let client = options.connect(self.url()).await.expect("connect");
        (client, rx)
    }

    /// An agent `id` connecting with its own identity and trusting the signing key.
    pub fn agent(&self, id: &str, region: &str) -> AgentBuilder {
        AgentBuilder::new(id, region)
            .control(&self.url())
            .arg("--nkey-file")
            .arg(self.seed(&format!("agent-{id}")).display().to_string())
            .arg("--trust")
            .arg(self.trust())
    }
}

impl Drop for SecureControlPlane {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

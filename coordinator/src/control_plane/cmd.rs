//! `geolb control-plane init`: writes the keys and the nats-server
//! authorization block of a least-privilege control plane, and prints the
//! block and how each identity connects. Seeds go to files, never to stdout.

use super::{layout, IdentityKind, Layout, LayoutSpec};
use crate::table::Table;
use crate::UsageError;
use std::path::PathBuf;
use std::process::ExitCode;

/// `geolb control-plane ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlPlaneArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ControlPlaneCommand,
}

/// The control-plane subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ControlPlaneCommand {
    /// Make (or extend) the keys and the authorization block in DIR.
    Init(InitArgs),
}

/// `geolb control-plane init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Folder for the seed files and authorization.conf (made 0700; seeds already there are kept).
    #[arg(long, env = "GEOLB_CONTROL_PLANE_DIR")]
    pub dir: PathBuf,
    /// An agent as ID:REGION (repeatable).
    #[arg(long = "agent", value_name = "ID:REGION")]
    pub agents: Vec<String>,
    /// How many client or observer identities to make.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Another JetStream stream the coordinator manages (GEOLB_HEARTBEATS, GEOLB_TELEMETRY and the object buckets always are).
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Also make the `archiver` identity, for `geolb archive` (reads the telemetry stream only).
    #[arg(long)]
    pub archiver: bool,
    /// Print the layout as JSON.
    #[arg(long, env = "GEOLB_JSON")]
    pub json: bool,
}

impl InitArgs {
    /// The layout asked for, after checking `ID:REGION` pairs.
    pub fn spec(&self) -> Result<LayoutSpec, UsageError> {
        let agents = self
            .agents
            .iter()
            .map(|pair| match pair.split_once(':') {
                Some((id, region)) => Ok((id.to_string(), region.to_string())),
                None => Err(UsageError(format!(
                    "--agent {pair:?} needs ID:REGION, e.g. --agent lon-1:lon"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LayoutSpec {
            agents,
            clients: self.clients,
            streams: self.streams.clone(),
            coordinator_publish: Vec::new(),
            emulators: Vec::new(),
            archiver: self.archiver,
            routers: Vec::new(),
        })
    }
}

/// Runs `geolb control-plane ...`.
pub fn run(args: &ControlPlaneArgs) -> anyhow::Result<ExitCode> {
    let ControlPlaneCommand::Init(init) = &args.command;
    let spec = init.spec()?;
    let layout = layout(&init.dir, &spec).map_err(|e| match e {
        super::LayoutError::Name(_) | super::LayoutError::Duplicate(_) => {
            anyhow::Error::new(UsageError(e.to_string()))
        }
        other => anyhow::Error::new(other),
    })?;
    let text = if init.json {
        serde_json::to_string_pretty(&layout)? + "\n"
    } else {
        human(&layout)
    };
    crate::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn human(layout: &Layout) -> String {
    let mut out = format!(
        "# {} (include it in the control plane's nats-server config)\n{}\n",
        layout.server_config_path.display(),
        layout.server_config
    );
    let mut table = Table::new(["IDENTITY", "KIND", "PUBLIC KEY", "SEED FILE"]);
    for i in &layout.identities {
        let kind = serde_json::to_value(i.kind).unwrap_or_default();
        table.row([
            i.name.clone(),
            kind.as_str().unwrap_or_default().to_string(),
            i.public_key.clone(),
            i.seed_path.display().to_string(),
        ]);
    }
    out.push_str(&table.render());
    let signing = layout.signing();
    let coordinator = layout.identity(super::COORDINATOR);
    out.push_str("\nConnect with:\n");
    if let Some(c) = coordinator {
        out.push_str(&format!(
            "  geolb --nkey-file {} --signing-key {} ...\n",
            c.seed_path.display(),
            signing.seed_path.display()
        ));
    }
    if let Some(a) = layout
        .identities
        .iter()
        .find(|i| i.kind == IdentityKind::Agent)
    {
        out.push_str(&format!(
            "  geolb-agent run --id {} --nkey-file {} --trust {} ...\n",
            a.agent.as_deref().unwrap_or_default(),
            a.seed_path.display(),
            signing.public_key
        ));
    }
    if let Some(c) = layout
        .identities
        .iter()
        .find(|i| i.kind == IdentityKind::Client)
    {
        out.push_str(&format!(
            "  nats --nkey {} sub 'geolb.evt.>'\n",
            c.seed_path.display()
        ));
    }
    if let Some(a) = layout.identity(super::ARCHIVER) {
        out.push_str(&format!(
            "  geolb --nkey-file {} archive --to s3://BUCKET/PREFIX ...\n",
            a.seed_path.display()
        ));
    }
    out.push_str(
        "Keep the .nk files secret; agents need only their own and the signing public key.\n",
    );
    out
}

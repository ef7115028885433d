//! `geolb binary put|ls|rm` and `geolb data put|ls|rm`: executables and
//! payload files stored in JetStream Object Store buckets on the control
//! plane ([`geolb_proto::objects`]), for `upgrade --to obj:NAME` and
//! `geolb-agent client --payload obj:NAME`.
//!
//! A binary is refused unless it is an ELF program for this machine's
//! architecture; the version it prints for `--version` and that
//! architecture go into the object's metadata, so agents can refuse it
//! from its info alone. Putting a name again replaces the object (a new
//! digest: agents fetch it again); agents keep the copies they fetched.
//!
//! # Layout
//! - [`inspect`]: the checks of a binary before it is stored.
//! - [`store`]: the buckets (put, list, info, remove).

pub mod inspect;
pub mod store;

use crate::control::Control;
use crate::emit;
use crate::table::Table;
use clap::{Args, Subcommand};
use geolb_proto::objects::{self, StoredInfo, META_ARCH, META_VERSION};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use store::Bucket;

/// Flags of `geolb binary` and `geolb data`.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ObjectCommand,
}

/// The subcommands of `geolb binary` and `geolb data`.
#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Store FILE on the control plane (replacing an object of the same name).
    Put {
        /// The file.
        file: PathBuf,
        /// Its name there (`obj:NAME`) [default: the file's name].
        #[arg(long)]
        name: Option<String>,
        /// Print the stored object's info as JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// List what is stored: name, version, architecture, size, sha256.
    Ls {
        /// Print JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// Remove one object (agents keep the copies they fetched).
    Rm {
        /// Its name.
        name: String,
    },
}

/// Why a put was refused.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The name cannot be an object's.
    #[error(transparent)]
    Name(#[from] objects::InvalidObjectName),
    /// Not a binary that runs here.
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    /// The bucket failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Stores the executable at `path` as `name` (default: its file name),
/// with the version it reports and this machine's architecture.
pub async fn put_binary(
    control: &Control,
    path: &Path,
    name: Option<&str>,
) -> Result<StoredInfo, PutError> {
    let name = name_of(path, name)?;
    let version = inspect::binary(path).await?;
    let mut metadata = HashMap::from([(META_ARCH.to_string(), std::env::consts::ARCH.to_string())]);
    if let Some(version) = version {
        metadata.insert(META_VERSION.to_string(), version);
    }
    Ok(store::BINARIES.put(control, &name, path, metadata).await?)
}

/// Stores the file at `path` as payload data `name` (default: its file name).
pub async fn put_data(
    control: &Control,
    path: &Path,
    name: Option<&str>,
) -> Result<StoredInfo, PutError> {
    let name = name_of(path, name)?;
    Ok(store::DATA
        .put(control, &name, path, HashMap::new())
        .await?)
}

fn name_of(path: &Path, name: Option<&str>) -> Result<String, objects::InvalidObjectName> {
    let name = match name {
        Some(name) => name.to_string(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    objects::validate_name(&name)?;
    Ok(name)
}

/// Runs `geolb binary ...`.
pub async fn run_binary(control: &Control, args: &ObjectArgs) -> anyhow::Result<ExitCode> {
    run(control, store::BINARIES, args).await
}

/// Runs `geolb data ...`.
pub async fn run_data(control: &Control, args: &ObjectArgs) -> anyhow::Result<ExitCode> {
    run(control, store::DATA, args).await
}

async fn run(control: &Control, bucket: Bucket, args: &ObjectArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ObjectCommand::Put { file, name, json } => {
            let info = match bucket == store::BINARIES {
                true => put_binary(control, file, name.as_deref()).await?,
                false => put_data(control, file, name.as_deref()).await?,
            };
            match json {
                true => emit(&format!("{}\n", serde_json::to_string_pretty(&row(&info))?))?,
                false => emit(&format!(
                    "stored {} {}: {}\n",
                    bucket.kind,
                    info.name,
                    describe(&info)
                ))?,
            }
        }
        ObjectCommand::Ls { json } => {
            let all = bucket.list(control).await?;
            match json {
                true => {
                    let rows: Vec<_> = all.iter().map(row).collect();
                    emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?
                }
                false => emit(&listing(bucket, &all))?,
            }
        }
        ObjectCommand::Rm { name } => {
            bucket.remove(control, name).await?;
            emit(&format!("removed {} {name}\n", bucket.kind))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An object as `--json` shows it.
fn row(info: &StoredInfo) -> serde_json::Value {
    serde_json::json!({
        "name": info.name,
        "version": info.version(),
        "arch": info.arch(),
        "size": info.size,
        "sha256": info.sha256(),
        "chunks": info.chunks,
        "bucket": info.bucket,
    })
}

fn describe(info: &StoredInfo) -> String {
    let mut parts = Vec::new();
    if let Some(version) = info.version() {
        parts.push(format!("version {version}"));
    }
    if let Some(arch) = info.arch() {
        parts.push(arch.to_string());
    }
    parts.push(format!("{} bytes", info.size));
    parts.push(format!(
        "sha256 {}",
        info.sha256().unwrap_or_else(|| "-".into())
    ));
    parts.join(", ")
}

/// The table of `ls`.
fn listing(bucket: Bucket, all: &[StoredInfo]) -> String {
    if all.is_empty() {
        return format!(
            "no {} stored; `geolb {} put FILE` stores one\n",
            bucket.kind, bucket.kind
        );
    }
    let binaries = bucket == store::BINARIES;
    let mut table = match binaries {
        true => Table::new(["NAME", "VERSION", "ARCH", "SIZE", "SHA256"]),
        false => Table::new(["NAME", "SIZE", "SHA256"]),
    };
    for info in all {
        let sha = info.sha256().unwrap_or_else(|| "-".into());
        let size = info.size.to_string();
        match binaries {
            true => table.row([
                info.name.as_str(),
                info.version().unwrap_or("-"),
                info.arch().unwrap_or("-"),
                &size,
                &sha,
            ]),
            false => table.row([info.name.as_str(), &size, &sha]),
        }
    }
    table.render()
}

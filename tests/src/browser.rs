//! A real headless Chromium for the dashboard's tests: Debian's
//! `chromium` driven through its `chromedriver` (WebDriver) with
//! fantoccini. Each browser has its own profile folder, downloads off, and
//! is killed with its driver on `Drop`. As root Chromium needs
//! `--no-sandbox`.
//!
//! Without the browser a test is skipped (it says so), unless
//! `GEOLB_REQUIRE_BROWSER=1` (as in CI), which makes it fail with the one
//! command that installs it.

use crate::process::ProcessGuard;
use crate::tools::target_dir;
use crate::wait::wait_for;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The command that installs the browser.
pub const INSTALL: &str = "apt-get install -y chromium chromium-driver (or `make tools` as root)";

fn required() -> bool {
    std::env::var("GEOLB_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Whether the browser is installed; `None` (and a SKIPPED line) when not and not required.
pub fn available(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (which("chromium"), which("chromedriver")) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if required() => panic!("{test}: chromium or chromedriver is missing and GEOLB_REQUIRE_BROWSER=1 forbids skipping; run {INSTALL}"),
        _ => {
            eprintln!("SKIPPED {test}: chromium or chromedriver is missing; run {INSTALL}");
            None
        }
    }
}

/// A headless Chromium session.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: ProcessGuard,
    profile: PathBuf,
}

/// Whether the browser may reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback as usual.
    On,
    /// Every host name resolves to nothing and every connection goes to a dead proxy.
    Off,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` when skipped.
    pub async fn start(test: &str, network: Network) -> Option<Browser> {
        let (chromium, driver) = available(test)?;
        let port = crate::free_port();
        let mut cmd = Command::new(driver);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let guard = ProcessGuard::spawn("chromedriver", &mut cmd).expect("start chromedriver");
        let profile =
            std::env::temp_dir().join(format!("geolb-chromium-{}-{port}", std::process::id()));
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if network == Network::Off {
            args.push("--proxy-server=127.0.0.1:9".into());
            args.push("--host-resolver-rules=MAP * ~NOTFOUND".into());
        }
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": { "download_restrictions": 3 },
            }
        });
        let caps = caps.as_object().cloned().expect("an object");
        let url = format!("http://127.0.0.1:{port}");
        let client = wait_for(
            "chromedriver to accept a session",
            Duration::from_secs(30),
            || {
                let mut builder =
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
                builder.capabilities(caps.clone());
                let url = url.clone();
                async move { builder.connect(&url).await.ok() }
            },
        )
        .await;
        Some(Browser {
            client,
            _driver: guard,
            profile,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The text of the first element matching `css`, if any.
    pub async fn text(&self, css: &str) -> Option<String> {
        self.read(css, "return e.innerText;", serde_json::Value::Null)
            .await
    }

    /// The value of attribute `name` of the first element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.read(css, "return e.getAttribute(arguments[1]);", name.into())
            .await
    }

    /// Runs `body` on the first element matching `css` (as `e`) in one
    /// script, so a live page that swaps its parts between two WebDriver
    /// calls cannot leave a stale element (a find, then a read, lost that
    /// race under load).
    async fn read(&self, css: &str, body: &str, arg: serde_json::Value) -> Option<String> {
        let script =
            format!("const e = document.querySelector(arguments[0]); if (!e) return null; {body}");
        match self.client.execute(&script, vec![css.into(), arg]).await {
            Ok(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |v| v.len())
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Evaluates `script` (a function body returning a value).
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    /// Waits until the attribute `name` of `css` satisfies `ok`; returns it.
    pub async fn wait_attr(
        &self,
        what: &str,
        timeout: Duration,
        css: &str,
        name: &str,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        wait_for(what, timeout, || async {
            self.attr(css, name).await.filter(|v| ok(v))
        })
        .await
    }

    /// Saves a screenshot as `target/screenshots/NAME.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// Ends the session (Drop kills whatever is left).
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

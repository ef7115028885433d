//! Fly.io: the one place that builds flyctl command lines, and `geolb fly`,
//! which prints (`--dry-run`) or runs them.
//!
//! Every builder returns the whole command line, program first, as
//! `Vec<String>`, so what would run is tested without flyctl. The apps are
//! in `fly/` (see `fly/README.md`); `geolb fly scale --count 0` takes a
//! region's servers down for real, the Fly counterpart of the lab's
//! `dc-outage`: flyctl destroys the machines it removes with a forced kill,
//! no SIGTERM and so no drain.

use crate::UsageError;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The flyctl program looked up on PATH by default.
pub const DEFAULT_FLYCTL: &str = "fly";

/// `geolb fly`: flyctl command lines for the apps in `fly/`.
#[derive(Debug, Args)]
pub struct FlyArgs {
    /// The flyctl program (a name on PATH or a path).
    #[arg(long, env = "GEOLB_FLYCTL", default_value = DEFAULT_FLYCTL, global = true)]
    pub flyctl: String,
    /// Print the flyctl command line instead of running it.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: FlyCommand,
}

/// The `geolb fly` subcommands.
#[derive(Debug, Subcommand)]
pub enum FlyCommand {
    /// Run COUNT machines of APP in REGION (`fly scale count`); 0 takes the region down
    /// (machines removed are destroyed with a forced kill, not drained).
    Scale {
        /// The Fly app.
        #[arg(long, env = "FLY_APP")]
        app: String,
        /// The Fly region, e.g. lhr.
        #[arg(long)]
        region: String,
        /// Machines wanted in the region.
        #[arg(long)]
        count: u32,
    },
    /// Deploy a locally built image (`make images`) with `fly deploy --local-only`.
    Deploy {
        /// The Fly app.
        #[arg(long, env = "FLY_APP")]
        app: String,
        /// The app's configuration, e.g. fly/server/fly.toml.
        #[arg(long)]
        config: PathBuf,
        /// The local image, e.g. geolb-server:latest (default: the config's [build] image).
        #[arg(long)]
        image: Option<String>,
    },
}

/// `fly scale count N --region R --app A --yes`.
pub fn scale_count(flyctl: &str, app: &str, region: &str, count: u32) -> Vec<String> {
    strings(&[
        flyctl,
        "scale",
        "count",
        &count.to_string(),
        "--region",
        region,
        "--app",
        app,
        "--yes",
    ])
}

/// `fly deploy --app A --config C [--image I] --local-only --ha=false`: the
/// image is taken from the local Docker engine and pushed to Fly's registry;
/// `--ha=false` leaves the machine count to `fly scale count`.
pub fn deploy(flyctl: &str, app: &str, config: &Path, image: Option<&str>) -> Vec<String> {
    let config = config.display().to_string();
    let mut line = strings(&[flyctl, "deploy", "--app", app, "--config", &config]);
    if let Some(image) = image {
        line.extend(strings(&["--image", image]));
    }
    line.extend(strings(&["--local-only", "--ha=false"]));
    line
}

/// `fly apps create A [--org O]`.
pub fn apps_create(flyctl: &str, app: &str, org: Option<&str>) -> Vec<String> {
    let mut line = strings(&[flyctl, "apps", "create", app]);
    if let Some(org) = org {
        line.extend(strings(&["--org", org]));
    }
    line
}

/// `fly secrets import --app A`: reads `NAME=VALUE` lines on stdin, so no
/// secret appears on a command line.
pub fn secrets_import(flyctl: &str, app: &str) -> Vec<String> {
    strings(&[flyctl, "secrets", "import", "--app", app])
}

/// `fly status --app A`.
pub fn status(flyctl: &str, app: &str) -> Vec<String> {
    strings(&[flyctl, "status", "--app", app])
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The command line `args` stands for.
pub fn line(args: &FlyArgs) -> Result<Vec<String>, UsageError> {
    match &args.command {
        FlyCommand::Scale { app, region, count } => {
            check_name("--app", app)?;
            check_name("--region", region)?;
            Ok(scale_count(&args.flyctl, app, region, *count))
        }
        FlyCommand::Deploy { app, config, image } => {
            check_name("--app", app)?;
            Ok(deploy(&args.flyctl, app, config, image.as_deref()))
        }
    }
}

/// App and region names are DNS labels: lowercase letters, digits and '-'.
pub fn check_name(flag: &str, value: &str) -> Result<(), UsageError> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match ok {
        true => Ok(()),
        false => Err(UsageError(format!(
            "{flag} {value:?} is not a Fly name (lowercase letters, digits and '-')"
        ))),
    }
}

/// The line as a shell would take it (words quoted where needed).
pub fn shell_line(line: &[String]) -> String {
    let quote = |w: &String| {
        let plain = !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
        match plain {
            true => w.clone(),
            false => format!("'{}'", w.replace('\'', r"'\''")),
        }
    };
    line.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Runs `line`, inheriting stdin, stdout and stderr; fails on a non-zero exit
/// and, in one line, when flyctl is not installed.
pub fn execute(line: &[String]) -> anyhow::Result<()> {
    let (program, rest) = line
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("empty flyctl command line"))?;
    let status = std::process::Command::new(program)
        .args(rest)
        .status()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "flyctl not found as `{program}`; install flyctl (https://fly.io/docs/flyctl/install/) or set --flyctl / GEOLB_FLYCTL to its path"
            ),
            _ => anyhow::anyhow!("cannot run `{program}`: {e}"),
        })?;
    match status.success() {
        true => Ok(()),
        false => Err(anyhow::anyhow!("`{}` failed ({status})", shell_line(line))),
    }
}

/// `geolb fly ...`: prints the flyctl line with `--dry-run`, else runs it.
pub fn run(args: &FlyArgs) -> anyhow::Result<ExitCode> {
    let line = line(args)?;
    if args.dry_run {
        crate::emit(&format!("{}\n", shell_line(&line)))?;
        return Ok(ExitCode::SUCCESS);
    }
    execute(&line)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn builds_flyctl_lines() {
        assert_eq!(
            scale_count("fly", "geolb-server", "lhr", 3),
            [
                "fly",
                "scale",
                "count",
                "3",
                "--region",
                "lhr",
                "--app",
                "geolb-server",
                "--yes"
            ]
        );
        assert_eq!(
            deploy(
                "fly",
                "geolb-server",
                Path::new("fly/server/fly.toml"),
                Some("geolb-server:latest")
            ),
            [
                "fly",
                "deploy",
                "--app",
                "geolb-server",
                "--config",
                "fly/server/fly.toml",
                "--image",
                "geolb-server:latest",
                "--local-only",
                "--ha=false"
            ]
        );
        assert!(!deploy("fly", "a", Path::new("f.toml"), None).contains(&"--image".to_string()));
        assert_eq!(
            apps_create("flyctl", "geolb-client", Some("personal")),
            [
                "flyctl",
                "apps",
                "create",
                "geolb-client",
                "--org",
                "personal"
            ]
        );
        assert_eq!(
            secrets_import("fly", "a"),
            ["fly", "secrets", "import", "--app", "a"]
        );
        assert_eq!(status("fly", "a"), ["fly", "status", "--app", "a"]);
    }

    /// `geolb fly ...` parsed from a command line.
    fn fly_args(args: &[&str]) -> FlyArgs {
        let cli = crate::cli::Cli::try_parse_from(args).unwrap();
        match cli.command {
            crate::cli::Command::Fly(args) => args,
            other => panic!("not fly: {other:?}"),
        }
    }

    #[test]
    fn the_cli_builds_the_same_lines() {
        let args = fly_args(&[
            "geolb",
            "fly",
            "scale",
            "--app",
            "geolb-server",
            "--region",
            "ams",
            "--count",
            "0",
            "--dry-run",
        ]);
        assert!(args.dry_run);
        assert_eq!(
            line(&args).unwrap(),
            scale_count("fly", "geolb-server", "ams", 0)
        );
        let args = fly_args(&[
            "geolb",
            "fly",
            "--flyctl",
            "/opt/flyctl",
            "deploy",
            "--app",
            "x",
            "--config",
            "fly/client/fly.toml",
        ]);
        assert_eq!(
            line(&args).unwrap(),
            deploy("/opt/flyctl", "x", Path::new("fly/client/fly.toml"), None)
        );
        let args = fly_args(&[
            "geolb", "fly", "scale", "--app", "x", "--region", "LHR", "--count", "1",
        ]);
        assert!(line(&args).is_err(), "upper-case region");
        assert!(crate::cli::Cli::try_parse_from([
            "geolb", "fly", "scale", "--app", "x", "--region", "lhr", "--count", "-1"
        ])
        .is_err());
    }

    #[test]
    fn quotes_for_the_shell() {
        let line = strings(&["fly", "deploy", "--config", "my apps/fly.toml", "it's"]);
        assert_eq!(
            shell_line(&line),
            r#"fly deploy --config 'my apps/fly.toml' 'it'\''s'"#
        );
    }

    #[test]
    fn a_missing_flyctl_says_to_install_it() {
        let line = scale_count("/nonexistent/geolb-test/fly", "a", "lhr", 1);
        let err = execute(&line).unwrap_err().to_string();
        assert!(err.contains("install flyctl"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_failing_flyctl_is_an_error() {
        assert!(execute(&strings(&["false"])).is_err());
        assert!(execute(&strings(&["true", "scale"])).is_ok());
    }
}

//! `geolb archive` and `geolb report export` refuse what they cannot do in
//! one clear line and a non-zero exit: a malformed `s3://` URL, no
//! credentials, an unreachable endpoint, a bucket that does not exist, a
//! wrong secret (at once, not a retry loop).

use geolb_tests::s3::{self, S3Server, BUCKET, KEY_ID};
use geolb_tests::tools::geolb_bin;
use geolb_tests::{free_port, ProcessGuard};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `geolb ARGS` with `env` (and no AWS variables from the test's own
/// environment); its exit code and stderr. A run that does not end within a
/// minute is a failure (a retry loop where an error was due).
async fn geolb(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let err = std::env::temp_dir().join(format!(
        "geolb-bad-s3-{}-{}",
        std::process::id(),
        free_port()
    ));
    let file = std::fs::File::create(&err).unwrap();
    let mut cmd = Command::new(geolb_bin());
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("GEOLB_S3_CREDENTIALS")
        .env("GEOLB_LAB_DIR", "/nonexistent/geolb-lab")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(file);
    let mut guard = ProcessGuard::spawn("geolb", &mut cmd).unwrap();
    let status = guard.wait_exit(Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(&err);
    let status = status.unwrap_or_else(|| panic!("geolb {args:?} did not stop: {text}"));
    (status.code(), text)
}

fn one_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {text}");
    assert!(lines[0].starts_with("geolb: "), "{text}");
    lines[0]
}

#[tokio::test]
async fn malformed_urls_and_missing_credentials_are_refused_before_anything_is_sent() {
    for url in ["geolb/lab", "s3://", "s3://Bad_Bucket/x", "s3://geolb//x"] {
        let (code, err) = geolb(
            &["--control", "nats://127.0.0.1:1", "archive", "--to", url],
            &[],
        )
        .await;
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(
            one_line(&err).contains("s3://BUCKET/PREFIX"),
            "{url}: {err}"
        );
        let (code, err) = geolb(
            &[
                "--control",
                "nats://127.0.0.1:1",
                "report",
                "export",
                "--all",
                "--to",
                url,
            ],
            &[],
        )
        .await;
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(
            one_line(&err).contains("s3://BUCKET/PREFIX"),
            "{url}: {err}"
        );
    }
    let (code, err) = geolb(
        &[
            "--control",
            "nats://127.0.0.1:1",
            "archive",
            "--to",
            "s3://geolb/lab",
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        one_line(&err).contains("no S3 credentials: set AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    let (code, err) = geolb(
        &[
            "--control",
            "nats://127.0.0.1:1",
            "archive",
            "--to",
            "s3://geolb/lab",
            "--s3-credentials",
            "/nonexistent/creds",
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        one_line(&err).contains("cannot read S3 credentials file /nonexistent/creds"),
        "{err}"
    );
}

#[tokio::test]
async fn s3_failures_name_the_bucket_and_the_endpoint() {
    let Some(weed) = s3::available("s3_failures_name_the_bucket_and_the_endpoint") else {
        return;
    };
    let server = S3Server::start(&weed).await;
    let endpoint = server.endpoint();
    let env = server.env();
    let to = format!("s3://{BUCKET}/bad");
    let archive = |to: &str, endpoint: &str| {
        vec![
            "--control".to_string(),
            "nats://127.0.0.1:1".into(),
            "archive".into(),
            "--to".into(),
            to.into(),
            "--endpoint".into(),
            endpoint.into(),
        ]
    };
    let run = |args: Vec<String>, env: Vec<(&'static str, &'static str)>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        geolb(&args, &env).await
    };

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let (code, err) = run(archive(&to, &nowhere), env.to_vec()).await;
    assert_eq!(code, Some(1), "{err}");
    let line = one_line(&err);
    assert!(
        line.contains(&format!(
            "cannot reach the S3 endpoint {nowhere} (bucket {BUCKET})"
        )),
        "{err}"
    );

    let (code, err) = run(archive("s3://no-such-bucket/x", &endpoint), env.to_vec()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        one_line(&err).contains(&format!(
            "bucket no-such-bucket does not exist at the S3 endpoint {endpoint}"
        )),
        "{err}"
    );

    let wrong = vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ];
    let (code, err) = run(archive(&to, &endpoint), wrong).await;
    assert_eq!(code, Some(1), "{err}");
    let line = one_line(&err);
    assert!(
        line.contains(&format!("the S3 endpoint {endpoint} refused the credentials for bucket {BUCKET}: SignatureDoesNotMatch")),
        "{err}"
    );
    assert!(
        !line.contains("not-the-secret"),
        "the secret is never printed: {err}"
    );

    let unknown = vec![
        ("AWS_ACCESS_KEY_ID", "nobody"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
    ];
    let (code, err) = run(archive(&to, &endpoint), unknown).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(one_line(&err).contains("refused the credentials"), "{err}");

    let (code, err) = run(archive(&to, "s3.example.com"), env.to_vec()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(one_line(&err).contains("must start with https://"), "{err}");
}

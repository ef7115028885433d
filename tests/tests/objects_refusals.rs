//! What `upgrade --to obj:NAME` refuses, each with a typed error and the
//! agent left exactly as it was (same server process and version, nothing
//! kept in its objects folder): no bucket yet, a missing object, a file
//! that is not an executable, one for another architecture (said by its
//! info, or only by its bytes), and a chunk corrupted after the put (the
//! sha256 does not match). `geolb binary put` refuses the same files
//! before they are stored; an agent beside a container refuses obj:NAME.

use geolb_proto::elf;
use geolb_proto::objects::{BINARIES_BUCKET, META_ARCH};
use geolb_tests::http::get_json;
use geolb_tests::objects::{
    corrupt_chunk, files_under, geolb_as_coordinator, geolb_json_as_coordinator, raw_put,
};
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::{default_version, nats_server_bin, upgrade_version, wait_for, ServerConfig};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// An ELF header for `arch`, padded past the first chunk.
fn program_for(arch: &str) -> Vec<u8> {
    let mut bytes = elf::header_for(arch).unwrap().to_vec();
    bytes.resize(200_000, 0);
    bytes
}

#[tokio::test]
async fn bad_objects_are_refused_with_typed_errors_and_change_nothing() {
    let cp = SecureControlPlane::start(&[("ref-1", "lon")], 0);
    let objects = std::env::temp_dir().join(format!("geolb-objects-ref-{}", std::process::id()));
    let (_agent, server) = cp
        .agent("ref-1", "lon")
        .arg("--objects-dir")
        .arg(objects.display().to_string())
        .server(
            default_version(),
            ServerConfig::default().server_name("ref-1"),
        );
    let state = || {
        let (_, rows) = geolb_json_as_coordinator(&cp, &["cmd", "status", "ref-1"]);
        let varz = get_json(&format!("{}/varz", server.monitor_url())).unwrap_or(Value::Null);
        (
            rows[0]["reply"]["state"]["replicas"][0]["pid"].clone(),
            varz["version"].clone(),
        )
    };
    let first = wait_for("the agent answers with its server up", T, || async {
        let (pid, version) = state();
        (pid.is_u64() && version == default_version()).then_some((pid, version))
    })
    .await;
    let refused = |name: &str, kind: &str| {
        for check in [true, false] {
            let mut args = vec!["cmd", "upgrade", "ref-1", "--to", name];
            if check {
                args.push("--check");
            }
            let (code, rows) = geolb_json_as_coordinator(&cp, &args);
            assert_eq!(code, 1, "{name} (check {check}): {rows}");
            let error = &rows[0]["reply"]["error"];
            assert_eq!(error["kind"], kind, "{name} (check {check}): {rows}");
            assert_eq!(state(), first, "{name}: the server was not touched");
            assert_eq!(
                files_under(&objects),
                Vec::<std::path::PathBuf>::new(),
                "{name}"
            );
        }
    };

    // Nothing stored yet: no bucket at all.
    refused("obj:nats-next", "not_installed");

    let (coordinator, _) = cp.connect_as("coordinator").await;
    // Stored by another tool, bypassing `geolb binary put`'s checks.
    raw_put(
        &coordinator,
        BINARIES_BUCKET,
        "notes",
        b"just some text\n",
        &[],
    )
    .await;
    refused("obj:notes", "not_executable");
    let other = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    raw_put(
        &coordinator,
        BINARIES_BUCKET,
        "arm-said",
        &program_for(other),
        &[(META_ARCH, other)],
    )
    .await;
    refused("obj:arm-said", "not_executable");
    raw_put(
        &coordinator,
        BINARIES_BUCKET,
        "arm-bytes",
        &program_for(other),
        &[],
    )
    .await;
    refused("obj:arm-bytes", "not_executable");
    refused("obj:missing", "not_installed");

    // Info that lies: the check passes on it, the fetch refuses at the first chunk.
    let arch = std::env::consts::ARCH;
    raw_put(
        &coordinator,
        BINARIES_BUCKET,
        "liar",
        b"#!/bin/sh\nexit 0\n",
        &[(META_ARCH, arch)],
    )
    .await;
    let (code, rows) = geolb_json_as_coordinator(
        &cp,
        &["cmd", "upgrade", "ref-1", "--to", "obj:liar", "--check"],
    );
    assert_eq!(code, 0, "the check trusts the info: {rows}");
    let (code, rows) =
        geolb_json_as_coordinator(&cp, &["cmd", "upgrade", "ref-1", "--to", "obj:liar"]);
    assert_eq!(code, 1);
    assert_eq!(
        rows[0]["reply"]["error"]["kind"], "not_executable",
        "{rows}"
    );
    assert_eq!(state(), first);
    assert!(files_under(&objects).is_empty());

    // A real binary whose middle chunk was corrupted after the put.
    let bin = nats_server_bin(upgrade_version()).display().to_string();
    let put = geolb_as_coordinator(&cp, &["binary", "put", &bin, "--name", "corrupt"]);
    assert!(put.status.success(), "{put:?}");
    corrupt_chunk(&coordinator, BINARIES_BUCKET, "corrupt").await;
    let (code, rows) = geolb_json_as_coordinator(
        &cp,
        &["cmd", "upgrade", "ref-1", "--to", "obj:corrupt", "--check"],
    );
    assert_eq!(code, 0, "the info alone looks right: {rows}");
    let (code, rows) =
        geolb_json_as_coordinator(&cp, &["cmd", "upgrade", "ref-1", "--to", "obj:corrupt"]);
    assert_eq!(code, 1);
    let error = &rows[0]["reply"]["error"];
    assert_eq!(error["kind"], "checksum_mismatch", "{rows}");
    assert!(
        error["message"].as_str().unwrap().contains("sha256"),
        "{error}"
    );
    assert_eq!(state(), first, "nothing stopped");
    assert!(files_under(&objects).is_empty(), "nothing kept");

    let _ = std::fs::remove_dir_all(&objects);
}

#[tokio::test]
async fn binary_put_refuses_what_would_not_run_here() {
    let cp = SecureControlPlane::start(&[], 0);
    let dir = std::env::temp_dir().join(format!("geolb-objects-put-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let cases = [
        (
            "notes.txt",
            b"release notes\n".to_vec(),
            "not an ELF executable",
        ),
        (
            "run.sh",
            b"#!/bin/sh\nexec nats-server\n".to_vec(),
            "not an ELF executable",
        ),
        ("nats-arm", program_for(other), "built for"),
    ];
    for (name, bytes, says) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = geolb_as_coordinator(&cp, &["binary", "put", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    let bad_name = geolb_as_coordinator(
        &cp,
        &[
            "binary",
            "put",
            nats_server_bin(upgrade_version()).to_str().unwrap(),
            "--name",
            "../x",
        ],
    );
    assert_eq!(bad_name.status.code(), Some(1));
    let (code, listed) = geolb_json_as_coordinator(&cp, &["binary", "ls"]);
    assert_eq!(
        (code, listed),
        (0, serde_json::json!([])),
        "nothing was stored"
    );

    // Data takes any file; `data ls` lists it, `data rm` removes it.
    let page = dir.join("page.html");
    std::fs::write(&page, "<html><body>hello</body></html>").unwrap();
    let (code, put) = geolb_json_as_coordinator(&cp, &["data", "put", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{put}");
    assert_eq!(put["name"], "page.html");
    assert_eq!(put["size"], 31);
    let (_, listed) = geolb_json_as_coordinator(&cp, &["data", "ls"]);
    assert_eq!(listed[0]["name"], "page.html");
    let rm = geolb_as_coordinator(&cp, &["data", "rm", "page.html"]);
    assert!(rm.status.success());
    let again = geolb_as_coordinator(&cp, &["data", "rm", "page.html"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no data named page.html"));
    let _ = std::fs::remove_dir_all(&dir);
}

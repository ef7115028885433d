//! `upgrade --to obj:NAME` on real agents of a super-cluster, over the
//! least-privilege control plane: `geolb binary put` of a real nats-server
//! (listed with its version, size and sha256), `--check` changing nothing,
//! a region upgraded to the object (each agent fetched it, sha256 as
//! stored, execute bit), a second upgrade to it taking the local copy, and
//! the object removed mid-rollout: the next server refuses
//! (`not_installed`) and is left exactly as it was.

use geolb_tests::http::get_json;
use geolb_tests::objects::{files_under, geolb_as_coordinator, geolb_json_as_coordinator};
use geolb_tests::secure::SecureControlPlane;
use geolb_tests::{
    agent::AgentServer, default_version, free_port, nats_server_bin, upgrade_version, wait_for,
    ProcessGuard, ServerConfig,
};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const NAMES: [&str; 3] = ["lon-1", "lon-2", "ams-1"];

struct Server {
    _agent: ProcessGuard,
    server: AgentServer,
    objects: PathBuf,
}

fn version(server: &AgentServer) -> Value {
    get_json(&format!("{}/varz", server.monitor_url())).unwrap_or(Value::Null)["version"].clone()
}

fn pid(cp: &SecureControlPlane, id: &str) -> Value {
    let (_, rows) = geolb_json_as_coordinator(cp, &["cmd", "status", id]);
    rows[0]["reply"]["state"]["replicas"][0]["pid"].clone()
}

/// lon-1 and lon-2 in cluster lon, ams-1 in cluster ams, joined by
/// gateways, each under an agent with its own identity and objects folder.
fn super_cluster(cp: &SecureControlPlane, root: &std::path::Path) -> Vec<Server> {
    let routes: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
    let gateways: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
    let url = |port: u16| format!("nats://127.0.0.1:{port}");
    let gateway_list = vec![
        ("lon".to_string(), vec![url(gateways[0]), url(gateways[1])]),
        ("ams".to_string(), vec![url(gateways[2])]),
    ];
    NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let region = &name[..3];
            let peers: Vec<String> = (0..2)
                .filter(|j| region == "lon" && *j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", routes[j]))
                .collect();
            let config = ServerConfig::default()
                .server_name(*name)
                .cluster(region, routes[i], peers)
                .gateway(region, gateways[i], gateway_list.clone());
            let objects = root.join(name);
            let (agent, server) = cp
                .agent(name, region)
                .arg("--objects-dir")
                .arg(objects.display().to_string())
                .server(default_version(), config);
            Server {
                _agent: agent,
                server,
                objects,
            }
        })
        .collect()
}

#[tokio::test]
async fn a_region_upgrades_to_a_stored_binary() {
    let cp = SecureControlPlane::start(&[("lon-1", "lon"), ("lon-2", "lon"), ("ams-1", "ams")], 0);
    let root = std::env::temp_dir().join(format!("geolb-objects-up-{}", std::process::id()));
    let fleet = super_cluster(&cp, &root);
    wait_for("every agent answers with its server up", T, || async {
        let all_up = NAMES
            .iter()
            .zip(&fleet)
            .all(|(id, s)| pid(&cp, id).is_u64() && version(&s.server) == default_version());
        all_up.then_some(())
    })
    .await;

    let binary = nats_server_bin(upgrade_version());
    let file_size = std::fs::metadata(&binary).unwrap().len();
    let bin = binary.display().to_string();
    let (code, put) =
        geolb_json_as_coordinator(&cp, &["binary", "put", &bin, "--name", "nats-next"]);
    assert_eq!(code, 0, "{put}");
    let (code, listed) = geolb_json_as_coordinator(&cp, &["binary", "ls"]);
    assert_eq!(code, 0);
    let entry = &listed[0];
    assert_eq!(entry["name"], "nats-next");
    assert_eq!(entry["size"], file_size);
    assert_eq!(entry["version"], upgrade_version());
    assert_eq!(entry["arch"], std::env::consts::ARCH);
    let sha = geolb_tests::objects::sha256_hex(&std::fs::read(&binary).unwrap());
    assert_eq!(entry["sha256"], sha.as_str());
    assert_eq!(put, *entry, "put prints what ls lists");
    let table = geolb_as_coordinator(&cp, &["binary", "ls"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("nats-next") && text.contains(upgrade_version()) && text.contains(&sha),
        "{text}"
    );

    // A check resolves from the info alone: nothing fetched, nothing changed.
    let (code, rows) = geolb_json_as_coordinator(
        &cp,
        &[
            "cmd",
            "upgrade",
            "region=lon",
            "--to",
            "obj:nats-next",
            "--check",
        ],
    );
    assert_eq!(code, 0, "{rows}");
    for s in &fleet {
        assert!(
            files_under(&s.objects).is_empty(),
            "a check fetched nothing"
        );
        assert_eq!(version(&s.server), default_version());
    }

    let (code, rows) = geolb_json_as_coordinator(
        &cp,
        &["cmd", "upgrade", "region=lon", "--to", "obj:nats-next"],
    );
    assert_eq!(code, 0, "{rows}");
    for s in &fleet[..2] {
        assert_eq!(version(&s.server), upgrade_version(), "acked once healthy");
        let files = files_under(&s.objects);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(
            files[0],
            s.objects
                .join("nats-next")
                .join(format!("sha256-{sha}"))
                .join("nats-server")
        );
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "the execute bit");
        let kept = geolb_tests::objects::sha256_hex(&std::fs::read(&files[0]).unwrap());
        assert_eq!(kept, sha);
    }
    assert_eq!(
        version(&fleet[2].server),
        default_version(),
        "ams-1 untouched"
    );

    // Back to the installed version, then to the object again: the local copy.
    let copy = files_under(&fleet[0].objects)[0].clone();
    let inode = std::fs::metadata(&copy).unwrap().ino();
    let (code, rows) =
        geolb_json_as_coordinator(&cp, &["cmd", "upgrade", "lon-1", "--to", default_version()]);
    assert_eq!(code, 0, "{rows}");
    assert_eq!(version(&fleet[0].server), default_version());
    let (code, rows) =
        geolb_json_as_coordinator(&cp, &["cmd", "upgrade", "lon-1", "--to", "obj:nats-next"]);
    assert_eq!(code, 0, "{rows}");
    assert_eq!(version(&fleet[0].server), upgrade_version());
    assert_eq!(
        std::fs::metadata(&copy).unwrap().ino(),
        inode,
        "the second upgrade used the local copy"
    );

    // Removed mid-rollout: the next server refuses before anything stops.
    let removed = geolb_as_coordinator(&cp, &["binary", "rm", "nats-next"]);
    assert!(removed.status.success(), "{removed:?}");
    let before = pid(&cp, "ams-1");
    for extra in [&["--check"][..], &[]] {
        let mut args = vec!["cmd", "upgrade", "ams-1", "--to", "obj:nats-next"];
        args.extend_from_slice(extra);
        let (code, rows) = geolb_json_as_coordinator(&cp, &args);
        assert_eq!(code, 1, "{rows}");
        assert_eq!(rows[0]["reply"]["error"]["kind"], "not_installed", "{rows}");
    }
    assert_eq!(pid(&cp, "ams-1"), before, "ams-1 was not stopped");
    assert_eq!(version(&fleet[2].server), default_version());
    assert!(
        files_under(&fleet[2].objects).is_empty(),
        "ams-1 kept nothing"
    );
    let (_, listed) = geolb_json_as_coordinator(&cp, &["binary", "ls"]);
    assert_eq!(listed, serde_json::json!([]));

    drop(fleet);
    let _ = std::fs::remove_dir_all(&root);
}

//! Tests of the containerised lab's plan.
use super::*;
use crate::lab::config::LabConfig;
use crate::lab::topology::Placement;

fn state() -> LabState {
    LabState {
        dir: PathBuf::from("/srv/lab"),
        config: LabConfig::default(),
        control_url: "nats://127.0.0.1:14000".into(),
        gateway_secret: String::new(),
        backend: crate::lab::state::Backend::Containers(DockerLab::new(Path::new("/srv/lab"))),
        started_at_ms: 0,
        ready: false,
        dashboard_url: None,
        processes: Vec::new(),
        identities: Vec::new(),
    }
}

#[test]
fn names_and_labels_follow_the_lab_directory() {
    let a = DockerLab::new(Path::new("/srv/lab"));
    assert_eq!(a, DockerLab::new(Path::new("/srv/lab")));
    assert_ne!(a.prefix, DockerLab::new(Path::new("/srv/lab2")).prefix);
    assert_eq!(a.owner, "lab:/srv/lab");
    assert!(a.region_network("lon").starts_with("geolb-"));
}

#[test]
fn plans_each_kind_of_container() {
    let state = state();
    let lab = state.backend.docker().cloned().unwrap();
    let t = Topology::plan_for(&state.config, Placement::Containers);
    let control = spec(
        &lab,
        &state,
        &t,
        "control",
        &Kind::Control,
        vec!["x".into()],
    );
    assert_eq!(control.publish, vec![(4222, 14000), (8222, 14001)]);
    assert_eq!(control.networks[0].1, vec!["control"]);
    assert!(control
        .binds
        .contains(&"/srv/lab/control:/data".to_string()));

    let wan = spec(&lab, &state, &t, "wan", &Kind::Wan, vec!["x".into()]);
    assert_eq!(wan.networks.len(), 4, "control and every region");
    assert!(wan.networks[1..].iter().all(|(_, a)| a == &vec!["wan"]));

    let server = spec(
        &lab,
        &state,
        &t,
        "lon-1",
        &Kind::Server("lon".into()),
        vec![],
    );
    assert_eq!(server.image, SERVER_IMAGE);
    assert_eq!(
        server.networks[0],
        (lab.region_network("lon"), vec!["lon-1".into()])
    );
    assert_eq!(server.binds, vec!["/srv/lab:/lab:ro"]);
    assert!(
        server.publish.is_empty(),
        "only the control plane is published"
    );

    let client = spec(
        &lab,
        &state,
        &t,
        "ams-rtt",
        &Kind::Client("ams".into()),
        vec![],
    );
    assert_eq!(client.image, CLIENT_IMAGE);
    assert_eq!(client.name, format!("{}-ams-rtt", lab.prefix));
}

#[test]
fn paths_inside_the_lab_are_seen_under_the_mount() {
    let state = state();
    assert_eq!(
        seen(&state, Path::new("/srv/lab/keys/agent-lon-1.nk")),
        PathBuf::from("/lab/keys/agent-lon-1.nk")
    );
    assert_eq!(seen(&state, Path::new("/etc/x")), PathBuf::from("/etc/x"));
}

//! Tests of `recreate.rs`.
use super::*;
use bollard::models::{ContainerConfig, HostConfig, NetworkSettings};

fn strings(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|s| s.to_string()).collect())
}

fn old_container(entrypoint: &[&str], cmd: &[&str]) -> ContainerInspectResponse {
    let id = "0123456789abcdef0123";
    let endpoint = |aliases: &[&str]| EndpointSettings {
        aliases: strings(aliases),
        ip_address: Some("172.18.0.5".into()),
        network_id: Some("n1".into()),
        ..EndpointSettings::default()
    };
    ContainerInspectResponse {
        id: Some(id.into()),
        name: Some("/lon-1".into()),
        config: Some(ContainerConfig {
            hostname: Some("0123456789ab".into()),
            image: Some("geolb-server:old".into()),
            env: strings(&["PATH=/old", "GEOLB_ID=lon-1"]),
            entrypoint: strings(entrypoint),
            cmd: strings(cmd),
            exposed_ports: strings(&["4222/tcp", "9999/tcp"]),
            labels: Some(HashMap::from([
                ("title".to_string(), "geolb-server".to_string()),
                ("owner".to_string(), "lab".to_string()),
            ])),
            working_dir: Some(String::new()),
            ..ContainerConfig::default()
        }),
        host_config: Some(HostConfig {
            network_mode: Some("lab".into()),
            ..HostConfig::default()
        }),
        network_settings: Some(NetworkSettings {
            networks: Some(HashMap::from([
                ("lab".to_string(), endpoint(&["0123456789ab", "lon-1.lab"])),
                ("wan".to_string(), endpoint(&["0123456789ab"])),
            ])),
            ..NetworkSettings::default()
        }),
        ..ContainerInspectResponse::default()
    }
}

fn old_image() -> ImageConfig {
    ImageConfig {
        env: strings(&["PATH=/old"]),
        entrypoint: strings(&["/agent", "run", "--"]),
        cmd: strings(&["nats-server", "-c", "default.conf"]),
        exposed_ports: strings(&["4222/tcp"]),
        labels: Some(HashMap::from([(
            "title".to_string(),
            "geolb-server".to_string(),
        )])),
        ..ImageConfig::default()
    }
}

#[test]
fn keeps_what_the_user_gave_and_leaves_the_image_defaults_to_the_new_image() {
    let old = old_container(&["/agent", "run", "--"], &["nats-server", "-c", "my.conf"]);
    let (body, rest) = recreate_body(&old, Some(&old_image()), "geolb-server:new");
    assert_eq!(body.image.as_deref(), Some("geolb-server:new"));
    assert_eq!(body.env, strings(&["GEOLB_ID=lon-1"]));
    assert_eq!(body.entrypoint, None, "the image's entrypoint");
    assert_eq!(body.cmd, strings(&["nats-server", "-c", "my.conf"]));
    assert_eq!(body.exposed_ports, strings(&["9999/tcp"]));
    assert_eq!(
        body.labels,
        Some(HashMap::from([("owner".to_string(), "lab".to_string())]))
    );
    assert_eq!(body.hostname, None, "the old id is not a hostname to keep");
    assert_eq!(body.working_dir, None);
    let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
    let lab = &endpoints["lab"];
    assert_eq!(lab.aliases, strings(&["lon-1.lab"]));
    assert_eq!(lab.ip_address, None, "engine-assigned address not kept");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0, "wan");
    assert_eq!(rest[0].1.aliases, None);
}

#[test]
fn a_command_given_with_an_own_entrypoint_is_kept() {
    let image = old_image();
    let same_cmd: Vec<&str> = ["nats-server", "-c", "default.conf"].to_vec();
    let old = old_container(&["/bin/sh", "-c"], &same_cmd);
    let (body, _) = recreate_body(&old, Some(&image), "x:1");
    assert_eq!(body.entrypoint, strings(&["/bin/sh", "-c"]));
    assert_eq!(body.cmd, strings(&same_cmd));
    let old = old_container(&["/agent", "run", "--"], &same_cmd);
    let (body, _) = recreate_body(&old, Some(&image), "x:1");
    assert_eq!((body.entrypoint, body.cmd), (None, None));
}

#[test]
fn without_the_old_image_everything_is_kept() {
    let old = old_container(&["/agent"], &["serve"]);
    let (body, _) = recreate_body(&old, None, "x:1");
    assert_eq!(body.env, strings(&["PATH=/old", "GEOLB_ID=lon-1"]));
    assert_eq!(body.entrypoint, strings(&["/agent"]));
}

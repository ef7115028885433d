//! Who may publish and subscribe what on the control plane, rendered as a
//! nats-server `authorization` block of nkey users (pure: no files, no keys
//! made here).
//!
//! - an **agent** publishes only its own `geolb.{hb,evt,metrics,client}.<region>.<id>`
//!   and replies to the requests it receives (`allow_responses`); it
//!   subscribes only to its own `geolb.agent.<id>.>`, its own front links'
//!   `geolb.wan.<id>.>` (`run --front`), the ADR-32 discovery subjects of
//!   the `geolb-agent` and `geolb-wan` services and its own inbox
//!   (`_INBOX.geolb-agent.<id>.>`); it may read the object buckets of
//!   binaries and data with direct gets, and nothing else of JetStream (no
//!   consumer: a push consumer could deliver to a subject its creator may
//!   not publish to);
//! - the **coordinator** alone publishes commands (`geolb.agent.>`), sends
//!   discovery requests, uses the JetStream API of its streams (the object
//!   buckets among them, which only it writes), and reads every telemetry
//!   subject and its `_INBOX.>`;
//! - a **routing** component (the lab's GeoDNS, `dns-<id>`, and anycast
//!   router, `anycast-<id>`) subscribes only to its own
//!   `geolb.<kind>.<id>.>` endpoints and its service's discovery, publishes
//!   only its changes on `geolb.routing.<id>.>`, and replies;
//! - a **client** (observer: dashboards, `nats sub`, `nats micro ls`) reads
//!   telemetry and may send discovery requests; it publishes nothing else;
//! - the **archiver** reads the telemetry stream through its consumers and
//!   acknowledges; it manages no stream and sees only its own replies.

use geolb_proto::objects::{self, BINARIES_BUCKET, DATA_BUCKET};
use geolb_proto::subject::SERVICE_NAME;
use std::fmt::Write;

/// What one identity may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
    /// Whether it may answer the requests it receives.
    pub allow_responses: bool,
}

/// The ADR-32 discovery subjects the async-nats service module subscribes to
/// (`$SRV.<verb>`, `$SRV.<verb>.<name>`, `$SRV.<verb>.<name>.<id>`).
fn discovery() -> Vec<String> {
    let mut subjects: Vec<String> = ["PING", "INFO", "STATS"]
        .iter()
        .map(|verb| format!("$SRV.{verb}"))
        .collect();
    subjects.push(format!("$SRV.*.{SERVICE_NAME}"));
    subjects.push(format!("$SRV.*.{SERVICE_NAME}.*"));
    subjects
}

fn telemetry() -> Vec<String> {
    [
        "geolb.hb.>",
        "geolb.evt.>",
        "geolb.metrics.>",
        "geolb.client.>",
        geolb_proto::routing::CHANGES_ALL,
        geolb_proto::scenario::SCENARIOS_ALL,
    ]
    .map(String::from)
    .to_vec()
}

/// The buckets agents read and the coordinator writes.
pub const BUCKETS: [&str; 2] = [BINARIES_BUCKET, DATA_BUCKET];

/// What reading the object buckets takes: direct gets of their streams
/// (an object's info is the last message of its metadata subject, its
/// chunks the next messages of its chunk subject), nothing that writes.
pub fn objects_reader() -> Vec<String> {
    BUCKETS
        .iter()
        .flat_map(|bucket| {
            let stream = objects::stream(bucket);
            [
                format!("$JS.API.DIRECT.GET.{stream}"),
                format!("$JS.API.DIRECT.GET.{stream}.>"),
            ]
        })
        .collect()
}

/// What the coordinator publishes to write the object buckets beyond the
/// JetStream API of their streams: their subjects, and the flow-control
/// replies of the ordered consumers that list them.
pub fn objects_writer() -> Vec<String> {
    BUCKETS
        .iter()
        .flat_map(|bucket| {
            [
                objects::subjects(bucket),
                format!("$JS.FC.{}.>", objects::stream(bucket)),
            ]
        })
        .collect()
}

/// Agent `id` of `region`.
pub fn agent(id: &str, region: &str) -> Permissions {
    let mut publish: Vec<String> = ["hb", "evt", "metrics", "client"]
        .iter()
        .map(|kind| format!("geolb.{kind}.{region}.{id}"))
        .collect();
    publish.extend(objects_reader());
    let mut subscribe = vec![format!("geolb.agent.{id}.>")];
    subscribe.extend(discovery());
    for subject in emulator(id).subscribe {
        if !subscribe.contains(&subject) {
            subscribe.push(subject);
        }
    }
    subscribe.push(format!("{}.>", objects::inbox_prefix(id)));
    Permissions {
        publish,
        subscribe,
        allow_responses: true,
    }
}

/// A WAN emulator: its own `geolb.wan.<id>.*` endpoints, discovery, replies.
pub fn emulator(id: &str) -> Permissions {
    let mut subscribe = vec![format!("geolb.wan.{id}.>")];
    subscribe.extend(["PING", "INFO", "STATS"].map(|verb| format!("$SRV.{verb}")));
    let service = geolb_proto::wan::SERVICE_NAME;
    subscribe.extend([format!("$SRV.*.{service}"), format!("$SRV.*.{service}.*")]);
    Permissions {
        publish: Vec::new(),
        subscribe,
        allow_responses: true,
    }
}

/// A routing component of `kind` (`dns` or `anycast`) with id `id`.
pub fn routing(kind: &str, id: &str) -> Permissions {
    let service = match kind {
        "dns" => geolb_proto::routing::dns::SERVICE_NAME,
        _ => geolb_proto::routing::anycast::SERVICE_NAME,
    };
    let mut subscribe = vec![format!("geolb.{kind}.{id}.>")];
    subscribe.extend(["PING", "INFO", "STATS"].map(|verb| format!("$SRV.{verb}")));
    subscribe.extend([format!("$SRV.*.{service}"), format!("$SRV.*.{service}.*")]);
    Permissions {
        publish: vec![geolb_proto::routing::change_subject(id, ">")],
        subscribe,
        allow_responses: true,
    }
}

/// The JetStream API subjects that manage and read stream `name` only.
pub fn jetstream(name: &str) -> Vec<String> {
    vec![
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.*.{name}"),
        format!("$JS.API.STREAM.MSG.*.{name}"),
        format!("$JS.API.DIRECT.GET.{name}"),
        format!("$JS.API.DIRECT.GET.{name}.>"),
        format!("$JS.API.CONSUMER.*.{name}"),
        format!("$JS.API.CONSUMER.*.{name}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{name}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{name}.>"),
        format!("$JS.ACK.{name}.>"),
    ]
}

/// The coordinator, managing `streams` and publishing `extra` subjects too.
pub fn coordinator(streams: &[String], extra: &[String]) -> Permissions {
    let mut publish = vec![
        "geolb.agent.>".to_string(),
        "$SRV.>".to_string(),
        geolb_proto::scenario::SCENARIOS_ALL.to_string(),
    ];
    for name in streams {
        for subject in jetstream(name) {
            if !publish.contains(&subject) {
                publish.push(subject);
            }
        }
    }
    publish.extend(extra.iter().cloned());
    let mut subscribe = telemetry();
    subscribe.push("_INBOX.>".to_string());
    Permissions {
        publish,
        subscribe,
        allow_responses: false,
    }
}

/// The archiver: reads stream `stream` through its own consumers and
/// acknowledges what it stored; it may not create, change or delete
/// streams, delete consumers, publish telemetry or send commands, and it
/// receives replies on its own inbox prefix only.
pub fn archiver(stream: &str) -> Permissions {
    let publish = vec![
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
    ];
    Permissions {
        publish,
        subscribe: vec![format!("{}.>", crate::archive::connect::INBOX_PREFIX)],
        allow_responses: false,
    }
}

/// The JetStream API subjects that read stream `name` (its info, its
/// messages, ephemeral consumers of it) and can change nothing in it.
pub fn jetstream_read(name: &str) -> Vec<String> {
    vec![
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{name}"),
        format!("$JS.API.STREAM.MSG.GET.{name}"),
        format!("$JS.API.DIRECT.GET.{name}"),
        format!("$JS.API.DIRECT.GET.{name}.>"),
        format!("$JS.API.CONSUMER.CREATE.{name}"),
        format!("$JS.API.CONSUMER.CREATE.{name}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{name}.>"),
    ]
}

/// A client or observer (a dashboard): reads telemetry and the `streams`
/// (the kept heartbeats and reports), may ask who is there.
pub fn client(streams: &[String]) -> Permissions {
    let mut subscribe = telemetry();
    subscribe.push("_INBOX.>".to_string());
    let mut publish = discovery();
    for name in streams {
        for subject in jetstream_read(name) {
            if !publish.contains(&subject) {
                publish.push(subject);
            }
        }
    }
    Permissions {
        publish,
        subscribe,
        allow_responses: false,
    }
}

/// One nkey user of the `authorization` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// A comment naming it (`agent lon-1`).
    pub comment: String,
    /// Its public nkey (`U...`).
    pub nkey: String,
    /// What it may do.
    pub permissions: Permissions,
}

/// The nats-server `authorization { users = [...] }` block.
pub fn render(users: &[User]) -> String {
    let mut out = String::from("authorization {\n  users = [\n");
    for user in users {
        let p = &user.permissions;
        let _ = writeln!(out, "    # {}", user.comment);
        let _ = writeln!(out, "    {{ nkey: {}, permissions: {{", q(&user.nkey));
        let _ = writeln!(out, "        publish: {{ allow: {} }}", list(&p.publish));
        let _ = writeln!(
            out,
            "        subscribe: {{ allow: {} }}",
            list(&p.subscribe)
        );
        if p.allow_responses {
            out.push_str("        allow_responses: true\n");
        }
        out.push_str("    } }\n");
    }
    out.push_str("  ]\n}\n");
    out
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_publishes_only_its_own_subjects() {
        let p = agent("lon-1", "lon");
        assert_eq!(
            p.publish[..4],
            [
                "geolb.hb.lon.lon-1",
                "geolb.evt.lon.lon-1",
                "geolb.metrics.lon.lon-1",
                "geolb.client.lon.lon-1"
            ]
        );
        assert_eq!(p.subscribe[0], "geolb.agent.lon-1.>");
        assert!(p.subscribe.contains(&"geolb.wan.lon-1.>".to_string()));
        let mut unique = p.subscribe.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), p.subscribe.len(), "{:?}", p.subscribe);
        assert!(p.subscribe.contains(&"$SRV.*.geolb-agent.*".to_string()));
        assert!(p.allow_responses);
        assert!(!p.publish.iter().any(|s| s.starts_with("geolb.agent")));
        assert!(p
            .subscribe
            .contains(&"_INBOX.geolb-agent.lon-1.>".to_string()));
        assert!(!p.subscribe.iter().any(|s| s == "_INBOX.>"));
    }

    #[test]
    fn agents_read_the_buckets_and_write_nothing_of_jetstream() {
        let p = agent("lon-1", "lon");
        let jetstream: Vec<&String> = p.publish.iter().filter(|s| s.starts_with('$')).collect();
        assert_eq!(
            jetstream,
            [
                "$JS.API.DIRECT.GET.OBJ_GEOLB_BINARIES",
                "$JS.API.DIRECT.GET.OBJ_GEOLB_BINARIES.>",
                "$JS.API.DIRECT.GET.OBJ_GEOLB_DATA",
                "$JS.API.DIRECT.GET.OBJ_GEOLB_DATA.>",
            ]
        );
        assert!(!p.publish.iter().any(|s| s.starts_with("$O.")));
        assert!(objects_writer().contains(&"$O.GEOLB_BINARIES.>".to_string()));
    }

    #[test]
    fn only_the_coordinator_publishes_commands() {
        let c = coordinator(&["GEOLB_HEARTBEATS".into()], &[]);
        assert!(c.publish.contains(&"geolb.agent.>".to_string()));
        assert!(c
            .publish
            .contains(&"$JS.API.STREAM.*.GEOLB_HEARTBEATS".to_string()));
        let observer = client(&["GEOLB_REPORTS".into()]);
        assert!(!observer.publish.iter().any(|s| s.starts_with("geolb.")));
        assert!(observer
            .publish
            .contains(&"$JS.API.STREAM.MSG.GET.GEOLB_REPORTS".to_string()));
        assert!(
            !observer.publish.iter().any(|s| s.contains("DELETE")
                || s.contains("PURGE")
                || s.contains("UPDATE")
                || s.starts_with("$JS.API.STREAM.*")),
            "an observer changes no stream: {:?}",
            observer.publish
        );
    }

    #[test]
    fn the_archiver_reads_one_stream_and_sends_nothing_else() {
        let a = archiver("GEOLB_TELEMETRY");
        assert!(a
            .publish
            .contains(&"$JS.API.CONSUMER.MSG.NEXT.GEOLB_TELEMETRY.>".to_string()));
        assert!(
            a.publish.iter().all(|s| s.starts_with("$JS.")),
            "{:?}",
            a.publish
        );
        assert!(!a
            .publish
            .iter()
            .any(|s| s.contains("DELETE") || s.contains("STREAM.*")));
        assert_eq!(a.subscribe, ["_INBOX.archiver.>"]);
        assert!(!a.allow_responses);
    }

    #[test]
    fn routing_components_publish_only_their_changes() {
        let dns = routing("dns", "dns");
        assert_eq!(dns.publish, ["geolb.routing.dns.>"]);
        assert_eq!(dns.subscribe[0], "geolb.dns.dns.>");
        assert!(dns.subscribe.contains(&"$SRV.*.geolb-dns.*".to_string()));
        assert!(!dns
            .subscribe
            .iter()
            .any(|s| s.starts_with("geolb.agent") || s.starts_with("geolb.wan")));
        let anycast = routing("anycast", "bgp");
        assert_eq!(anycast.publish, ["geolb.routing.bgp.>"]);
        assert!(anycast
            .subscribe
            .contains(&"geolb.anycast.bgp.>".to_string()));
        assert!(anycast
            .subscribe
            .contains(&"$SRV.*.geolb-anycast".to_string()));
        assert!(anycast.allow_responses);
        assert!(client(&[])
            .subscribe
            .contains(&"geolb.routing.>".to_string()));
        assert!(coordinator(&[], &[])
            .subscribe
            .contains(&"geolb.routing.>".to_string()));
    }

    #[test]
    fn renders_an_authorization_block() {
        let text = render(&[User {
            comment: "agent a".into(),
            nkey: "UABC".into(),
            permissions: agent("a", "r"),
        }]);
        assert!(text.starts_with("authorization {\n  users = [\n    # agent a\n"));
        assert!(text.contains(r#"{ nkey: "UABC", permissions: {"#));
        assert!(text.contains(r#"publish: { allow: ["geolb.hb.r.a", "#));
        assert!(text.contains("allow_responses: true"));
        assert!(text.ends_with("  ]\n}\n"));
    }
}

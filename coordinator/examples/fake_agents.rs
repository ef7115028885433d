//! A stand-in fleet for trying `geolb` by hand: N fake agents that publish
//! heartbeats and events and answer every command with an ok reply.
//!
//! ```text
//! cargo run -p geolb --example fake_agents -- nats://127.0.0.1:4222 6 [LOST]
//! ```
//! Agents are spread over regions lon, ams and dfw, alternating server and
//! client; the last LOST agents (default 1) send one heartbeat dated an hour
//! ago and never answer. Runs until killed.

use futures::StreamExt;
use geolb_proto::{
    subject, AgentStatus, ChildState, Command, Event, EventKind, Heartbeat, OutboxStats,
    ReplicaStatus, Reply, Role,
};
use std::time::Duration;

fn status(i: usize) -> AgentStatus {
    let region = ["lon", "ams", "dfw"][i % 3];
    let role = if i.is_multiple_of(2) {
        Role::Server
    } else {
        Role::Client
    };
    let mut status = AgentStatus::example(&format!("{region}-{i}"), region, role);
    status.version = i.is_multiple_of(2).then(|| "2.12.8".to_string());
    status.restarts = i as u32 % 3;
    status.replicas = vec![ReplicaStatus {
        index: 0,
        state: ChildState::Running,
        pid: Some(1000 + i as u32),
        restarts: 0,
        started_at_ms: Some(geolb_proto::now_ms()),
        last_exit: None,
    }];
    status
}

fn heartbeat(status: &AgentStatus, at_ms: u64) -> Vec<u8> {
    let hb = Heartbeat {
        v: 1,
        at_ms,
        interval_ms: 1000,
        status: status.clone(),
        outbox: OutboxStats::default(),
    };
    serde_json::to_vec(&hb).expect("heartbeat serializes")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(6);
    let lost: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let client = async_nats::connect(url).await?;
    let agents: Vec<AgentStatus> = (0..count).map(status).collect();
    let (live, gone) = agents.split_at(count.saturating_sub(lost));
    for agent in gone {
        let subject = subject::heartbeat(&agent.region, &agent.id);
        let payload = heartbeat(agent, geolb_proto::now_ms() - 3_600_000 + 60_000);
        client.publish(subject, payload.into()).await?;
    }
    for agent in live.iter().cloned() {
        let client = client.clone();
        let mut commands = client
            .subscribe(format!("{}.*", subject::command_group(&agent.id)))
            .await?;
        tokio::spawn(async move {
            while let Some(message) = commands.next().await {
                let (Some(reply_to), Ok(command)) =
                    (message.reply, Command::decode(&message.payload))
                else {
                    continue;
                };
                let reply = Reply::new(command.id, Ok(()), agent.clone());
                let _ = client.publish(reply_to, reply.encode().into()).await;
            }
        });
    }
    let mut seq = 0;
    loop {
        seq += 1;
        for agent in live {
            let subject = subject::heartbeat(&agent.region, &agent.id);
            client
                .publish(subject, heartbeat(agent, geolb_proto::now_ms()).into())
                .await?;
        }
        if let Some(agent) = live.first() {
            let event = Event {
                v: 1,
                seq,
                at_ms: geolb_proto::now_ms(),
                agent: agent.id.clone(),
                region: agent.region.clone(),
                role: agent.role,
                event: EventKind::Restarting {
                    replica: 0,
                    attempt: seq as u32,
                    delay_ms: 100,
                },
            };
            client
                .publish(
                    subject::event(&agent.region, &agent.id),
                    event.encode().into(),
                )
                .await?;
        }
        client.flush().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

//! `geolb fleet rtt` and `geolb fleet links`: what the fleet measures and
//! what can be done to its links, from the control plane alone.

use crate::control::Control;
use crate::geography::Geography;
use crate::live::LiveFleet;
use crate::table::Table;
use std::process::ExitCode;
use std::time::Duration;

/// How long `fleet rtt` listens for client reports.
const LISTEN: Duration = Duration::from_millis(2500);

/// Prints the region-to-region round trips the clients report.
pub async fn rtt(control: &Control, json: bool) -> anyhow::Result<ExitCode> {
    let live = LiveFleet::start(control).await?;
    tokio::time::sleep(LISTEN).await;
    let clients = live.clients();
    let geo = Geography::measure(clients.values().map(|c| &c.status));
    if json {
        let rows: Vec<serde_json::Value> = geo
            .pairs()
            .map(|(from, to, rtt)| serde_json::json!({ "from": from, "to": to, "rtt_ms": rtt }))
            .collect();
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if clients.is_empty() {
        eprintln!(
            "geolb: no client reported on {} within {} ms",
            control.url(),
            LISTEN.as_millis()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["CLIENTS IN", "SERVERS IN", "RTT"]);
    for (from, to, rtt) in geo.pairs() {
        table.row([from.to_string(), to.to_string(), format!("{rtt:.1}ms")]);
    }
    crate::emit(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// Prints every registered link control.
pub async fn links(control: &Control, json: bool) -> anyhow::Result<ExitCode> {
    let links = crate::links::discover(control).await?;
    if json {
        let rows: Vec<serde_json::Value> = links
            .iter()
            .map(|l| serde_json::json!({ "emulator": l.emulator, "link": l.link }))
            .collect();
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new([
        "EMULATOR", "LINK", "CARRIES", "FROM", "TO", "RTT", "STATE", "OPEN",
    ]);
    for l in &links {
        let path = l.link.path.as_ref();
        table.row([
            l.emulator.clone(),
            l.link.name.clone(),
            path.map_or("-".into(), |p| p.carries.to_string()),
            path.and_then(|p| p.from.clone())
                .unwrap_or_else(|| "*".into()),
            path.map_or("-".into(), |p| p.to.clone()),
            format!("{:.1}ms", l.link.config.rtt().as_secs_f64() * 1000.0),
            l.link.config.state.to_string(),
            l.link.open.to_string(),
        ]);
    }
    crate::emit(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

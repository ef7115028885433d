//! Free TCP ports on 127.0.0.1 for servers the tests start.
//!
//! Ports are drawn at random from below the kernel's ephemeral range, so outgoing
//! connections (clients, routes, gateways) cannot steal one between the moment it is
//! handed out and the moment a server binds it, nor while a server is restarting.
//! A process-wide set makes sure no port is handed out twice in one test process.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

/// Ports already handed out by this process.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Lowest port we draw from.
const LOW: u16 = 10_000;

/// Ports left to labs: the default lab (`ports_base` 14000) and the labs
/// tests start (from [`LAB_PORTS`]`.start`), so a test server never takes
/// a port a lab needs.
pub const LAB_PORTS: std::ops::Range<u16> = 14_000..16_000;

/// A port on 127.0.0.1 that is free now and was never returned before by this process.
pub fn free_port() -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    let high = ephemeral_low().max(LOW + 1_000);
    for _ in 0..1_000 {
        let port = fastrand::u16(LOW..high);
        if !LAB_PORTS.contains(&port) && !taken.contains(&port) && is_free(port) {
            taken.insert(port);
            return port;
        }
    }
    // Fall back to letting the kernel choose.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if taken.insert(port) {
            return port;
        }
    }
}

/// 127.0.0.1 with a [`free_port`], for a server a test starts.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Whether 127.0.0.1:`port` can be bound right now.
fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Start of the kernel's ephemeral port range (32768 when unknown).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_and_bindable() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|p| is_free(*p)));
    }
}

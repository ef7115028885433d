//! `Lan`: hosts of their own for a test, each a network namespace with one
//! IPv6 address on a bridge in the root namespace, the way Fly machines
//! share one private IPv6 network. Every host runs servers on the same
//! fixed ports, connects from its own address, and sees its own interface
//! addresses; processes start in a host through `ip netns exec`, which also
//! gives them `/etc/netns/<host>/resolv.conf` as their `/etc/resolv.conf`
//! ([`Lan::use_dns`]), so the system resolver asks the test's DNS server.
//!
//! Addresses are in a random unique-local /64 (`fdXX:...`), the bridge has
//! `::1`, hosts `::10`, `::11`, ...; names carry a random tag, so parallel
//! tests never meet. Needs root and iproute2 ([`available`] says so, by
//! test name, or fails with `GEOLB_REQUIRE_NETNS=1`). `Drop` deletes the
//! namespaces (their veths go with them), the bridge and the resolv.conf folders.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

/// One host: its namespace and address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name (`ip netns exec <name>`).
    pub name: String,
    /// Its address on the bridge.
    pub ip: Ipv6Addr,
}

/// Hosts on one bridge; removed on `Drop`.
#[derive(Debug)]
pub struct Lan {
    bridge: String,
    prefix: [u16; 4],
    hosts: Vec<Host>,
}

/// `Some(())` when network namespaces can be made here; otherwise prints
/// `SKIPPED <test>: <why>` and returns `None`, or panics when
/// `GEOLB_REQUIRE_NETNS=1`.
pub fn available(test: &str) -> Option<()> {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("network namespaces need root".to_string())
    } else {
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
        }
    };
    match why {
        None => Some(()),
        Some(why) if std::env::var("GEOLB_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
            panic!("{test}: {why}, and GEOLB_REQUIRE_NETNS=1 forbids skipping")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Runs `ip ARGS`; panics with its error.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Lan {
    /// A bridge with `hosts` namespaces on it, links up, addresses usable at once.
    pub fn new(hosts: usize) -> Lan {
        let tag = format!("{:06x}", fastrand::u32(..0x100_0000));
        let prefix = [
            0xfd00 | fastrand::u16(..0x100),
            fastrand::u16(..),
            fastrand::u16(..),
            0,
        ];
        let mut lan = Lan {
            bridge: format!("gb-{tag}"),
            prefix,
            hosts: Vec::new(),
        };
        let gateway = format!("{}/64", lan.gateway());
        ip(&["link", "add", &lan.bridge, "type", "bridge"]);
        // From here on, Drop cleans up whatever exists.
        ip(&["addr", "add", &gateway, "dev", &lan.bridge, "nodad"]);
        ip(&["link", "set", &lan.bridge, "up"]);
        for i in 0..hosts {
            let host = Host {
                name: format!("geolb-{tag}-{i}"),
                ip: lan.address(0x10 + i as u16),
            };
            let veth = format!("gv-{tag}-{i}");
            ip(&["netns", "add", &host.name]);
            lan.hosts.push(host.clone());
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &host.name,
            ]);
            ip(&["link", "set", &veth, "master", &lan.bridge, "up"]);
            let address = format!("{}/64", host.ip);
            let ns = ["-n", host.name.as_str()];
            ip(&[&ns[..], &["addr", "add", &address, "dev", "eth0", "nodad"]].concat());
            ip(&[&ns[..], &["link", "set", "eth0", "up"]].concat());
            ip(&[&ns[..], &["link", "set", "lo", "up"]].concat());
        }
        lan
    }

    /// `prefix::n`.
    fn address(&self, n: u16) -> Ipv6Addr {
        let [a, b, c, d] = self.prefix;
        Ipv6Addr::new(a, b, c, d, 0, 0, 0, n)
    }

    /// The bridge's address, in the root namespace (where the test runs).
    pub fn gateway(&self) -> Ipv6Addr {
        self.address(1)
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Every host's system resolver asks `server` (port 53), once, quickly.
    pub fn use_dns(&self, server: IpAddr) {
        for host in &self.hosts {
            let dir = netns_etc(&host.name);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            let conf = format!("nameserver {server}\noptions timeout:1 attempts:2\n");
            std::fs::write(dir.join("resolv.conf"), conf)
                .unwrap_or_else(|e| panic!("write {}/resolv.conf: {e}", dir.display()));
        }
    }

    /// `program` to run in host `i` (`ip netns exec <host> program`); add its arguments.
    pub fn command(&self, i: usize, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i].name])
            .arg(program);
        cmd
    }
}

/// `/etc/netns/<name>`: files `ip netns exec` mounts over `/etc`'s.
fn netns_etc(name: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(name)
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &host.name])
                .output();
            let _ = std::fs::remove_dir_all(netns_etc(&host.name));
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

//! The emulator names links and changes one, several or a filtered set of them.

mod common;

use std::time::Duration;

use common::{any_addr, echo_server, eventually};
use geolb_wan::{Emulator, Error, LinkConfig, LinkState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_by_name() {
    let echo = echo_server().await;
    let wan = Emulator::new();
    let up = LinkConfig::symmetric(Duration::from_millis(8));
    for name in ["lon-ams", "lon-dfw", "ams-dfw"] {
        wan.add(name, any_addr(), echo, up).await.unwrap();
    }
    assert!(matches!(
        wan.add("lon-ams", any_addr(), echo, up).await,
        Err(Error::Duplicate(_))
    ));
    assert_eq!(wan.names(), ["ams-dfw", "lon-ams", "lon-dfw"]);

    let cut = up.with_state(LinkState::Cut);
    assert_eq!(wan.clone().set_where(|n| n.contains("dfw"), cut), 2);
    assert_eq!(wan.get("lon-ams").unwrap().config.state, LinkState::Up);
    assert_eq!(wan.get("lon-dfw").unwrap().config.state, LinkState::Cut);
    assert!(matches!(
        wan.set_many(&["lon-dfw", "nope"], up),
        Err(Error::Unknown(_))
    ));
    assert_eq!(wan.get("lon-dfw").unwrap().config.state, LinkState::Cut);
    wan.set_many(&["lon-dfw", "ams-dfw"], up).unwrap();
    assert!(matches!(wan.set("nope", up), Err(Error::Unknown(_))));

    let addr = wan.get("lon-ams").unwrap().listen;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    // The counters move just after the write; give them a moment.
    let counted = || {
        let stats = wan.get("lon-ams").unwrap().stats;
        (stats.bytes_out, stats.bytes_back) == (5, 5)
    };
    assert!(eventually(counted).await, "{:?}", wan.get("lon-ams"));

    wan.remove("lon-ams").unwrap();
    assert_eq!(wan.list().len(), 2);
    assert!(matches!(wan.remove("lon-ams"), Err(Error::Unknown(_))));
}

//! A delay change applies at once to a live connection, without reconnecting.

mod common;

use std::time::Duration;

use common::{any_addr, diff_ms, ms, nats_server, tolerance, Nats};
use geolb_wan::{Link, LinkConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_connection_follows_a_delay_change() {
    let server = nats_server();
    let mut direct = Nats::connect(server.client_addr()).await.unwrap();
    let (before, after) = (Duration::from_millis(2), Duration::from_millis(20));
    let link = Link::start(
        "change",
        any_addr(),
        server.client_addr(),
        LinkConfig::symmetric(before),
    )
    .await
    .unwrap();
    let mut nats = Nats::connect(link.local_addr()).await.unwrap();
    for (rtt, n) in [(before, 100), (after, 40), (before, 100)] {
        link.set(LinkConfig::symmetric(rtt));
        let measured = nats.median_rtt(n).await;
        let baseline = direct.median_rtt_spaced(n, rtt).await;
        let error = diff_ms(measured, rtt + baseline);
        println!(
            "set {:>6.3} ms: measured {:.3} ms, baseline {:.3} ms, error {error:+.3} ms",
            ms(rtt),
            ms(measured),
            ms(baseline)
        );
        assert!(
            error.abs() <= ms(tolerance(rtt)),
            "error {error:+.3} ms for {rtt:?}"
        );
    }
    assert_eq!(link.stats().total, 1, "the connection was not replaced");
    assert_eq!(link.stats().open, 1);
}

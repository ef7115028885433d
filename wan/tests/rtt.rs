//! Measured NATS PING/PONG round trips through a link match its configuration within
//! 5 % or 0.5 ms, whichever is larger.
//!
//! The baseline is the direct round trip measured with the same idle time between
//! pings as through the link: a loopback round trip after a few milliseconds of idle
//! costs ~0.2 ms more than back to back, and that is not the emulator's doing. The
//! error against the back-to-back baseline is printed too.

mod common;

use std::time::Duration;

use common::{any_addr, diff_ms, ms, nats_server, tolerance, Nats};
use geolb_wan::{Link, LinkConfig};

fn sym(micros: u64) -> LinkConfig {
    LinkConfig::symmetric(Duration::from_micros(micros))
}

/// How many pings fit in about two seconds, between 20 and 200.
fn pings(rtt: Duration) -> usize {
    (2_000_000 / (rtt.as_micros() as usize + 200)).clamp(20, 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_rtt_matches_the_configuration() {
    let server = nats_server();
    let mut direct = Nats::connect(server.client_addr()).await.unwrap();
    let back_to_back = direct.median_rtt(200).await;
    println!("direct back to back: {:.3} ms", ms(back_to_back));
    let asymmetric = LinkConfig {
        delay_out: Duration::from_millis(10),
        delay_back: Duration::from_millis(2),
        ..LinkConfig::default()
    };
    let cases = [
        sym(0),
        sym(500),
        sym(1_000),
        sym(8_000),
        sym(105_000),
        asymmetric,
    ];
    let mut failures = Vec::new();
    for config in cases {
        let n = pings(config.rtt());
        let baseline = direct.median_rtt_spaced(n, config.rtt()).await;
        let link = Link::start("rtt", any_addr(), server.client_addr(), config)
            .await
            .unwrap();
        let mut nats = Nats::connect(link.local_addr()).await.unwrap();
        let measured = nats.median_rtt(n).await;
        let error = diff_ms(measured, config.rtt() + baseline);
        let allowed = tolerance(config.rtt());
        println!(
            "out {:>6.3} back {:>6.3} ms: measured {:>8.3} ms, baseline {:.3} ms, \
             error {:+.3} ms (allowed {:.3}), error against back to back {:+.3} ms",
            ms(config.delay_out),
            ms(config.delay_back),
            ms(measured),
            ms(baseline),
            error,
            ms(allowed),
            diff_ms(measured, config.rtt() + back_to_back),
        );
        if error.abs() > ms(allowed) {
            failures.push(format!("{config:?}: error {error:+.3} ms"));
        }
    }
    assert!(failures.is_empty(), "RTT out of tolerance: {failures:#?}");
}

//! The frame every page shares: the head (inline CSS, the page script),
//! the navigation, the banner that says whether the control plane is
//! reachable and whether commands are allowed, and the 404 page.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The stylesheet, inlined in every page and in an exported report.
pub const CSS: &str = r#"
:root{--bg:#f8fafc;--fg:#0f172a;--mute:#64748b;--line:#e2e8f0;--ok:#16a34a;--bad:#dc2626;--warn:#d97706}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:18px;align-items:center;padding:8px 16px;background:#0f172a;color:#fff}
header a{color:#cbd5e1;text-decoration:none}header a.on{color:#fff;font-weight:600}header b{margin-right:12px}
main{padding:12px 16px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:18px 0 8px}
.banner{padding:6px 16px;font-weight:600}.banner.down{background:#fee2e2;color:#991b1b}.banner.ro{background:#e0f2fe;color:#075985;font-weight:400}
.banner.up{display:none}
table{border-collapse:collapse;background:#fff;margin-bottom:8px}th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}th a{color:inherit}td.n{text-align:right;font-variant-numeric:tabular-nums}
.regions{display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap}.region{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px;min-width:260px}
.region h2{margin:0 0 6px}.card{border-top:1px solid var(--line);padding:4px 0}.card a{font-weight:600}
.st{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#e2e8f0}
.st.running,.st.live,.st.passed,.st.healthy{background:#dcfce7;color:#166534}.st.stopped,.st.exited,.st.lost,.st.failed,.st.unhealthy{background:#fee2e2;color:#991b1b}
.st.stale,.st.draining,.st.paused,.st.backoff,.st.stopping,.st.running-now{background:#fef3c7;color:#92400e}
.mute{color:var(--mute)}.ok{color:var(--ok)}.bad{color:var(--bad)}.charts{display:flex;flex-wrap:wrap;gap:10px}
svg.chart,svg.timeline{background:#fff;border:1px solid var(--line)}svg text{font:10px system-ui,sans-serif;fill:#334155}
svg .ct{font-weight:600;font-size:11px}svg .cu{fill:#64748b}svg .axis,svg .lane{stroke:#e2e8f0}svg .ln{font-size:10px}
svg .faultp{fill:#fecaca;opacity:.55}svg .m{fill:#94a3b8}svg .m.fault{fill:#dc2626}svg .m.restore{fill:#16a34a}
svg .m.step{fill:#2563eb}svg .m.move{fill:#d97706}.legend span{margin-right:10px}.legend i{display:inline-block;width:10px;height:10px;margin-right:3px}
.cols{display:flex;gap:16px;flex-wrap:wrap}.cols>div{flex:1;min-width:420px}form.cmd{display:inline-block;margin:0 8px 6px 0;padding:6px;border:1px solid var(--line);background:#fff}
form.cmd input{width:70px}.result{padding:6px 10px;margin-bottom:8px;background:#fff;border-left:4px solid var(--ok)}.result.bad{border-color:var(--bad)}
.events{max-height:320px;overflow:auto}.exp{background:#dcfce7}code{overflow-wrap:anywhere}
"#;

/// The page script: follows the page's event stream and swaps its parts.
pub const SCRIPT_PATH: &str = "/static/dashboard.js";

/// Which section of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The fleet and agents.
    Fleet,
    /// Runs, reports, compare, live runs.
    Runs,
    /// None (the 404 page).
    None,
}

/// A whole dashboard page: `events` is the stream whose parts replace the
/// page's elements of the same id; `banner` is the `plane` part.
pub fn page(title: &str, nav: Nav, events: Option<&str>, banner: Markup, body: Markup) -> Markup {
    let on = |n: Nav| if n == nav { "on" } else { "" };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · geolb" }
                style { (PreEscaped(CSS)) }
                script src=(SCRIPT_PATH) defer {}
            }
            body data-events=[events] {
                header {
                    b { "geolb dashboard" }
                    a.(on(Nav::Fleet)) href="/" { "Fleet" }
                    a.(on(Nav::Runs)) href="/runs" { "Runs" }
                }
                div #plane { (banner) }
                main { (body) }
            }
        }
    }
}

/// What the banner says: the control plane's state and whether commands are allowed.
pub fn banner(reachable: bool, url: &str, allow_commands: bool) -> Markup {
    html! {
        @if !reachable {
            div.banner.down #unreachable { "control plane unreachable (" (url) "); retrying, the page recovers by itself" }
        } @else {
            div.banner.up data-state="up" {}
        }
        @if !allow_commands {
            div.banner.ro { "read-only: this dashboard was started without --allow-commands" }
        }
    }
}

/// The 404 page.
pub fn not_found(what: &str) -> Markup {
    error("Not found", what)
}

/// An error page: a heading and what happened.
pub fn error(heading: &str, what: &str) -> Markup {
    page(
        heading,
        Nav::None,
        None,
        html! {},
        html! {
            h1 { (heading) }
            p { (what) }
            p { a href="/" { "the fleet" } " · " a href="/runs" { "the runs" } }
        },
    )
}

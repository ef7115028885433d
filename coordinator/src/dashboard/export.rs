//! A report as one self-contained HTML file (`geolb report show ID --html
//! FILE`): the dashboard's report page with its CSS inlined, its charts as
//! inline SVG, no script, and a content security policy that forbids every
//! fetch, so it opens offline and shows the same view.

use super::page::CSS;
use super::report_page::{body, Links, Sort};
use crate::report::Report;
use maud::{html, PreEscaped, DOCTYPE};

/// The policy of an exported file: nothing may be loaded from anywhere.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The report as a whole HTML document.
pub fn html(report: &Report) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                title { (report.scenario) " " (report.id) " · geolb report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { b { "geolb report" } span { "exported from the dashboard's report page" } }
                main { (body(report, Sort::default(), Links::Offline)) }
            }
        }
    }
    .into_string()
}

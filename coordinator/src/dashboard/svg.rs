//! Charts drawn as SVG text, in Rust (pure): a line chart of a few series
//! over time, the lanes of a timeline with fault periods shaded, and a
//! grouped histogram. Every text is escaped; every chart has a fixed size
//! and a bounded number of elements, whatever the input.

use std::fmt::Write;

/// Colours of the series, in order (also used by the CSS legend).
pub const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
];

/// Escapes text for SVG and HTML (`& < > " '`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of a line chart: `(seconds, value)` points, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// A short human figure: 1234567 -> "1.2M".
pub fn figure(value: f64) -> String {
    let a = value.abs();
    if a >= 1e9 {
        format!("{:.1}G", value / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if a >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Most points drawn per series (older ones are thinned).
const MAX_POINTS: usize = 400;

/// A line chart `w` x `h` of `series` over the x range `[x0, x1]`, y from 0.
pub fn line_chart(title: &str, unit: &str, series: &[Series], x0: f64, x1: f64) -> String {
    let (w, h, left, top, bottom) = (320.0, 120.0, 44.0, 18.0, 16.0);
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let ymax = if max <= 0.0 { 1.0 } else { max * 1.1 };
    let span = (x1 - x0).max(1e-9);
    let x = |t: f64| left + (t - x0) / span * (w - left - 4.0);
    let y = |v: f64| top + (1.0 - v / ymax) * (h - top - bottom);
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{}</title>"#,
        escape(title)
    );
    let _ = write!(
        out,
        r##"<text x="2" y="12" class="ct">{}</text><text x="{}" y="12" class="cu" text-anchor="end">max {} {}</text>"##,
        escape(title),
        w - 2.0,
        figure(max),
        escape(unit)
    );
    let _ = write!(
        out,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" class="axis"/><text x="{}" y="{}" class="cu" text-anchor="end">0</text>"#,
        h - bottom,
        w - 4.0,
        h - bottom,
        left - 3.0,
        h - bottom
    );
    let _ = write!(
        out,
        r#"<text x="{left}" y="{}" class="cu">{}</text><text x="{}" y="{}" class="cu" text-anchor="end">now</text>"#,
        h - 3.0,
        ago(x1 - x0),
        w - 4.0,
        h - 3.0
    );
    for (i, s) in series.iter().enumerate() {
        let step = s.points.len().div_ceil(MAX_POINTS).max(1);
        let mut path = String::new();
        for (t, v) in s.points.iter().step_by(step) {
            if v.is_finite() && *t >= x0 {
                let _ = write!(path, "{:.1},{:.1} ", x(*t), y(*v));
            }
        }
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"><title>{}</title></polyline>"#,
                path.trim_end(),
                PALETTE[i % PALETTE.len()],
                escape(&s.name)
            );
        }
    }
    out.push_str("</svg>");
    out
}

fn ago(seconds: f64) -> String {
    if seconds >= 120.0 {
        format!("-{:.0}m", seconds / 60.0)
    } else {
        format!("-{seconds:.0}s")
    }
}

/// One mark on a timeline lane: where, what kind, how many entries it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Milliseconds from the start.
    pub t_ms: u64,
    /// A CSS class naming its kind (`fault`, `restore`, `step`, `move`, `event`).
    pub class: &'static str,
    /// Entries summarised by this mark.
    pub count: usize,
    /// Its tooltip.
    pub title: String,
}

/// One lane of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Its label (a source).
    pub name: String,
    /// Its marks.
    pub marks: Vec<Mark>,
}

/// Width of a timeline, in px, and of its label column.
pub const TIMELINE_WIDTH: f64 = 960.0;
const LABEL: f64 = 150.0;
const LANE: f64 = 16.0;

/// Timeline lanes over `[0, t_max]` ms with `faults` (start, end) shaded,
/// the time axis offset by `origin_ms` (a compare aligns runs on their fault).
pub fn timeline(lanes: &[Lane], faults: &[(u64, u64)], t_max: u64, origin_ms: i64) -> String {
    let h = 22.0 + LANE * lanes.len() as f64;
    let w = TIMELINE_WIDTH;
    let span = t_max.max(1) as f64;
    let x = |t: u64| LABEL + t as f64 / span * (w - LABEL - 6.0);
    let mut out = format!(
        r#"<svg class="timeline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>timeline</title>"#
    );
    for (start, end) in faults {
        let (x0, x1) = (x(*start), x((*end).max(*start)));
        let _ = write!(
            out,
            r#"<rect class="faultp" x="{x0:.1}" y="0" width="{:.1}" height="{h}"><title>fault {} .. {}</title></rect>"#,
            (x1 - x0).max(2.0),
            seconds(*start as i64 - origin_ms),
            seconds(*end as i64 - origin_ms)
        );
    }
    for (i, lane) in lanes.iter().enumerate() {
        let top = 4.0 + LANE * i as f64;
        let _ = write!(
            out,
            r#"<text x="2" y="{:.1}" class="ln">{}</text><line x1="{LABEL}" y1="{:.1}" x2="{}" y2="{:.1}" class="lane"/>"#,
            top + 11.0,
            escape(&clip(&lane.name, 22)),
            top + 8.0,
            w - 6.0,
            top + 8.0
        );
        for m in &lane.marks {
            let size = if m.count > 1 { 7.0 } else { 5.0 };
            let _ = write!(
                out,
                r#"<rect class="m {}" x="{:.1}" y="{:.1}" width="{size}" height="10"><title>{}</title></rect>"#,
                m.class,
                x(m.t_ms) - size / 2.0,
                top + 3.0,
                escape(&m.title)
            );
        }
    }
    let axis = h - 4.0;
    for k in 0..=4u64 {
        let t = span as u64 * k / 4;
        let anchor = if k == 4 { "end" } else { "middle" };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{axis}" class="cu" text-anchor="{anchor}">{}</text>"#,
            x(t),
            seconds(t as i64 - origin_ms)
        );
    }
    out.push_str("</svg>");
    out
}

/// `1.5s`, `-0.2s`.
pub fn seconds(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A grouped histogram: one bar per group in every bin; `labels` name the bins.
pub fn histogram(title: &str, labels: &[String], groups: &[(String, Vec<u64>)]) -> String {
    let (w, h, left, bottom) = (TIMELINE_WIDTH.min(640.0), 160.0, 34.0, 30.0);
    let max = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bins = labels.len().max(1) as f64;
    let slot = (w - left - 4.0) / bins;
    let bar = (slot - 4.0) / groups.len().max(1) as f64;
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{}</title><text x="2" y="12" class="ct">{}</text><text x="{}" y="24" class="cu" text-anchor="end">{max}</text>"#,
        escape(title),
        escape(title),
        left - 3.0
    );
    let plot = h - bottom - 20.0;
    for (b, label) in labels.iter().enumerate() {
        let x0 = left + slot * b as f64;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" class="cu" text-anchor="middle">{}</text>"#,
            x0 + slot / 2.0,
            h - bottom + 12.0,
            escape(label)
        );
        for (g, (name, counts)) in groups.iter().enumerate() {
            let n = counts.get(b).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let bh = n as f64 / max * plot;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{}: {n} in {}</title></rect>"#,
                x0 + 2.0 + bar * g as f64,
                20.0 + plot - bh,
                bar.max(1.0),
                PALETTE[g % PALETTE.len()],
                escape(name),
                escape(label)
            );
        }
    }
    let _ = write!(
        out,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" class="axis"/></svg>"#,
        20.0 + plot,
        w - 4.0,
        20.0 + plot
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let chart = line_chart("<b>", "%", &[], 0.0, 60.0);
        assert!(chart.contains("&lt;b&gt;") && !chart.contains("<b>"));
    }

    #[test]
    fn figures_are_short() {
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(4.56), "4.6");
        assert_eq!(figure(1234.0), "1234");
        assert_eq!(figure(12_345.0), "12.3k");
        assert_eq!(figure(2_500_000.0), "2.5M");
    }

    #[test]
    fn a_long_series_is_thinned() {
        let points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 1.0)).collect();
        let s = Series {
            name: "x".into(),
            points,
        };
        let chart = line_chart("t", "", &[s], 0.0, 100_000.0);
        assert!(chart.len() < 20_000, "{}", chart.len());
    }

    #[test]
    fn faults_are_shaded() {
        let lanes = [Lane {
            name: "scenario".into(),
            marks: vec![Mark {
                t_ms: 10,
                class: "fault",
                count: 1,
                title: "kill".into(),
            }],
        }];
        let svg = timeline(&lanes, &[(10, 50)], 100, 0);
        assert!(svg.contains(r#"class="faultp""#));
        assert!(svg.contains("m fault"));
    }
}

//! Figures with their targets: printed as they are taken, tabulated at the end and
//! written to `target/bench.json`.

use serde::Serialize;
use std::path::Path;

/// Which side of its target a figure must be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The value must be at most the target (the default; not written to JSON).
    #[default]
    AtMost,
    /// The value must be at least the target (`"bound": "at_least"` in JSON).
    AtLeast,
}

impl Bound {
    fn is_at_most(&self) -> bool {
        *self == Bound::AtMost
    }

    fn met(self, value: f64, target: Option<f64>) -> bool {
        target.is_none_or(|t| match self {
            Bound::AtMost => value <= t,
            Bound::AtLeast => value >= t,
        })
    }
}

/// One measured figure. A target is an upper bound ("at most") unless `bound`
/// says `at_least`.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The benchmark name, the key in `bench.json`.
    #[serde(skip)]
    pub name: String,
    /// The measurement; `None` when it could not be taken.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: &'static str,
    /// The upper bound to meet, if any.
    pub target: Option<f64>,
    /// Whether the value is within the target (true when there is no target,
    /// false when nothing was measured). Informative only.
    pub met: bool,
    /// How it was measured, and the raw samples worth keeping.
    pub detail: String,
    /// Whether the target is an upper (default) or a lower bound.
    #[serde(skip_serializing_if = "Bound::is_at_most")]
    pub bound: Bound,
}

/// Every figure and every benchmark that could not be measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<Figure>,
    failures: usize,
}

impl Report {
    /// Records and prints a figure whose target is an upper bound.
    pub fn add(
        &mut self,
        name: &str,
        value: f64,
        unit: &'static str,
        target: Option<f64>,
        detail: impl Into<String>,
    ) {
        self.add_bounded(name, value, unit, target, Bound::AtMost, detail);
    }

    /// Records and prints a figure whose target is a lower bound.
    pub fn add_at_least(
        &mut self,
        name: &str,
        value: f64,
        unit: &'static str,
        target: Option<f64>,
        detail: impl Into<String>,
    ) {
        self.add_bounded(name, value, unit, target, Bound::AtLeast, detail);
    }

    fn add_bounded(
        &mut self,
        name: &str,
        value: f64,
        unit: &'static str,
        target: Option<f64>,
        bound: Bound,
        detail: impl Into<String>,
    ) {
        let figure = Figure {
            name: name.to_string(),
            value: Some(value),
            unit,
            target,
            met: bound.met(value, target),
            detail: detail.into(),
            bound,
        };
        println!(
            "  {name} = {} {unit} (target {}) {}",
            format_value(value),
            format_target(target, bound),
            figure.detail
        );
        self.figures.push(figure);
    }

    /// Records the outcome of one benchmark group: a failure becomes an entry
    /// named after the group with no value, and makes the run exit non-zero.
    pub fn outcome(&mut self, group: &str, outcome: anyhow::Result<()>) {
        if let Err(e) = outcome {
            eprintln!("bench {group}: not measured: {e:#}");
            self.failures += 1;
            self.figures.push(Figure {
                name: group.to_string(),
                value: None,
                unit: "",
                target: None,
                met: false,
                detail: format!("not measured: {e:#}"),
                bound: Bound::AtMost,
            });
        }
    }

    /// How many benchmark groups could not be measured.
    pub fn failures(&self) -> usize {
        self.failures
    }

    /// The final table: name, value, unit, target, met.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.name.clone(),
                    f.value.map(format_value).unwrap_or_else(|| "-".into()),
                    f.unit.to_string(),
                    format_target(f.target, f.bound),
                    match (f.value, f.target) {
                        (None, _) => "FAILED".into(),
                        (Some(_), None) => "-".into(),
                        (Some(_), Some(_)) if f.met => "yes".into(),
                        _ => "NO".into(),
                    },
                ]
            })
            .collect();
        let header = ["name", "value", "unit", "target", "met"].map(String::from);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Writes `{name: {value, unit, target, met, detail}}` to `path`; with
    /// `merge`, over the figures already there (a partial run keeps the others).
    pub fn write_json(&self, path: &Path, merge: bool) -> anyhow::Result<()> {
        let old = merge
            .then(|| std::fs::read_to_string(path).ok())
            .flatten()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let mut map = match old {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for f in &self.figures {
            map.insert(f.name.clone(), serde_json::to_value(f)?);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))?;
        std::fs::write(path, text + "\n")?;
        Ok(())
    }
}

/// At most three decimals, trailing zeros dropped.
fn format_value(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

fn format_target(target: Option<f64>, bound: Bound) -> String {
    let sign = match bound {
        Bound::AtMost => "<=",
        Bound::AtLeast => ">=",
    };
    target
        .map(|t| format!("{sign} {}", format_value(t)))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_short() {
        assert_eq!(format_value(6144.0), "6144");
        assert_eq!(format_value(0.0504), "0.05");
        assert_eq!(format_value(2.5), "2.5");
    }

    #[test]
    fn met_is_an_upper_bound() {
        let mut report = Report::default();
        report.add("a", 1.0, "ms", Some(1.0), "");
        report.add("b", 2.0, "ms", Some(1.0), "");
        report.add("c", 2.0, "ms", None, "");
        report.outcome("d", Err(anyhow::anyhow!("boom")));
        report.add_at_least("e", 99.0, "%", Some(99.0), "");
        report.add_at_least("f", 98.0, "%", Some(99.0), "");
        let met: Vec<bool> = report.figures.iter().map(|f| f.met).collect();
        assert_eq!(met, [true, false, true, false, true, false]);
        assert_eq!(report.failures(), 1);
        let table = report.table();
        assert!(table.lines().nth(2).unwrap().ends_with("NO"), "{table}");
        assert!(table.lines().nth(4).unwrap().ends_with("FAILED"), "{table}");
        assert!(table.lines().nth(6).unwrap().contains(">= 99"), "{table}");
        assert!(table.lines().nth(6).unwrap().ends_with("NO"), "{table}");
    }

    #[test]
    fn a_partial_run_merges_into_the_json() {
        let dir = std::env::temp_dir().join(format!("geolb-bench-{}", std::process::id()));
        let path = dir.join("bench.json");
        let mut first = Report::default();
        first.add("a", 1.0, "ms", None, "");
        first.add("b", 1.0, "ms", None, "");
        first.write_json(&path, false).unwrap();
        let mut second = Report::default();
        second.add_at_least("b", 2.0, "%", Some(1.0), "");
        second.write_json(&path, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["a"]["value"], 1.0);
        assert_eq!(json["b"]["value"], 2.0);
        assert_eq!(json["b"]["bound"], "at_least");
        assert!(json["a"].get("bound").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}

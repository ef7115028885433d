//! Figures with their targets: printed as they are taken, tabulated at the end and
//! written to `target/bench.json`.

use serde::Serialize;
use std::path::Path;

/// One measured figure. Every target is an upper bound ("at most").
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
}

/// Every figure and every benchmark that could not be measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<Figure>,
    failures: usize,
}

impl Report {
    /// Records and prints a figure.
    pub fn add(
        &mut self,
        name: &str,
        value: f64,
        unit: &'static str,
        target: Option<f64>,
        detail: impl Into<String>,
    ) {
        let figure = Figure {
            name: name.to_string(),
            value: Some(value),
            unit,
            target,
            met: target.is_none_or(|t| value <= t),
            detail: detail.into(),
        };
        println!(
            "  {name} = {} {unit} (target {}) {}",
            format_value(value),
            format_target(target),
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
                    format_target(f.target),
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

    /// Writes `{name: {value, unit, target, met, detail}}` to `path`.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut map = serde_json::Map::new();
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

fn format_target(target: Option<f64>) -> String {
    target
        .map(|t| format!("<= {}", format_value(t)))
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
        let met: Vec<bool> = report.figures.iter().map(|f| f.met).collect();
        assert_eq!(met, [true, false, true, false]);
        assert_eq!(report.failures(), 1);
        let table = report.table();
        assert!(table.lines().nth(2).unwrap().ends_with("NO"), "{table}");
        assert!(table.lines().nth(4).unwrap().ends_with("FAILED"), "{table}");
    }
}

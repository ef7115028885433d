//! Aligned text columns for terminal output.

/// Rows of cells printed as left-aligned columns under a header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        let mut table = Table::default();
        table.row(header);
        table
    }

    /// Appends one row; missing cells print empty, extra cells are kept.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, columns separated by two spaces, no trailing blanks.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut table = Table::new(["ID", "REGION", "STATE"]);
        table.row(["lon-1", "lon", "running"]);
        table.row(["a", "amsterdam", "stopped"]);
        assert_eq!(
            table.render(),
            "ID     REGION     STATE\n\
             lon-1  lon        running\n\
             a      amsterdam  stopped\n"
        );
    }

    #[test]
    fn handles_ragged_rows_and_wide_chars() {
        let mut table = Table::new(["A", "B"]);
        table.row(["µµµ"]);
        table.row(["x", "y", "z"]);
        assert_eq!(table.render(), "A    B\nµµµ\nx    y  z\n");
        assert_eq!(Table::default().render(), "");
    }
}

//! Output formats shared by every command: aligned tables for people, JSON for programs.

use clap::ValueEnum;
use std::io::Write;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document on stdout.
    Json,
}

/// Prints a JSON value, pretty, to stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    // Render first, then write: a closed pipe then surfaces as an io::Error (exit 0 for
    // `| head`), not wrapped inside a serde_json error.
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows under headers with columns padded to the widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>, out: &mut std::io::StdoutLock<'_>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(headers.to_vec(), &mut out)?;
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out)?;
    }
    Ok(())
}

/// Formats of a benchmark report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// Aligned tables.
    #[default]
    Table,
    /// The full report as JSON.
    Json,
    /// One CSV row per case and repetition.
    Csv,
    /// Markdown tables.
    Markdown,
}

//! The benchmark report: a plain-text table for people and a JSON document
//! for scripts, both from the same rows.

use serde::Serialize;

use crate::bench::flops::FLOP_FORMULA;
use crate::bench::runner::Row;

/// Everything `gputrain bench --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    /// Time budget of each row's timed run.
    pub seconds_per_row: f64,
    pub flop_formula: &'static str,
    pub rows: Vec<Row>,
}

/// `1.23e8`-style figures: three significant digits.
fn sci(v: f64) -> String {
    format!("{v:.2e}")
}

/// The report as an aligned table, with the FLOP formula and the meaning of
/// the columns underneath.
pub fn render(report: &Report) -> String {
    let header = [
        "adapter",
        "backend",
        "strategy",
        "workload",
        "networks",
        "epochs",
        "wall s",
        "net-epochs/s",
        "net-samples/s",
        "GFLOP/s",
        "GPU s",
        "GPU/wall",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in &report.rows {
        let (gpu, share) = match r.kernel_seconds {
            Some(k) => (
                format!("{k:.3}"),
                format!("{:.0}%", 100.0 * k / r.wall_seconds.max(1e-12)),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        cells.push(vec![
            r.adapter.clone(),
            r.backend.clone(),
            r.strategy.clone(),
            format!("{} ({}, {} samples)", r.workload, r.topology, r.samples),
            r.networks.to_string(),
            r.epochs.to_string(),
            format!("{:.3}", r.wall_seconds),
            sci(r.network_epochs_per_second),
            sci(r.network_samples_per_second),
            format!("{:.2}", r.gflops_per_second),
            gpu,
            share,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                // Text columns to the left, numbers to the right.
                if c < 4 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\nwall s: the timed run (upload, training, evaluation, readback; not the pipeline \
         build); epochs: the workload's, or fewer to fit {} s per row.\nGPU s: device time \
         inside the training passes from timestamp queries ('-' where the adapter has none).\n{FLOP_FORMULA}.\n",
        report.seconds_per_row
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, kernel: Option<f64>) -> Row {
        Row {
            adapter: "llvmpipe".into(),
            backend: "Vulkan".into(),
            strategy: strategy.into(),
            workload: "xor".into(),
            topology: "2-3-1".into(),
            samples: 4,
            networks: 10_000,
            epochs: 2_000,
            wall_seconds: 0.5,
            setup_seconds: 0.1,
            network_epochs_per_second: 4.0e7,
            network_samples_per_second: 1.6e8,
            gflops_per_second: 5.6,
            kernel_seconds: kernel,
            diverged: 0,
            median_final_loss: Some(0.01),
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_kernel_share() {
        let report = Report {
            quick: true,
            seconds_per_row: 0.5,
            flop_formula: FLOP_FORMULA,
            rows: vec![row("fused", Some(0.4)), row("reference-f64", None)],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("adapter"), "{text}");
        assert!(lines[1].starts_with("--------"), "{text}");
        assert!(lines[2].contains("xor (2-3-1, 4 samples)"), "{text}");
        assert!(
            lines[2].contains("4.00e7") && lines[2].contains("1.60e8"),
            "{text}"
        );
        let last_two = |line: &str| {
            let cells: Vec<String> = line.split_whitespace().map(String::from).collect();
            cells[cells.len() - 2..].to_vec()
        };
        assert_eq!(last_two(lines[2]), ["0.400", "80%"], "{text}");
        assert_eq!(last_two(lines[3]), ["-", "-"], "{text}");
        // Every table line has the same column start for "networks".
        let at = lines[0].find("networks").unwrap();
        assert!(lines[2][..at].ends_with("  "), "{text}");
        assert!(text.contains("FLOP per network-epoch"), "{text}");
    }
}

//! The benchmark report: a plain-text table for people and a JSON document
//! for scripts, both from the same rows.

use serde::Serialize;

use crate::bench::flops::FLOP_FORMULA;
use crate::bench::peak::Peak;
use crate::bench::peers::{PeerRow, PeerStatus};
use crate::bench::runner::Row;

/// Everything `gputrain bench --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    /// Time budget of each row's timed run.
    pub seconds_per_row: f64,
    pub flop_formula: &'static str,
    pub rows: Vec<Row>,
    /// The processor and its threads, where the CPU rows and peers ran.
    pub machine: String,
    /// `--peers`: each peer on each workload it implements.
    pub peers: Vec<PeerRow>,
    /// The float32 FMA peak of the cores the CPU rows ran on, where this
    /// processor's is known ([`crate::bench::peak`]).
    #[serde(default)]
    pub peak: Option<Peak>,
    /// Every adapter the rows could run on: name, backend, type, driver
    /// and the limits that size the runs.
    #[serde(default)]
    pub adapters: Vec<String>,
}

/// What a Markdown report says of where and how it was made.
pub struct ReportContext {
    /// The command that made it, which makes it again.
    pub command: String,
    /// When it was made (UTC, `YYYY-MM-DD HH:MM`).
    pub date: String,
    pub version: String,
}

/// `1.23e8`-style figures: three significant digits.
fn sci(v: f64) -> String {
    format!("{v:.2e}")
}

/// The report as an aligned table, with the FLOP formula and the meaning of
/// the columns underneath.
/// `cells` (a header row first) as aligned columns, the first `text`
/// columns to the left and the rest (numbers) to the right, with a rule
/// under the header.
fn aligned(cells: &[Vec<String>], text: usize) -> String {
    let columns = cells[0].len();
    let widths: Vec<usize> = (0..columns)
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
            .map(|(c, (cell, &w))| match c < text {
                true => format!("{cell:<w$}"),
                false => format!("{cell:>w$}"),
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
    out
}

/// How the peers are run and judged, for the reports.
fn peers_method() -> String {
    format!(
        "benches/peers/soa_peers.py (struct of arrays) and, for networks of {} parameters or \
         more and data too large for that program, benches/peers/bmm_peers.py (JAX einsum over \
         a network axis, minibatches in gputrain's order); float32, from the workload's initial \
         weights. Each first trains {} epochs (fewer where the samples x epochs would pass {}) \
         and must match the float64 \
         reference's final losses (agrees to: worst |loss - reference| / (1e-3 + reference)), \
         then is timed without its compilation or warm-up, in each configuration a careful user \
         of its library would try (JAX: 8 epochs unrolled per loop iteration, one XLA host \
         device per core, 512-bit vectors where the CPU has AVX-512, blocks of at most 10,000 \
         networks a device, all on, each off in turn, and none; torch.compile: 1 and 8 epochs \
         per compiled call); the fastest that agrees is reported. gputrain is: the workload's \
         fastest row against the peer, in network-epochs/s.",
        crate::bench::peers::BMM_PARAMETERS,
        crate::bench::peers::CHECK_EPOCHS,
        crate::bench::peers::CHECK_SAMPLE_EPOCHS
    )
}

/// The peak sentence and each SIMD row's share of it.
fn peak_line(report: &Report) -> Option<String> {
    let peak = report.peak.as_ref()?;
    let shares: Vec<String> = report
        .rows
        .iter()
        .filter(|r| r.strategy.starts_with("simd"))
        .map(|r| {
            format!(
                "{} {:.0}%",
                r.workload,
                100.0 * r.gflops_per_second / peak.gflops()
            )
        })
        .collect();
    let mut line = format!("{}.", peak.describe());
    if !shares.is_empty() {
        line.push_str(&format!(" SIMD rows' share of it: {}.", shares.join(", ")));
    }
    Some(line)
}

/// The peers' table: each peer's rate and gputrain's against it.
fn render_peers(peers: &[PeerRow]) -> String {
    aligned(&peer_cells(peers), 4)
}

/// The peers' table's cells, a header row first.
fn peer_cells(peers: &[PeerRow]) -> Vec<Vec<String>> {
    let header = [
        "peer",
        "workload",
        "configuration",
        "versions",
        "device",
        "epochs",
        "s",
        "net-epochs/s",
        "gputrain is",
        "agrees to",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for p in peers {
        let versions =
            p.versions
                .as_ref()
                .and_then(|v| v.as_object())
                .map_or("-".to_string(), |v| {
                    let parts: Vec<String> = v
                        .iter()
                        .map(|(k, v)| {
                            format!("{k} {}", v.as_str().map_or(v.to_string(), String::from))
                        })
                        .collect();
                    parts.join(", ")
                });
        let figure = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
        let ratio = match (p.status, p.gputrain_ratio) {
            (PeerStatus::NotInstalled, _) => "not installed".to_string(),
            (PeerStatus::Failed, _) => "FAILED agreement".to_string(),
            (_, Some(r)) if r >= 1.0 => format!("{r:.2}x faster"),
            (_, Some(r)) => format!("{:.2}x slower", 1.0 / r),
            (_, None) => "-".to_string(),
        };
        cells.push(vec![
            p.peer.clone(),
            p.workload.clone(),
            p.configuration.clone(),
            versions,
            p.device.clone().unwrap_or_else(|| "-".to_string()),
            if p.status == PeerStatus::NotInstalled {
                "-".to_string()
            } else {
                p.epochs.to_string()
            },
            figure(p.seconds, &|v| format!("{v:.3}")),
            figure(p.network_epochs_per_second, &sci),
            ratio,
            figure(p.worst_relative_loss_difference, &|v| format!("{v:.1e}")),
        ]);
    }
    cells
}

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
    let mut out = aligned(&cells, 4);
    out.push_str(&format!(
        "\nwall s: the timed run (upload, training, evaluation, readback; not the pipeline \
         build); epochs: the workload's, or fewer to fit {} s per row.\nGPU s: device time \
         inside the training passes from timestamp queries ('-' where the adapter has none).\n{FLOP_FORMULA}.\n",
        report.seconds_per_row
    ));
    out.push_str(&format!("CPU rows and peers ran on {}.\n", report.machine));
    if let Some(line) = peak_line(report) {
        out.push_str(&format!("{line}\n"));
    }
    if !report.peers.is_empty() {
        out.push('\n');
        out.push_str(&render_peers(&report.peers));
        out.push_str(&format!("\npeers: {}\n", peers_method()));
    }
    out
}

/// A Markdown table: `cells` with a header row first; the first `text`
/// columns left-aligned and the rest (numbers) right-aligned.
fn markdown_table(cells: &[Vec<String>], text: usize) -> String {
    let line = |row: &[String]| format!("| {} |\n", row.join(" | "));
    let mut out = line(&cells[0]);
    let rule: Vec<String> = (0..cells[0].len())
        .map(|c| if c < text { "---" } else { "---:" }.to_string())
        .collect();
    out.push_str(&line(&rule));
    for row in &cells[1..] {
        out.push_str(&line(row));
    }
    out
}

/// A figure for a table cell, with `-` for none.
fn cell(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("-".to_string(), f)
}

/// The report as one self-contained Markdown document (`gputrain bench
/// --report FILE.md`): where and when it ran and how to make it again,
/// the machine and its adapters, how rows are measured, every row, the
/// fastest row of each workload, and the peers.
pub fn render_markdown(report: &Report, context: &ReportContext) -> String {
    let mut out = String::from("# gputrain benchmark report\n\n");
    out.push_str(&format!(
        "Made {} UTC by gputrain {} with\n\n```\n{}\n```\n\nwhich makes this file again \
         on the machine it runs on. Each figure holds for this machine only.\n\n",
        context.date, context.version, context.command
    ));
    out.push_str("## Machine\n\n");
    out.push_str(&format!(
        "- CPU (the SIMD trainer, the float64 reference and the peers): {}\n",
        report.machine
    ));
    if let Some(line) = peak_line(report) {
        out.push_str(&format!("- {line}\n"));
    }
    if report.adapters.is_empty() {
        out.push_str("- GPU adapters: none measured\n");
    }
    for adapter in &report.adapters {
        out.push_str(&format!("- adapter: {adapter}\n"));
    }
    out.push_str(&format!(
        "\n## Method\n\nA row first probes with growing epoch counts (a warm-up, not \
         counted), then times one run of the workload's epochs or as many as fit {} s. \
         wall s covers upload, training, evaluation and readback, not the pipeline build; \
         GPU s is the device time inside the training passes from timestamp queries ('-' \
         where the adapter has none). Throughput is network-epochs/s; net-samples/s is that \
         times the samples, the figure to compare across data sizes. {}. auto: the \
         strategy `--kernel auto` picks for that workload on that adapter.\n\n",
        report.seconds_per_row, report.flop_formula
    ));
    out.push_str("## Rows\n\n");
    let mut cells = vec![
        [
            "workload",
            "adapter",
            "strategy",
            "auto",
            "networks",
            "epochs",
            "wall s",
            "net-epochs/s",
            "net-samples/s",
            "GFLOP/s",
            "GPU s",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in &report.rows {
        cells.push(vec![
            format!("{} ({}, {} samples)", r.workload, r.topology, r.samples),
            r.adapter.clone(),
            r.strategy.clone(),
            if r.auto { "yes" } else { "" }.to_string(),
            r.networks.to_string(),
            r.epochs.to_string(),
            format!("{:.3}", r.wall_seconds),
            sci(r.network_epochs_per_second),
            sci(r.network_samples_per_second),
            format!("{:.1}", r.gflops_per_second),
            cell(r.kernel_seconds, |k| format!("{k:.3}")),
        ]);
    }
    out.push_str(&markdown_table(&cells, 4));
    out.push_str("\n## Fastest row of each workload\n\n");
    let mut cells = vec![
        ["workload", "fastest", "net-epochs/s", "next", "ahead by"]
            .map(String::from)
            .to_vec(),
    ];
    let mut workloads: Vec<&str> = Vec::new();
    for r in &report.rows {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    for w in workloads {
        let mut rows: Vec<&Row> = report.rows.iter().filter(|r| r.workload == w).collect();
        rows.sort_by(|a, b| {
            b.network_epochs_per_second
                .total_cmp(&a.network_epochs_per_second)
        });
        let name = |r: &Row| format!("{} on {}", r.strategy, r.adapter);
        let next = rows.get(1);
        cells.push(vec![
            w.to_string(),
            name(rows[0]),
            sci(rows[0].network_epochs_per_second),
            next.map_or("-".to_string(), |r| name(r)),
            next.map_or("-".to_string(), |r| {
                format!(
                    "{:.2}x",
                    rows[0].network_epochs_per_second / r.network_epochs_per_second.max(1e-300)
                )
            }),
        ]);
    }
    out.push_str(&markdown_table(&cells, 2));
    out.push_str("\n## Peers\n\n");
    if report.peers.is_empty() {
        out.push_str("Not measured: `gputrain bench --peers` runs them.\n");
    } else {
        let cells = peer_cells(&report.peers);
        out.push_str(&markdown_table(&cells, 4));
        out.push_str(&format!("\nPeers: {}\n", peers_method()));
    }
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
            auto: strategy == "fused",
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
            machine: "AMD EPYC, 2 threads".into(),
            peers: Vec::new(),
            adapters: vec!["llvmpipe (Vulkan, Cpu, driver llvmpipe)".into()],
            peak: None,
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

    #[test]
    fn markdown_report_holds_the_command_the_machine_and_every_row() {
        let mut fast = row("fused", Some(0.4));
        fast.network_epochs_per_second = 8.0e7;
        let report = Report {
            quick: false,
            seconds_per_row: 5.0,
            flop_formula: FLOP_FORMULA,
            rows: vec![fast, row("reference-f64", None)],
            machine: "Intel Xeon, 2 threads".into(),
            peers: Vec::new(),
            adapters: vec!["llvmpipe (Vulkan, Cpu, driver llvmpipe)".into()],
            peak: Some(Peak {
                cores: 2,
                fma_units: 2,
                lanes: 16,
                ghz: 2.5,
                basis: "Intel AVX-512: two 512-bit FMA units",
            }),
        };
        let context = ReportContext {
            command: "gputrain bench --report docs/performance.md".into(),
            date: "2026-12-02 07:00".into(),
            version: "0.1.0".into(),
        };
        let text = render_markdown(&report, &context);
        assert!(text.starts_with("# gputrain benchmark report"), "{text}");
        for needle in [
            "gputrain bench --report docs/performance.md",
            "2026-12-02 07:00 UTC",
            "Intel Xeon, 2 threads",
            "- adapter: llvmpipe",
            "FLOP per network-epoch",
            "| xor (2-3-1, 4 samples) | llvmpipe | fused | yes | 10000 | 2000 | 0.500 | 8.00e7 |",
            "| xor | fused on llvmpipe | 8.00e7 | reference-f64 on llvmpipe | 2.00x |",
            "Not measured: `gputrain bench --peers`",
            "- float32 FMA peak assumed: 2 cores x 2 FMA units x 16 lanes x 2 FLOP x 2.50 GHz \
             (measured) = 320 GFLOP/s",
        ] {
            assert!(text.contains(needle), "no {needle:?} in:\n{text}");
        }
        // Every table line has as many cells as its header.
        for table in text.split("\n\n").filter(|t| t.starts_with("| ")) {
            let widths: Vec<usize> = table.lines().map(|l| l.matches(" | ").count()).collect();
            assert!(widths.iter().all(|&w| w == widths[0]), "{table}");
        }
    }
}

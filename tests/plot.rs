//! Figures: `gputrain plot history` (from the quantile CSV or the
//! per-network file), `gputrain plot results` (histogram, or a
//! learning-rate sweep's scatter), `--plot` at the end of a run; each is a
//! valid SVG or PNG of 800 x 600 whose text carries the title and axis
//! labels; inputs of the wrong kind are refused with nothing written.

use crate::common;

use std::path::Path;

use common::{arg, run_err, run_ok, temp_dir};

/// Checks `path` is an SVG of the figure size whose text holds `texts`.
fn assert_svg(path: &Path, texts: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(svg.starts_with("<svg"), "{}: not an SVG", path.display());
    assert!(svg.contains("width=\"800\"") && svg.contains("height=\"600\""));
    assert!(
        svg.trim_end().ends_with("</svg>"),
        "{}: unfinished",
        path.display()
    );
    // Axes, bands, a line or bars, labels: more than a blank page.
    assert!(svg.len() > 5_000, "{}: {} bytes", path.display(), svg.len());
    for text in texts {
        assert!(svg.contains(text), "{}: no '{text}'", path.display());
    }
}

/// Checks `path` is an 800 x 600 PNG with a drawing on it (many colours).
fn assert_png(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (800, 600));
    let mut colours: Vec<&[u8]> = pixels.chunks(3).collect();
    colours.sort();
    colours.dedup();
    // Text is anti-aliased and the bands are translucent: a real figure
    // has dozens of colours, a blank or failed one a few.
    assert!(
        colours.len() > 20,
        "{}: {} colours",
        path.display(),
        colours.len()
    );
}

#[test]
fn every_figure_renders_with_its_labels() {
    let dir = temp_dir("plot-figures");
    let csv = dir.join("curve.csv");
    let curves = dir.join("curve.safetensors");
    let results = dir.join("results.csv");
    let at_end = dir.join("at-end.svg");
    run_ok(&[
        "--task",
        "xor",
        "--networks",
        "200",
        "--epochs",
        "2000",
        "--lr",
        "0.05..50",
        "--holdout",
        "0.5",
        "--target-loss",
        "0.05",
        "--history",
        "50",
        "--history-csv",
        arg(&csv),
        "--history-out",
        arg(&curves),
        "--results",
        arg(&results),
        "--plot",
        arg(&at_end),
        "--backend",
        "cpu",
        "-q",
    ]);
    let curve_labels = [
        "epoch",
        "loss (log scale)",
        "median",
        "10%-90%",
        "target 5e-2",
    ];
    assert_svg(&at_end, &curve_labels);
    assert_svg(
        &at_end,
        &["Training loss of 200 networks", "held-out median"],
    );

    let from_csv = dir.join("from-csv.svg");
    run_ok(&[
        "plot",
        "history",
        arg(&csv),
        "-o",
        arg(&from_csv),
        "--target-loss",
        "0.05",
    ]);
    assert_svg(&from_csv, &curve_labels);
    let from_file = dir.join("from-file.png");
    run_ok(&["plot", "history", arg(&curves), "-o", arg(&from_file)]);
    assert_png(&from_file);
    // The default output: the input's name with .svg.
    run_ok(&["plot", "history", arg(&curves)]);
    assert_svg(&dir.join("curve.svg"), &curve_labels);

    // A learning-rate sweep: the scatter, diverged networks marked.
    let sweep = dir.join("sweep.svg");
    run_ok(&["plot", "results", arg(&results), "-o", arg(&sweep)]);
    assert_svg(
        &sweep,
        &[
            "learning rate (log scale)",
            "final loss (log scale)",
            "diverged (",
        ],
    );
    let sweep_png = dir.join("sweep.png");
    run_ok(&["plot", "results", arg(&results), "-o", arg(&sweep_png)]);
    assert_png(&sweep_png);

    // One rate: the histogram of final losses.
    let fixed = dir.join("fixed.csv");
    run_ok(&[
        "--networks",
        "300",
        "--epochs",
        "300",
        "--results",
        arg(&fixed),
        "--backend",
        "cpu",
        "-q",
    ]);
    let histogram = dir.join("histogram.svg");
    run_ok(&["plot", "results", arg(&fixed), "-o", arg(&histogram)]);
    assert_svg(
        &histogram,
        &[
            "final loss (log scale)",
            "networks",
            "Final loss of 300 networks",
        ],
    );
}

#[test]
fn inputs_of_the_wrong_kind_are_refused() {
    let dir = temp_dir("plot-refused");
    let results = dir.join("results.csv");
    let csv = dir.join("curve.csv");
    run_ok(&[
        "--networks",
        "4",
        "--epochs",
        "20",
        "--history",
        "10",
        "--history-csv",
        arg(&csv),
        "--results",
        arg(&results),
        "--backend",
        "cpu",
        "-q",
    ]);
    let out = dir.join("figure.svg");
    // A history where results belong, and the other way round.
    let err = run_err(&["plot", "results", arg(&csv), "-o", arg(&out)], 1);
    assert!(
        err.contains("curve.csv:1") && err.contains("not a gputrain results CSV"),
        "{err}"
    );
    let err = run_err(&["plot", "history", arg(&results), "-o", arg(&out)], 1);
    assert!(
        err.contains("results.csv:1") && err.contains("not a gputrain history"),
        "{err}"
    );
    // A damaged line names it.
    let broken = dir.join("broken.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&broken, text.replacen("\n10,", "\n10,x", 1)).unwrap();
    let err = run_err(&["plot", "history", arg(&broken), "-o", arg(&out)], 1);
    assert!(err.contains("broken.csv:3"), "{err}");
    // A weights file is not a history file.
    let weights = dir.join("w.safetensors");
    run_ok(&[
        "--networks",
        "2",
        "--epochs",
        "2",
        "--weights",
        arg(&weights),
        "-q",
    ]);
    let err = run_err(&["plot", "history", arg(&weights), "-o", arg(&out)], 1);
    assert!(err.contains("not a gputrain history file"), "{err}");
    // An extension that is neither .svg nor .png.
    let err = run_err(
        &[
            "plot",
            "results",
            arg(&results),
            "-o",
            arg(&dir.join("f.jpg")),
        ],
        2,
    );
    assert!(err.contains(".svg or .png"), "{err}");
    let err = run_err(
        &[
            "--history",
            "5",
            "--plot",
            arg(&dir.join("f.pdf")),
            "--epochs",
            "5",
        ],
        2,
    );
    assert!(err.contains("--plot"), "{err}");
    assert!(!out.exists(), "no partial figure");
    assert!(!dir.join("f.jpg").exists() && !dir.join("f.pdf").exists());
}

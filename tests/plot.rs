//! Figures: `gputrain plot history` (from the quantile CSV or the
//! per-network file), `gputrain plot results` (histogram, or a
//! learning-rate sweep's scatter), `--plot` at the end of a run; each is a
//! valid SVG or PNG of 800 x 600 whose text carries the title and axis
//! labels; `gputrain plot groups` and `--plot` on a grid (the grouped
//! statistics with their intervals); a million networks in a small
//! figure; inputs of the wrong kind are refused with nothing written.

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
    let curve_labels = ["epoch", "median", "10%-90%", "target 5e-2"];
    assert_svg(&at_end, &curve_labels);
    // The run knows its model, loss and row counts: the title and the
    // axis say them, and summed losses beside held-out ones are drawn per
    // sample (2 training rows, 2 held out), the target with them.
    assert_svg(
        &at_end,
        &[
            "Loss per sample of 200 networks: 2-3-1 on xor",
            "training median",
            "held-out median",
            "loss per sample (half-sse sum / samples; log scale)",
            "target 5e-2 / 2",
        ],
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
    // Away from the run's summary.json the figure names the file.
    assert_svg(
        &from_csv,
        &[
            "Training loss of 200 networks: curve.csv",
            "loss (log scale)",
        ],
    );
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
            "diverged (top): ",
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
            "networks (log scale)",
            "Final loss of 300 networks",
        ],
    );
}

/// The number of times `what` occurs in `path`'s text.
fn occurrences(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path).unwrap().matches(what).count()
}

#[test]
fn a_grids_grouped_statistics_have_a_figure() {
    let dir = temp_dir("plot-groups");
    let out = dir.join("run");
    let at_end = dir.join("at-end.svg");
    let train = |out: &Path, plot: &Path, extra: &[&str]| {
        let mut args = vec![
            "--task",
            "xor",
            "--replicates",
            "20",
            "--lr",
            "0.1,1,10",
            "--activation",
            "sigmoid,tanh",
            "--epochs",
            "500",
            "--out",
            arg(out),
            "--plot",
            arg(plot),
            "--backend",
            "cpu",
            "-q",
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
    };
    train(&out, &at_end, &["--target-loss", "0.05", "--history", "50"]);
    let labels = [
        "Reached the target by learning_rate: 2-3-1 on xor, 20 networks a point",
        "reached the target",
        "epochs to the target",
        "learning_rate (log scale)",
        "activation",
        "sigmoid",
        "tanh",
        "Wilson 95% interval",
        "below: median and IQR",
        "100%",
    ];
    assert_svg(&at_end, &labels);
    // Every point has a dot and an error bar (whose middle is a dot too)
    // in the upper panel; in the lower one the points where a network
    // reached the target; and each line a legend entry with a dot.
    let groups = std::fs::read_to_string(out.join("groups.csv")).unwrap();
    let header: Vec<&str> = groups.lines().next().unwrap().split(',').collect();
    let median = header
        .iter()
        .position(|c| *c == "target_epoch_median")
        .unwrap();
    let reached = groups
        .lines()
        .skip(1)
        .filter(|l| !l.split(',').nth(median).unwrap().is_empty())
        .count();
    assert_eq!(
        occurrences(&at_end, "<circle"),
        2 * (6 + reached) + 2,
        "{groups}"
    );

    // `plot groups` of the directory's CSV draws the same figure: the
    // summary.json beside it names the model and the loss.
    let from_file = dir.join("from-file.svg");
    run_ok(&[
        "plot",
        "groups",
        arg(&out.join("groups.csv")),
        "-o",
        arg(&from_file),
    ]);
    assert_eq!(
        std::fs::read(&from_file).unwrap(),
        std::fs::read(&at_end).unwrap()
    );
    let png = dir.join("groups.png");
    run_ok(&[
        "plot",
        "groups",
        arg(&out.join("groups.csv")),
        "-o",
        arg(&png),
    ]);
    assert_png(&png);

    // Along the other axis: names evenly spaced, one line per rate.
    let by_activation = dir.join("by-activation.svg");
    run_ok(&[
        "plot",
        "groups",
        arg(&out.join("groups.csv")),
        "--x",
        "activation",
        "-o",
        arg(&by_activation),
    ]);
    assert_svg(
        &by_activation,
        &["Reached the target by activation", "learning_rate"],
    );
    // The legend names the rates as the grid wrote them.
    let svg = std::fs::read_to_string(&by_activation).unwrap();
    let texts: Vec<&str> = svg.lines().map(str::trim).collect();
    for rate in ["0.1", "1", "10", "sigmoid", "tanh"] {
        assert!(texts.contains(&rate), "no text '{rate}'");
    }

    // The grid's learning curves: one per point (six), or per value of
    // an axis; the share that reached the target below them.
    let history = out.join("history.safetensors");
    let per_point = dir.join("per-point.svg");
    run_ok(&["plot", "history", arg(&history), "-o", arg(&per_point)]);
    assert_svg(
        &per_point,
        &[
            "Training loss of 120 networks by activation, learning_rate: 2-3-1 on xor",
            "sigmoid, 0.1",
            "tanh, 10",
            "bands: 10%-90%",
            "reached the target",
            "loss (half-sse, summed over samples; log scale)",
        ],
    );
    // A band and a median line per curve: six filled polygons.
    assert_eq!(occurrences(&per_point, "<polygon"), 6);
    let by_rate = dir.join("by-rate.svg");
    run_ok(&[
        "plot",
        "history",
        arg(&history),
        "--by",
        "learning_rate",
        "-o",
        arg(&by_rate),
    ]);
    assert_svg(
        &by_rate,
        &["Training loss of 120 networks by learning_rate"],
    );
    assert_eq!(occurrences(&by_rate, "<polygon"), 3);
    let err = run_err(
        &[
            "plot",
            "history",
            arg(&history),
            "--by",
            "momentum",
            "-o",
            arg(&by_rate),
        ],
        2,
    );
    assert!(
        err.contains("--by momentum") && err.contains("activation, learning_rate"),
        "{err}"
    );
    let err = run_err(
        &[
            "plot",
            "history",
            arg(&out.join("history.csv")),
            "--by",
            "activation",
            "-o",
            arg(&by_rate),
        ],
        2,
    );
    assert!(err.contains("--history-out file"), "{err}");

    // Without a target: the solved share (XOR's classes), and the final
    // loss with its reduction below.
    let solved = dir.join("solved.svg");
    train(&dir.join("solved"), &solved, &[]);
    assert_svg(
        &solved,
        &[
            "Solved by learning_rate",
            "solved (100% accuracy)",
            "final loss (half-sse, sum)",
            "below: median, 10%-90%",
        ],
    );
}

#[test]
fn a_million_networks_make_a_small_figure() {
    // A learning-rate sweep's results of 10^6 networks (written here: a
    // real run of that size takes a minute on two cores), spread over
    // four decades of rate with a few diverged.
    let dir = temp_dir("plot-million");
    let small = dir.join("small.csv");
    run_ok(&[
        "--networks",
        "2",
        "--epochs",
        "2",
        "--lr",
        "0.1..1",
        "--results",
        arg(&small),
        "-q",
    ]);
    let header = std::fs::read_to_string(&small).unwrap();
    let header = header.lines().next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let mut text = String::with_capacity(50_000_000);
    text.push_str(header);
    text.push('\n');
    for i in 0..1_000_000u64 {
        let t = i as f64 / 1e6;
        let rate = 10f64.powf(-2.0 + 4.0 * t);
        // A spread of losses at each rate, from a cheap hash of i.
        let jitter = ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0;
        let loss = 10f64.powf(-4.0 * t - jitter);
        let diverged = i % 100_000 == 7;
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match *c {
                "network" => i.to_string(),
                "learning_rate" => rate.to_string(),
                "final_loss" if diverged => "NaN".into(),
                "final_loss" => loss.to_string(),
                "diverged" => u8::from(diverged).to_string(),
                "epochs_completed" => "2".into(),
                _ => String::new(),
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    let results = dir.join("million.csv");
    std::fs::write(&results, text).unwrap();
    let svg = dir.join("million.svg");
    run_ok(&["plot", "results", arg(&results), "-o", arg(&svg)]);
    assert_svg(
        &svg,
        &[
            "Final loss of 1000000 networks, 10 diverged",
            "a cell",
            "median of a rate bin",
            "diverged (top): 10",
        ],
    );
    let bytes = std::fs::metadata(&svg).unwrap().len();
    // Measured: 73 KB (60 x 40 cells at most, not one mark a network).
    assert!(bytes < 1_000_000, "{bytes} bytes");
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
    // Groups: a results CSV is not one, a damaged line is named, a
    // grid of one point has nothing to compare, an unknown axis lists the
    // axes, and --plot without a grid needs --history.
    let err = run_err(&["plot", "groups", arg(&results), "-o", arg(&out)], 1);
    assert!(
        err.contains("results.csv:1") && err.contains("not a gputrain groups CSV"),
        "{err}"
    );
    let groups = dir.join("groups.csv");
    run_ok(&[
        "--networks",
        "4",
        "--epochs",
        "5",
        "--lr",
        "0.5,2",
        "--groups",
        arg(&groups),
        "-q",
    ]);
    let damaged = dir.join("damaged.csv");
    let text = std::fs::read_to_string(&groups).unwrap();
    std::fs::write(&damaged, text.replacen("\n1,2,", "\n1,2,x", 1)).unwrap();
    let err = run_err(&["plot", "groups", arg(&damaged), "-o", arg(&out)], 1);
    assert!(
        err.contains("damaged.csv:3") && err.contains("not a number"),
        "{err}"
    );
    let err = run_err(
        &[
            "plot",
            "groups",
            arg(&groups),
            "--x",
            "momentum",
            "-o",
            arg(&out),
        ],
        2,
    );
    assert!(
        err.contains("--x momentum") && err.contains("learning_rate"),
        "{err}"
    );
    let one = dir.join("one.csv");
    run_ok(&[
        "--networks",
        "4",
        "--epochs",
        "5",
        "--groups",
        arg(&one),
        "-q",
    ]);
    let err = run_err(&["plot", "groups", arg(&one), "-o", arg(&out)], 2);
    assert!(err.contains("one point"), "{err}");
    let err = run_err(&["--epochs", "5", "--plot", arg(&out), "-q"], 2);
    assert!(err.contains("--plot") && err.contains("--history"), "{err}");
    assert!(!out.exists(), "no partial figure");
    assert!(!dir.join("f.jpg").exists() && !dir.join("f.pdf").exists());
}

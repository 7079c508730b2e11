//! The documentation's commands run: every `gputrain` line of every ```sh
//! block in README.md and docs/*.md, in order, each block in a directory
//! of its own (a block's commands may use what the ones before wrote),
//! with its sizes made small (networks, replicates, epochs, samples) so
//! the suite stays quick. A block is left out only where the text just
//! before it says the documentation test "does not run this block" and
//! why; Python blocks are pytest's (python/tests/test_docs.py). Also: no
//! file in the repository points outside it, and every relative link of
//! the documentation reaches a file.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::temp_dir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a document says just before a block it does not run.
const NOT_RUN: &str = "does not run this block";

/// The documents whose commands run.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![Path::new(ROOT).join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// A fenced block of a document: its language, text, the 1-based line it
/// starts on and the prose just before it.
struct Block {
    language: String,
    text: String,
    line: usize,
    before: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(language)) => {
                open = Some(Block {
                    language: language.trim().to_string(),
                    text: String::new(),
                    line: i + 1,
                    // The prose since the last block, at most its last
                    // 600 bytes (a paragraph or two).
                    before: tail(&std::mem::take(&mut prose), 600),
                })
            }
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    out
}

/// The last `n` bytes of `text` or fewer, on a character boundary.
fn tail(text: &str, n: usize) -> String {
    let mut at = text.len().saturating_sub(n);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    text[at..].to_string()
}

/// A block's commands: continuation lines joined, comments dropped, each
/// line that runs gputrain as its arguments.
fn commands(block: &str) -> Vec<Vec<String>> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("exec ").unwrap_or(l))
        .filter(|l| l.starts_with("gputrain ") || *l == "gputrain")
        .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
        .collect()
}

/// `value` made small: divided by 10 (or 2 for samples, which minibatch
/// sizes divide) while above `cap`, so that what divided it still does
/// (a grid's networks, a resume's epochs above the run's).
fn small(value: &str, cap: u64, by: u64) -> String {
    match value.parse::<u64>() {
        Ok(mut v) => {
            while v > cap && v % by == 0 {
                v /= by;
            }
            v.to_string()
        }
        Err(_) => value.to_string(),
    }
}

/// The arguments with the documented sizes made small; a training
/// command that leaves them to the defaults (10,000 x 20,000) gets 100
/// networks (and 200 epochs unless it resumes, where the file's run
/// gives them).
fn shrunk(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    let trains = out
        .first()
        .is_none_or(|a| a.starts_with('-') || a == "train");
    let given = |flag: &str| args.iter().any(|a| a == flag);
    if trains && !given("--networks") && !given("--replicates") && !given("--resume") {
        out.extend(["--networks".to_string(), "100".to_string()]);
    }
    if trains && !given("--epochs") && !given("--resume") {
        out.extend(["--epochs".to_string(), "200".to_string()]);
    }
    for i in 1..out.len() {
        let value = &out[i];
        out[i] = match out[i - 1].as_str() {
            "--networks" => small(value, 200, 10),
            "--replicates" => small(value, 20, 10),
            "--epochs" => small(value, 200, 10),
            "--samples" => small(value, 256, 2),
            _ => value.clone(),
        };
    }
    out
}

/// The data files the documents' examples read, made up: the shapes the
/// text gives them.
fn fixtures(dir: &Path) {
    // 3 inputs, 2 targets in [0, 1].
    let samples: Vec<String> = (0..12)
        .map(|i| format!("{},{},{},0.2,0.8", i % 2, i % 3, (i % 4) as f64 / 3.0))
        .collect();
    std::fs::write(dir.join("samples.csv"), samples.join("\n") + "\n").unwrap();
    // 2 inputs and a class label 0, 1 or 2.
    let labels: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "{},{},{}",
                (i % 5) as f64 / 4.0,
                (i % 7) as f64 / 6.0,
                i % 3
            )
        })
        .collect();
    std::fs::write(dir.join("labels.csv"), labels.join("\n") + "\n").unwrap();
    // scikit-learn's digits as the text writes them: 64 pixels in [0, 1]
    // and a label 0..9 (values made up; the tests do not install
    // scikit-learn).
    for (name, rows) in [("digits-train.csv", 100), ("digits-test.csv", 30)] {
        let lines: Vec<String> = (0..rows)
            .map(|r| {
                let pixels: Vec<String> = (0..64)
                    .map(|p| format!("{}", ((r * 7 + p * 3) % 17) as f64 / 16.0))
                    .collect();
                format!("{},{}", pixels.join(","), r % 10)
            })
            .collect();
        std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
    }
}

#[test]
fn every_documented_command_runs() {
    let mut ran = 0;
    let mut left_out = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(ROOT).unwrap().display().to_string();
        for block in blocks(&text) {
            if block.language != "sh" {
                continue;
            }
            let commands = commands(&block.text);
            if commands.is_empty() {
                continue;
            }
            let at = format!("{name}:{}", block.line);
            let before = block
                .before
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if before.contains(NOT_RUN) {
                left_out.push(at);
                continue;
            }
            let dir = temp_dir(&format!("docs-{}", at.replace(['/', ':', '.'], "-")));
            fixtures(&dir);
            for args in &commands {
                let args = shrunk(args);
                let out = Command::new(env!("CARGO_BIN_EXE_gputrain"))
                    .args(&args)
                    .current_dir(&dir)
                    .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                    .output()
                    .expect("run gputrain");
                assert!(
                    out.status.success(),
                    "{at}: `gputrain {}` failed ({}): {}",
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                ran += 1;
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    // The README's and the manual's examples: 46 commands today.
    assert!(ran >= 44, "only {ran} documented commands found");
    // The Slurm and the GNU parallel blocks, each with its reason.
    assert_eq!(left_out.len(), 3, "blocks left out: {left_out:?}");
}

#[test]
fn shrinking_keeps_what_divides() {
    let args: Vec<String> = [
        "--networks",
        "3000",
        "--epochs",
        "5000",
        "--samples",
        "1024",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        shrunk(&args),
        ["--networks", "30", "--epochs", "50", "--samples", "256"]
    );
    assert_eq!(small("8000", 200, 10), "80");
    assert_eq!(small("7", 200, 10), "7");
}

#[test]
fn nothing_points_outside_the_repository() {
    let mut offenders = Vec::new();
    let mut stack = vec![PathBuf::from(ROOT)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            // This file names what it looks for.
            if path.ends_with("tests/docs.rs") {
                continue;
            }
            for (i, line) in text.lines().enumerate() {
                if line.contains("../shared") || line.contains("DESIGN.md") {
                    offenders.push(format!("{}:{}: {line}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn every_relative_link_reaches_a_file() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let base = doc.parent().unwrap();
        for (i, line) in text.lines().enumerate() {
            for part in line.split("](").skip(1) {
                let target = part.split(')').next().unwrap_or("");
                let file = target.split('#').next().unwrap_or("");
                if file.is_empty() || file.contains("://") {
                    continue;
                }
                if !base.join(file).exists() {
                    broken.push(format!("{}:{}: {target}", doc.display(), i + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

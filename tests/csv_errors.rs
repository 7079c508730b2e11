//! Every kind of bad CSV file gets a message naming the file, the line and
//! what is wrong.

use std::path::{Path, PathBuf};

use gputrain::data::{TargetRule, load_csv};

fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gputrain-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn error_of(path: &Path, inputs: usize, outputs: usize) -> String {
    load_csv(path, inputs, outputs, TargetRule::range((0.0, 1.0)))
        .expect_err("should be rejected")
        .to_string()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} should mention {part:?}"
        );
    }
}

#[test]
fn missing_file() {
    let msg = error_of(Path::new("/nonexistent/data.csv"), 2, 1);
    assert_mentions(&msg, &["/nonexistent/data.csv", "cannot read"]);
}

#[test]
fn empty_file_and_header_only() {
    let empty = write_temp("empty.csv", "");
    assert_mentions(&error_of(&empty, 2, 1), &["empty.csv", "no data rows"]);
    let header = write_temp("header.csv", "x1,x2,y\n");
    assert_mentions(&error_of(&header, 2, 1), &["header.csv", "no data rows"]);
}

#[test]
fn ragged_row() {
    let p = write_temp("ragged.csv", "x1,x2,y\n0,1,1\n1,1\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["ragged.csv:3", "has 2 columns", "need 3"],
    );
}

#[test]
fn non_numeric_cell() {
    let p = write_temp("text.csv", "0,1,1\n1,abc,0\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["text.csv:2", "column 2", "'abc' is not a number"],
    );
}

#[test]
fn nan_and_inf() {
    let p = write_temp("nan.csv", "0,1,1\n0.5,NaN,0\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["nan.csv:2", "column 2", "not a finite number"],
    );
    let p = write_temp("inf.csv", "0,1,1\n0.5,0.5,0\ninf,1,0\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["inf.csv:3", "column 1", "not a finite number"],
    );
}

#[test]
fn columns_do_not_match_topology() {
    let p = write_temp("wide.csv", "0,1,1,0\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["wide.csv:1", "has 4 columns", "2 inputs + 1 targets need 3"],
    );
}

#[test]
fn target_outside_unit_interval() {
    let p = write_temp("target.csv", "0,1,1\n1,0,1.5\n");
    assert_mentions(
        &error_of(&p, 2, 1),
        &["target.csv:2", "column 3", "outside [0, 1]"],
    );
    let p = write_temp("negative.csv", "0,1,-0.1\n");
    assert_mentions(&error_of(&p, 2, 1), &["negative.csv:1", "outside [0, 1]"]);
}

#[test]
fn good_file_loads_with_several_inputs_and_outputs() {
    let p = write_temp(
        "good.csv",
        "a,b,c,y1,y2\n0.1,0.2,0.3,0,1\n0.4,0.5,0.6,1,0.25\n",
    );
    let d = load_csv(&p, 3, 2, TargetRule::range((0.0, 1.0))).unwrap();
    assert_eq!(d.samples(), 2);
    assert_eq!(d.input(1), &[0.4, 0.5, 0.6]);
    assert_eq!(d.target(1), &[1.0, 0.25]);
}

//! The crate's module graph has no cycles: every `crate::m` a module of
//! src/ names (in a `use` or a path) is an edge from its top-level module
//! to `m`, and walking the edges never comes back to where it started. A
//! cycle found is printed with the file and line of each edge, so the one
//! to move (a shared type to the module below both) is plain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every .rs file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of src/ belongs to (`gpu` for
/// src/gpu/layered.rs, `cpu` for src/cpu.rs); None for lib.rs and main.rs.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The modules a line names as `crate::m` (outside comments).
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` (macro paths) names this crate too.
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            found.push(name);
        }
        rest = after;
    }
    found
}

/// src/ and every source file under it, in order.
fn source_files() -> (PathBuf, Vec<PathBuf>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    (src, files)
}

#[test]
fn modules_import_each_other_without_cycles() {
    let (src, files) = source_files();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
    // module -> (named module -> the first place that names it)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // Test code may use anything.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in text.lines().enumerate() {
            for to in named_modules(line) {
                if to != from && modules.contains(&to) {
                    let place = format!("{}:{}", file.display(), n + 1);
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(place);
                }
            }
        }
    }
    assert!(
        edges.len() > 10,
        "the scan found too few modules: {edges:?}"
    );
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!("an import cycle:\n  {}", steps.join("\n  "));
        }
    }
}

/// The modules that face the user and so spell flags: the command line's
/// parser and commands, and `bench` (a command of the binary only, which
/// names its own flags).
const FACES: &[&str] = &["cli", "commands", "main", "bench"];

/// No module below the faces spells a flag of `gputrain train` or
/// `predict` in its code: a message names a setting as a value
/// (`gputrain::setting`), and each face spells it in its own words.
#[test]
fn no_core_module_spells_a_flag() {
    let (src, files) = source_files();
    let flags: Vec<String> = gputrain::setting::settings::ALL
        .iter()
        .map(|s| format!("--{}", s.flag_name()))
        .collect();
    let mut found = Vec::new();
    let mut scanned = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let name = first.to_str().unwrap().trim_end_matches(".rs");
        if FACES.contains(&name) || name == "setting" {
            continue;
        }
        scanned += 1;
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for flag in &flags {
                let spelt = code.match_indices(flag.as_str()).any(|(at, _)| {
                    let next = code[at + flag.len()..].chars().next();
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
                if spelt {
                    found.push(format!(
                        "{}:{}: {flag}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(scanned > 20, "the scan found too few files: {scanned}");
    assert!(
        found.is_empty(),
        "core modules spell flags (name the setting: crate::setting::settings):\n  {}",
        found.join("\n  ")
    );
}

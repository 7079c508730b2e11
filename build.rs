//! Records what `gputrain --version` and run.json say the build is: the
//! git commit (with `-modified` when tracked sources differ from it), the
//! compiler, and the wgpu version from Cargo.lock. A build outside a git
//! checkout (a source archive) says `commit unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&root);
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) => {
            let modified = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{hash}{}", if modified { "-modified" } else { "" })
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=GPUTRAIN_COMMIT={commit}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc".into());
    println!("cargo:rustc-env=GPUTRAIN_RUSTC={rustc}");

    // The workspace's lock file: [[package]] name = "wgpu" then its version.
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let wgpu = lock
        .split("[[package]]")
        .find(|p| p.lines().any(|l| l.trim() == "name = \"wgpu\""))
        .and_then(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap_or_else(|| "?".into());
    println!("cargo:rustc-env=GPUTRAIN_WGPU={wgpu}");

    // Again when the commit moves or a source changes (which rebuilds the
    // crate anyway), not on every build.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", dir.join("index").display());
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(head).display());
        }
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("packed-refs").display()
        );
    }
    for path in ["src", "shaders", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}

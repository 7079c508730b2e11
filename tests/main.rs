//! Every integration test in one binary (the usual Rust practice: one
//! link of the library and its dependencies instead of one per file, so
//! the test build is faster and target/ smaller). Each file beside this
//! one is a module of it, named as the file; run one with a filter, e.g.
//! `cargo test --test suite cli::` or `cargo test --test suite resume::`.

mod common;

mod agreement;
mod architecture;
mod bench;
mod cli;
mod csv_errors;
mod device_timeout;
mod docs;
mod early_stopping;
mod evaluation;
mod fuzz;
mod gpu_fused;
mod gpu_layered;
mod gradient_check;
mod history;
mod init_determinism;
mod peer_numpy;
mod plot;
mod predict;
mod reference_numbers;
mod resample;
mod resume;
mod schedules;
mod shader_interface;
mod shuffle;
mod simd;
mod snapshots;
mod sweep;
mod vocabulary;

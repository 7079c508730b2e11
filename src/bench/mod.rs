//! `gputrain bench`: throughput on the standard workloads ([`workloads`])
//! for every adapter, each strategy that applies and the CPU reference
//! ([`runner`], [`suite`]), counted by one FLOP formula ([`flops`]) and
//! reported as a table or JSON ([`table`]); with `--peers`, the
//! struct-of-arrays peers in the same run ([`peers`]).

pub mod flops;
pub mod peak;
pub mod peers;
pub mod runner;
pub mod suite;
pub mod table;
pub mod workloads;

pub use flops::{FLOP_FORMULA, flops_per_network_epoch};
pub use peers::{PeerRow, PeerSetup, PeerStatus};
pub use runner::Row;
pub use suite::{BackendFilter, KernelFilter, Suite};
pub use table::{Report, ReportContext, render, render_markdown};
pub use workloads::{Workload, standard};

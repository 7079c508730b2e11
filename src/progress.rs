//! A progress line on stderr for long runs: shown only when stderr is a
//! terminal (nothing of it reaches pipes or log files) and not `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::training::Progress;

pub struct ProgressLine {
    enabled: bool,
    started: Instant,
    last_drawn: Option<Instant>,
}

impl ProgressLine {
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_drawn: None,
        }
    }

    /// Redraws at most ten times a second.
    pub fn update(&mut self, p: &Progress) {
        if !self.enabled || p.network_epochs_total == 0 {
            return;
        }
        let now = Instant::now();
        let finished = p.network_epochs_done >= p.network_epochs_total;
        if !finished
            && self
                .last_drawn
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last_drawn = Some(now);
        let fraction = p.network_epochs_done as f64 / p.network_epochs_total as f64;
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = p.network_epochs_done as f64 / elapsed.max(1e-9);
        let left = (p.network_epochs_total - p.network_epochs_done) as f64 / rate.max(1e-9);
        const WIDTH: usize = 30;
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        let _ = write!(
            std::io::stderr(),
            "\r[{}{}] {:5.1}%  {:.3e} network-epochs/s  {:.0} s left ",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            100.0 * fraction,
            rate,
            left
        );
        if finished {
            let _ = writeln!(std::io::stderr());
        }
    }
}

//! A progress line on stderr for long runs: shown only when stderr is a
//! terminal (nothing of it reaches pipes or log files) and not `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::training::Progress;

const BAR_WIDTH: usize = 30;

/// The line for `p` after `elapsed` seconds: bar, percentage, rate in
/// network-epochs per second, and the time left at that rate.
pub fn render(p: &Progress, elapsed: f64) -> String {
    let total = p.network_epochs_total.max(1);
    let done = p.network_epochs_done.min(total);
    let fraction = done as f64 / total as f64;
    let rate = done as f64 / elapsed.max(1e-9);
    let left = if done == 0 {
        "?".to_string()
    } else {
        format!("{:.0}", (total - done) as f64 / rate)
    };
    let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    format!(
        "[{}{}] {:5.1}%  {:.3e} network-epochs/s  {left} s left",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        100.0 * fraction,
        rate,
    )
}

pub struct ProgressLine {
    enabled: bool,
    started: Instant,
    last_drawn: Option<Instant>,
    open: bool,
}

impl ProgressLine {
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_drawn: None,
            open: false,
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
        let line = render(p, self.started.elapsed().as_secs_f64());
        let _ = write!(std::io::stderr(), "\r{line} ");
        self.open = true;
        if finished {
            self.finish();
        }
    }

    /// Ends the line (after the last update, or when a run stops early).
    pub fn finish(&mut self) {
        if self.open {
            let _ = writeln!(std::io::stderr());
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_bar_percentage_rate_and_time_left() {
        let p = Progress {
            network_epochs_done: 250,
            network_epochs_total: 1000,
        };
        let line = render(&p, 2.0);
        assert_eq!(
            line,
            "[#######.......................]  25.0%  1.250e2 network-epochs/s  6 s left"
        );
        let start = Progress {
            network_epochs_done: 0,
            network_epochs_total: 1000,
        };
        assert!(
            render(&start, 0.0).ends_with("? s left"),
            "{}",
            render(&start, 0.0)
        );
        let done = Progress {
            network_epochs_done: 1000,
            network_epochs_total: 1000,
        };
        assert!(render(&done, 1.0).starts_with(&format!("[{}] 100.0%", "#".repeat(30))));
    }
}

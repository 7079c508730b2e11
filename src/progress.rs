//! Progress on stderr for long runs, unless `--quiet`: a line redrawn in
//! place when stderr is a terminal; without one (a Slurm log, nohup, CI)
//! a plain line every 30 seconds ([`LOG_EVERY_VARIABLE`] sets the period),
//! so a run shorter than that prints nothing. [`Style`] chooses one.

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

/// The line a log gets for `p` after `elapsed` seconds: what is done of
/// what, the rate and the time left, without a bar.
pub fn log_line(p: &Progress, elapsed: f64) -> String {
    let total = p.network_epochs_total.max(1);
    let done = p.network_epochs_done.min(total);
    let rate = done as f64 / elapsed.max(1e-9);
    let left = match done {
        0 => "?".to_string(),
        _ => format!("{:.0}", (total - done) as f64 / rate),
    };
    format!(
        "progress: {:.1}% ({done} of {total} network-epochs) after {elapsed:.0} s, \
         {rate:.3e} network-epochs/s, {left} s left",
        100.0 * done as f64 / total as f64,
    )
}

/// The environment variable that sets how often (in seconds) a log
/// without a terminal gets a progress line; 0 turns them off.
pub const LOG_EVERY_VARIABLE: &str = "GPUTRAIN_PROGRESS_SECONDS";

/// The period of a log's progress lines when the variable is not set.
pub const LOG_EVERY_DEFAULT: f64 = 30.0;

/// The period of a log's progress lines in seconds, from
/// [`LOG_EVERY_VARIABLE`] (0 for none), or the error a value that is not a
/// number of seconds gets.
pub fn log_every() -> Result<f64, crate::Error> {
    match std::env::var(LOG_EVERY_VARIABLE) {
        Err(_) => Ok(LOG_EVERY_DEFAULT),
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(crate::Error::Config(format!(
                "{LOG_EVERY_VARIABLE}={text:?} is not a number of seconds (0 or \
                 more; 0 turns the progress lines of logs off)"
            ))),
        },
    }
}

/// How progress is asked to show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    /// A bar on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// A line redrawn in place.
    Bar,
    /// A plain line once a period ([`LOG_EVERY_VARIABLE`]), for logs.
    Lines,
    /// Nothing.
    None,
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Off,
    /// A line redrawn in place, at most ten times a second.
    Terminal,
    /// A plain line every this often.
    Log(Duration),
}

pub struct ProgressLine {
    mode: Mode,
    started: Instant,
    last_drawn: Option<Instant>,
    open: bool,
    /// Lines a log has been given.
    logged: usize,
}

impl ProgressLine {
    /// Progress in `style` (none when `quiet`); lines read
    /// [`LOG_EVERY_VARIABLE`]: a number of seconds, not negative.
    pub fn new(style: Style, quiet: bool) -> Result<Self, crate::Error> {
        let style = match style {
            Style::Auto if std::io::stderr().is_terminal() => Style::Bar,
            Style::Auto => Style::Lines,
            other => other,
        };
        let mode = match style {
            _ if quiet => Mode::Off,
            Style::Bar => Mode::Terminal,
            Style::Lines => match log_every()? {
                0.0 => Mode::Off,
                every => Mode::Log(Duration::from_secs_f64(every)),
            },
            Style::None | Style::Auto => Mode::Off,
        };
        Ok(Self {
            mode,
            started: Instant::now(),
            last_drawn: None,
            open: false,
            logged: 0,
        })
    }

    /// Redraws at most ten times a second, or logs a line once a period.
    pub fn update(&mut self, p: &Progress) {
        if p.network_epochs_total == 0 {
            return;
        }
        let now = Instant::now();
        match self.mode {
            Mode::Off => return,
            Mode::Log(every) => {
                let since = self.last_drawn.unwrap_or(self.started);
                if now - since >= every {
                    self.last_drawn = Some(now);
                    self.logged += 1;
                    let line = log_line(p, self.started.elapsed().as_secs_f64());
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
                return;
            }
            Mode::Terminal => {}
        }
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

    /// Ends the line (after the last update, or when a run stops early);
    /// a log that was given lines gets the last one, with what was done.
    pub fn finish_with(&mut self, p: Option<&Progress>) {
        if let (Mode::Log(_), Some(p), true) = (self.mode, p, self.logged > 0) {
            self.logged = 0;
            let line = log_line(p, self.started.elapsed().as_secs_f64());
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        self.finish();
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

    #[test]
    fn a_log_line_says_what_is_done_of_what_without_a_bar() {
        let p = Progress {
            network_epochs_done: 250,
            network_epochs_total: 1000,
        };
        assert_eq!(
            log_line(&p, 2.0),
            "progress: 25.0% (250 of 1000 network-epochs) after 2 s, 1.250e2 \
             network-epochs/s, 6 s left"
        );
    }
}

//! What the operator sees while the line runs: on a terminal, one live status line per
//! fixture (indicatif), so several probes working at once stay readable; otherwise (a CI log,
//! a file) one plain line per event, prefixed with the fixture.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Where the events of a run go.
pub(crate) enum Progress {
    /// `--json`: the per-device JSON objects are the whole output.
    Quiet,
    /// One line per event.
    Plain,
    /// One live line per fixture.
    Bars(MultiProgress),
}

impl Progress {
    /// Live lines when stdout is a terminal, plain lines otherwise, nothing with `--json`.
    pub(crate) fn for_stdout(json: bool) -> Self {
        if json {
            Self::Quiet
        } else if std::io::stdout().is_terminal() {
            Self::Bars(MultiProgress::new())
        } else {
            Self::Plain
        }
    }

    /// The status line of one fixture.
    pub(crate) fn fixture(&self, name: &str) -> FixtureProgress {
        let bar = match self {
            Self::Bars(bars) => {
                let bar = bars.add(ProgressBar::new_spinner().with_prefix(name.to_owned()));
                let style = ProgressStyle::with_template("{spinner} [{prefix}] {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Self::Quiet | Self::Plain => None,
        };
        FixtureProgress { name: name.to_owned(), bar, quiet: matches!(self, Self::Quiet) }
    }

    /// A line that is not about one fixture (the run's summary), printed above the live lines.
    pub(crate) fn println(&self, line: &str) {
        match self {
            Self::Quiet => {}
            Self::Plain => println!("{line}"),
            Self::Bars(bars) => {
                if bars.println(line).is_err() {
                    println!("{line}");
                }
            }
        }
    }
}

/// The events of one fixture.
pub(crate) struct FixtureProgress {
    name: String,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl FixtureProgress {
    /// The fixture is at `message` now.
    pub(crate) fn say(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None if !self.quiet => println!("[{}] {message}", self.name),
            None => {}
        }
    }

    /// How a device ended: kept above the live lines, so every outcome stays on screen.
    pub(crate) fn outcome(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("[{}] {message}", self.name)),
            None => self.say(message),
        }
    }
}

impl Drop for FixtureProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

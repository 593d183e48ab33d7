//! `GET /metrics`: request outcomes in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::Decision;

/// Counters of request outcomes, one per [`Decision`].
#[derive(Debug, Default)]
pub struct Metrics {
    counts: [AtomicU64; Decision::ALL.len()],
}

impl Metrics {
    fn counter(&self, decision: Decision) -> Option<&AtomicU64> {
        let index = Decision::ALL.iter().position(|d| *d == decision)?;
        self.counts.get(index)
    }

    /// Counts one request.
    pub fn count(&self, decision: Decision) {
        if let Some(counter) = self.counter(decision) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# HELP fwsign_requests_total Requests by outcome, as recorded in the audit trail.\n\
             # TYPE fwsign_requests_total counter\n",
        );
        for (decision, count) in Decision::ALL.iter().zip(&self.counts) {
            let count = count.load(Ordering::Relaxed);
            let _ =
                writeln!(text, "fwsign_requests_total{{decision=\"{}\"}} {count}", decision.name());
        }
        text
    }
}

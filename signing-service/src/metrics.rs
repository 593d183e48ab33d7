//! `GET /metrics`: request outcomes in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::Decision;

/// Counters of signing-request outcomes.
#[derive(Debug, Default)]
pub struct Metrics {
    signed: AtomicU64,
    denied: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

impl Metrics {
    fn counter(&self, decision: Decision) -> &AtomicU64 {
        match decision {
            Decision::Signed => &self.signed,
            Decision::Denied => &self.denied,
            Decision::Refused => &self.refused,
            Decision::Failed => &self.failed,
        }
    }

    /// Counts one request.
    pub fn count(&self, decision: Decision) {
        self.counter(decision).fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# HELP fwsign_requests_total Requests by outcome, as recorded in the audit trail.\n\
             # TYPE fwsign_requests_total counter\n",
        );
        for decision in [Decision::Signed, Decision::Denied, Decision::Refused, Decision::Failed] {
            let count = self.counter(decision).load(Ordering::Relaxed);
            let _ =
                writeln!(text, "fwsign_requests_total{{decision=\"{}\"}} {count}", decision.name());
        }
        text
    }
}

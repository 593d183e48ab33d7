//! Security counters of requests that are decided but not yet recorded.
//!
//! Decisions with one key are made one at a time, but signing (a token round trip, a
//! time-stamp) happens outside that lock so a key's signer pool can work in parallel. The
//! rollback rule must still see the counters those running requests will record: while a
//! request is signing, its highest counter counts as recorded. If it fails, the reservation
//! goes away with it; a request decided meanwhile was judged against the higher counter, which
//! fails closed.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The reserved counters per key (a multiset: equal counters may run together).
#[derive(Debug, Default)]
pub struct InFlight {
    counters: Mutex<BTreeMap<String, Vec<u32>>>,
}

impl InFlight {
    /// The highest counter reserved for `key`, 0 if none.
    pub fn highest(&self, key: &str) -> u32 {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.get(key).and_then(|c| c.iter().max().copied()).unwrap_or(0)
    }

    /// Reserves `counter` for `key` until the returned guard is dropped.
    pub fn reserve(&self, key: &str, counter: u32) -> Reservation<'_> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.entry(key.to_owned()).or_default().push(counter);
        Reservation { in_flight: self, key: key.to_owned(), counter }
    }
}

/// A reserved counter, released when dropped (recorded, failed or abandoned alike).
#[derive(Debug)]
pub struct Reservation<'a> {
    in_flight: &'a InFlight,
    key: String,
    counter: u32,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut counters = self.in_flight.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reserved) = counters.get_mut(&self.key) {
            if let Some(at) = reserved.iter().position(|c| *c == self.counter) {
                reserved.swap_remove(at);
            }
            if reserved.is_empty() {
                counters.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn a_reservation_counts_until_dropped_and_equal_counters_are_kept_apart() {
        let in_flight = InFlight::default();
        let first = in_flight.reserve("dev", 5);
        let second = in_flight.reserve("dev", 5);
        let low = in_flight.reserve("dev", 2);
        assert_eq!((in_flight.highest("dev"), in_flight.highest("release")), (5, 0));
        drop(first);
        assert_eq!(in_flight.highest("dev"), 5);
        drop(second);
        assert_eq!(in_flight.highest("dev"), 2);
        drop(low);
        assert_eq!(in_flight.highest("dev"), 0);
    }
}

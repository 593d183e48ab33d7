//! Rate limits and the bounded request queue (`[limits]`).
//!
//! A signing service sits in every release pipeline, so one runaway job must not starve the
//! others, and a flood must be refused early rather than make every request time out. Two
//! mechanisms do that:
//!
//! - token buckets per identity and per key ([`RateLimiter`]): a request over the rate is
//!   answered 429 with `Retry-After` saying when a token will be there;
//! - a bound on the signing requests in progress ([`Limits::queue`]), counted from the moment
//!   the request arrives (before its body is read, so the bound holds memory too): one more
//!   is answered 503 with `Retry-After` at once.
//!
//! Both refusals are recorded in the audit trail like every other.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a client refused for a full queue is told to wait.
pub const QUEUE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Buckets kept before the full (idle) ones are forgotten.
const MAX_IDLE_BUCKETS: usize = 4096;

/// A rate: `count` requests per `period` (written `20/s`, `600/m` or `1000/h`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// A rate that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("\"{0}\": expected COUNT/s, COUNT/m or COUNT/h with COUNT at least 1, such as 20/s")]
pub struct BadRate(String);

impl FromStr for Rate {
    type Err = BadRate;

    fn from_str(text: &str) -> Result<Self, BadRate> {
        let bad = || BadRate(text.to_owned());
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0).ok_or_else(bad)?;
        let seconds = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        Ok(Self { count, period: Duration::from_secs(seconds) })
    }
}

/// The configured limits (`[limits]`); all optional.
#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    /// Signing requests per identity (API client or CI subject).
    pub per_identity: Option<Rate>,
    /// Signing requests per key.
    pub per_key: Option<Rate>,
    /// How many requests a bucket allows at once (default: the rate's count).
    pub burst: Option<u32>,
    /// Signing requests in progress at most.
    pub queue: Option<usize>,
}

/// A token bucket per name.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens added per second.
    refill: f64,
    capacity: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter allowing `rate`, up to `burst` at once.
    pub fn new(rate: Rate, burst: u32) -> Self {
        Self {
            refill: f64::from(rate.count) / rate.period.as_secs_f64(),
            capacity: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `name`'s bucket, or says how long until one is there.
    ///
    /// # Errors
    /// The wait before a retry can succeed.
    pub fn take(&self, name: &str) -> Result<(), Duration> {
        self.take_at(name, Instant::now())
    }

    fn take_at(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_IDLE_BUCKETS {
            buckets.retain(|_, bucket| self.refilled(*bucket, now).tokens < self.capacity);
        }
        let fresh = Bucket { tokens: self.capacity, updated: now };
        let bucket = buckets.entry(name.to_owned()).or_insert(fresh);
        *bucket = self.refilled(*bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.refill))
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket { tokens: (bucket.tokens + elapsed * self.refill).min(self.capacity), updated: now }
    }
}

/// The limits in force.
#[derive(Debug, Default)]
pub struct Limits {
    /// Per identity.
    pub per_identity: Option<RateLimiter>,
    /// Per key.
    pub per_key: Option<RateLimiter>,
    /// Free places for signing requests in progress (none: unbounded).
    pub queue: Option<tokio::sync::Semaphore>,
}

impl Limits {
    /// The limits `config` asks for.
    pub fn new(config: &LimitsConfig) -> Self {
        let limiter = |rate: Option<Rate>| {
            rate.map(|rate| RateLimiter::new(rate, config.burst.unwrap_or(rate.count)))
        };
        Self {
            per_identity: limiter(config.per_identity),
            per_key: limiter(config.per_key),
            queue: config.queue.map(tokio::sync::Semaphore::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_or_refused_with_the_expected_form() {
        let rate: Rate = "20/s".parse().unwrap();
        assert_eq!((rate.count, rate.period), (20, Duration::from_secs(1)));
        assert_eq!("600/m".parse::<Rate>().unwrap().period, Duration::from_secs(60));
        for bad in ["20", "0/s", "20/d", "x/s", "-1/s"] {
            assert!(bad.parse::<Rate>().unwrap_err().to_string().contains("COUNT/s"), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_to_come_back() {
        let limiter = RateLimiter::new("2/s".parse().unwrap(), 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at("ci", start).is_ok());
        }
        let wait = limiter.take_at("ci", start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(limiter.take_at("other", start).is_ok(), "buckets are per name");
        assert!(limiter.take_at("ci", start + Duration::from_millis(500)).is_ok());
        assert!(limiter.take_at("ci", start + Duration::from_millis(500)).is_err());
    }
}

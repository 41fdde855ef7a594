//! Request rate limits: a token bucket per caller (API key, user, link or
//! client address), in memory, per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token buckets by key.
pub struct RateLimiter {
    /// Tokens added per second; 0 turns the limit off.
    rate: f64,
    /// Most tokens a bucket holds.
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            rate: rate_per_sec as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `key`: `Ok`, or how long until one is there.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= 100_000 {
            // Forget buckets that have refilled: they hold no state.
            let full = self.burst / self.rate;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = RateLimiter::new(10, 5);
        let t = Instant::now();
        for _ in 0..5 {
            assert!(l.check_at("k", t).is_ok());
        }
        let wait = l.check_at("k", t).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        // Another caller has its own bucket.
        assert!(l.check_at("other", t).is_ok());
        // A tenth of a second later: one more.
        let later = t + Duration::from_millis(100);
        assert!(l.check_at("k", later).is_ok());
        assert!(l.check_at("k", later).is_err());
        assert!(RateLimiter::new(0, 1).check_at("k", t).is_ok());
    }
}

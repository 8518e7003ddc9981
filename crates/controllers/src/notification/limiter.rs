//! Flux's rate limit of identical events: the first event of a key goes through, the same key
//! again within the interval is answered 429 and dropped (Flux's memory store with one token per
//! interval).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys remembered at most; past this the expired ones are swept, then the oldest forgotten.
const MAX_KEYS: usize = 100_000;

/// One event per key per interval.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// A limiter letting one event of each key through per `interval` (zero lets all through).
    pub fn new(interval: Duration) -> Self {
        RateLimiter {
            interval,
            seen: Mutex::default(),
        }
    }

    /// Whether an event of `key` goes through now; records it when it does.
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = seen.get(key)
            && now.saturating_duration_since(*last) < self.interval
        {
            return false;
        }
        if seen.len() >= MAX_KEYS {
            let interval = self.interval;
            seen.retain(|_, last| now.saturating_duration_since(*last) < interval);
            while seen.len() >= MAX_KEYS {
                let oldest = seen.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
                match oldest {
                    Some(oldest) => seen.remove(&oldest),
                    None => break,
                };
            }
        }
        seen.insert(key.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_key_per_interval() {
        let limiter = RateLimiter::new(Duration::from_secs(300));
        let start = Instant::now();
        assert!(limiter.allow_at("a", start));
        assert!(!limiter.allow_at("a", start + Duration::from_secs(299)));
        assert!(limiter.allow_at("b", start + Duration::from_secs(1)));
        assert!(limiter.allow_at("a", start + Duration::from_secs(300)));
        let off = RateLimiter::new(Duration::ZERO);
        assert!(off.allow_at("a", start) && off.allow_at("a", start));
    }
}

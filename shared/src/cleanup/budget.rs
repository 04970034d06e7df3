//! Cleanup's share of the Auth0 Management API rate limit, which create-user (the calls a
//! person waits for) shares with it: at most one call per `interval`, and none while
//! Auth0's last answer left `reserve` calls or fewer in its window, until the window resets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use crate::auth0::Auth0Client;
use crate::deadline::Deadline;

/// Below this much time before the stop line, no call is started.
const MIN_STEP: Duration = Duration::from_millis(200);

pub struct Auth0Budget {
    /// Time between two calls; zero: no ceiling.
    interval: Duration,
    reserve: u64,
    /// When the next call may start.
    next: Mutex<Instant>,
    calls: AtomicU64,
    waited_ms: AtomicU64,
}

impl Auth0Budget {
    /// `interval` zero sets no ceiling (the rate-limit reserve still applies).
    pub fn new(interval: Duration, reserve: u64) -> Self {
        Self {
            interval,
            reserve,
            next: Mutex::new(Instant::now()),
            calls: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Waits for the next call's turn and counts the call; false (nothing counted) when the
    /// turn would come too close to `stop_at`.
    pub async fn spend(&self, auth0: &Auth0Client, stop_at: &Deadline) -> bool {
        // Held across the sleep: callers running at once take their turns one after another.
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let mut at = (*next).max(now);
        if let Some(quota) = auth0.last_quota().filter(|q| q.remaining <= self.reserve) {
            at = at.max(now + until_epoch_second(quota.reset));
        }
        let wait = at - now;
        if wait + MIN_STEP > stop_at.remaining() {
            return false;
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            self.waited_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        }
        *next = at + self.interval;
        self.calls.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }
}

/// Time until the start of epoch second `at`; zero if it has begun.
fn until_epoch_second(at: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(at).saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_in_the_past_means_no_wait() {
        assert_eq!(until_epoch_second(0), Duration::ZERO);
        let next = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2;
        let wait = until_epoch_second(next);
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(2));
    }
}

//! The Lambda deadline, turned into timeouts for each outgoing call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

/// Time kept back from every call so a failure can still be compensated and rolled back.
pub const COMPENSATION_RESERVE: Duration = Duration::from_millis(1_500);
/// Below this a call is not worth starting.
const MIN_CALL_BUDGET: Duration = Duration::from_millis(50);
/// 2001-09-09 in epoch milliseconds: no real deadline is earlier.
const NOT_AN_EPOCH_BELOW_MS: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not enough time left before the Lambda deadline")]
pub struct DeadlineExceeded;

impl Deadline {
    /// `deadline_ms` is the Runtime API's `Lambda-Runtime-Deadline-Ms` (Unix epoch milliseconds).
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        // `cargo lambda watch` sends a constant 600000, a duration rather than an epoch time:
        // read anything before 2001 that way, or every call would find the deadline passed.
        if deadline_ms < NOT_AN_EPOCH_BELOW_MS {
            return Self::after(Duration::from_millis(deadline_ms));
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn after(remaining: Duration) -> Self {
        Self {
            at: Instant::now() + remaining,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Timeout for the next call: at most `max`, and never eating into the reserve.
    pub fn call_budget(&self, max: Duration) -> Result<Duration, DeadlineExceeded> {
        let available = self.remaining().saturating_sub(COMPENSATION_RESERVE);
        let budget = available.min(max);
        if budget < MIN_CALL_BUDGET {
            Err(DeadlineExceeded)
        } else {
            Ok(budget)
        }
    }

    /// Timeout for clean-up work (compensating deletes), which may use the reserve.
    pub fn cleanup_budget(&self, max: Duration) -> Duration {
        self.remaining().min(max).max(MIN_CALL_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_deadline_is_the_time_left_and_cargo_lambda_watchs_600000_is_ten_minutes() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let remaining = Deadline::from_epoch_millis(now_ms + 20_000).remaining();
        assert!(remaining <= Duration::from_secs(20) && remaining > Duration::from_secs(19));
        assert_eq!(
            Deadline::from_epoch_millis(now_ms - 1).remaining(),
            Duration::ZERO
        );
        let watch = Deadline::from_epoch_millis(600_000).remaining();
        assert!(watch > Duration::from_secs(599) && watch <= Duration::from_secs(600));
    }

    #[test]
    fn call_budget_is_capped_by_the_maximum_and_leaves_the_reserve() {
        let far = Deadline::after(Duration::from_secs(60));
        assert_eq!(
            far.call_budget(Duration::from_secs(5)).unwrap(),
            Duration::from_secs(5)
        );
        let near = Deadline::after(Duration::from_secs(3));
        let budget = near.call_budget(Duration::from_secs(5)).unwrap();
        assert!(budget <= Duration::from_millis(1_500) && budget > Duration::from_millis(1_400));
        assert!(
            Deadline::after(Duration::from_secs(1))
                .call_budget(Duration::from_secs(5))
                .is_err()
        );
    }
}

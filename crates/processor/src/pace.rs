//! Writes that yield to throttling (contract P37): the AIMD limit on one invocation's
//! conditional writes in flight, and the capped exponential backoff with full jitter of a
//! throttled write.
//!
//! Written by hand, as in lib/processor_function.py (WriteLimiter, WriteBackoff), because both
//! implementations must decide alike and the crates decide otherwise: `backon`'s jitter adds up
//! to its minimum delay to the exponential delay (not full jitter); `tokio-retry`'s
//! `ExponentialBackoff` grows as powers of its base (10 ms, 100 ms, 1 s), and the wait is one
//! line while the loop around it (the limiter's slot, the deadline check before each wait) is
//! ours anyway; `congestion-limiter` (0.1) lowers its limit on every overload sample, so 64
//! writes throttled at once would take it to the floor where this halves once per window. The
//! random number comes from `fastrand`.
//!
//! The SDK's adaptive retry mode (`RetryConfig::adaptive()`) is not used either: its rate
//! limiter is shared by every DynamoDB call of the retry partition (the file status writes
//! too), and the retry quota under it still runs dry under sustained throttling.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// DynamoDB's throttling answers, the 400 errors it calls "OK to retry"
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html>).
pub const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// Whether an error code is one of [`THROTTLING_CODES`].
pub fn is_throttle(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// How long a throttled write waits before it is sent again: "full jitter", a random wait in
/// [0, min(cap, base * 2^n)) before retry n + 1 (AWS Architecture Blog, "Exponential Backoff
/// And Jitter"; the SDKs back off the same way,
/// <https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>), at most
/// `retries` times per record: about a minute of waiting, where DynamoDB's guide advises
/// giving up (Programming.Errors.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBackoff {
    pub base_ms: u64,
    pub cap_ms: u64,
    pub retries: u32,
}

impl Default for WriteBackoff {
    fn default() -> Self {
        WriteBackoff {
            base_ms: 50,
            cap_ms: 2_000,
            retries: 64,
        }
    }
}

impl WriteBackoff {
    /// The wait in milliseconds before retry `retry + 1`.
    pub fn delay_ms(&self, retry: u32) -> f64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1_u64 << retry.min(32))
            .min(self.cap_ms);
        // Not for security: spreading the retries of many writers is all the randomness does.
        fastrand::f64() * ceiling as f64
    }
}

/// The limiter's state and what it counted (reported once per invocation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaceState {
    /// The limit it starts at and never exceeds.
    pub ceiling: usize,
    /// Writes allowed in flight now.
    pub limit: usize,
    /// The lowest limit reached.
    pub lowest: usize,
    pub in_flight: usize,
    /// Halvings so far: a write's ticket is the window it was sent in.
    pub window: u64,
    /// Writes answered without a throttle since the last change of the limit.
    answered: usize,
    /// Throttling answers seen.
    pub throttled: u64,
    /// Throttled writes sent again by the processor.
    pub retried: u64,
    /// Throttled writes that became retry_records.
    pub gave_up: u64,
}

/// The AIMD limit on one invocation's conditional writes in flight (P37). It starts at the
/// ceiling (the writers). A throttled write halves it (floor 1) once per window: a throttle of
/// a write sent before the last halving reports load that was already cut and does not halve
/// again. Each `limit` writes answered without a throttle raise it by one, up to the ceiling.
#[derive(Debug)]
pub struct WriteLimiter {
    state: Mutex<PaceState>,
    released: Notify,
}

impl WriteLimiter {
    pub fn new(ceiling: usize) -> WriteLimiter {
        let ceiling = ceiling.max(1);
        WriteLimiter {
            state: Mutex::new(PaceState {
                ceiling,
                limit: ceiling,
                lowest: ceiling,
                ..PaceState::default()
            }),
            released: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PaceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the limiter holds and counted.
    pub fn state(&self) -> PaceState {
        self.lock().clone()
    }

    /// Wait for a free slot; the permit's ticket is the window the write is sent in.
    pub async fn acquire(&self) -> WritePermit<'_> {
        loop {
            // Made before the check: a release between the check and the await still wakes it.
            let released = self.released.notified();
            {
                let mut state = self.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    return WritePermit {
                        limiter: self,
                        ticket: state.window,
                        done: false,
                    };
                }
            }
            released.await;
        }
    }

    /// Count a throttle of a write sent in window `ticket`: the first of a window halves the
    /// limit. Returns the window now current.
    fn throttle(state: &mut PaceState, ticket: u64) -> u64 {
        state.throttled += 1;
        if ticket == state.window {
            state.limit = (state.limit / 2).max(1);
            state.lowest = state.lowest.min(state.limit);
            state.window += 1;
            state.answered = 0;
        }
        state.window
    }

    /// Free a slot with what the write's last answer tells the limit, and wake the waiters.
    fn release(&self, last: LastAnswer) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            match last {
                LastAnswer::Answered => {
                    state.answered += 1;
                    if state.answered >= state.limit {
                        state.answered = 0;
                        state.limit = (state.limit + 1).min(state.ceiling);
                    }
                }
                LastAnswer::ThrottleCounted => {}
            }
        }
        self.released.notify_waiters();
    }
}

/// What a freed slot's last answer tells the limit.
enum LastAnswer {
    /// Answered without a throttle: counts towards raising the limit.
    Answered,
    /// Throttled, already counted by [`WritePermit::throttled`].
    ThrottleCounted,
}

/// One write's slot. A throttle is counted when it happens ([`WritePermit::throttled`]), so
/// the slot is freed either answered ([`WritePermit::answered`]) or after its counted throttles
/// ([`WritePermit::release`]); dropped without either (a cancelled write) it counts as answered
/// without a throttle.
#[derive(Debug)]
pub struct WritePermit<'a> {
    limiter: &'a WriteLimiter,
    ticket: u64,
    done: bool,
}

impl WritePermit<'_> {
    /// The window the write was sent in.
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// Free the slot of a write answered without a throttle: the answer counts towards raising
    /// the limit.
    pub fn answered(mut self) {
        self.done = true;
        self.limiter.release(LastAnswer::Answered);
    }

    /// Count a throttle, and the write as sent again (`retried`) or handed on as a
    /// retry_record, and keep the slot: the write waits its backoff holding it and is sent
    /// again in the window now current. A write sleeping in its backoff is still in flight, so
    /// that a lowered limit bounds how many records ask again, not only how many requests are
    /// in the air (released, hundreds of sleeping writes each asked again at their own pace).
    pub fn throttled(&mut self, retried: bool) {
        let mut state = self.limiter.lock();
        self.ticket = WriteLimiter::throttle(&mut state, self.ticket);
        if retried {
            state.retried += 1;
        } else {
            state.gave_up += 1;
        }
    }

    /// Free the slot of a write whose throttle [`WritePermit::throttled`] already counted.
    pub fn release(mut self) {
        self.done = true;
        self.limiter.release(LastAnswer::ThrottleCounted);
    }
}

impl Drop for WritePermit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.release(LastAnswer::Answered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_cap() {
        let backoff = WriteBackoff::default();
        for (retry, ceiling) in [
            (0, 50.0),
            (1, 100.0),
            (3, 400.0),
            (5, 1_600.0),
            (6, 2_000.0),
        ] {
            let waits: Vec<f64> = (0..400).map(|_| backoff.delay_ms(retry)).collect();
            assert!(waits.iter().all(|w| (0.0..ceiling).contains(w)), "{retry}");
            let low = waits.iter().copied().fold(f64::MAX, f64::min);
            let high = waits.iter().copied().fold(0.0, f64::max);
            assert!(low < ceiling * 0.1 && high > ceiling * 0.9, "{retry}");
        }
        assert!(backoff.delay_ms(u32::MAX) < 2_000.0);
    }

    /// A write throttled once and handed on as a retry_record: counted, then its slot freed.
    fn given_up(mut permit: WritePermit<'_>) {
        permit.throttled(false);
        permit.release();
    }

    #[tokio::test]
    async fn a_throttled_write_keeps_its_slot_while_it_waits() {
        let limiter = WriteLimiter::new(4);
        let mut waiting = limiter.acquire().await;
        let other = limiter.acquire().await;
        waiting.throttled(true);
        let state = limiter.state();
        assert_eq!((state.limit, state.in_flight, state.throttled), (2, 2, 1));
        assert_eq!((state.retried, state.gave_up), (1, 0));
        // Sent again in the new window: a second throttle halves again.
        assert_eq!(waiting.ticket(), 1);
        waiting.throttled(false);
        assert_eq!(limiter.state().limit, 1);
        // A throttle of a write sent before the halving does not halve again.
        given_up(other);
        let state = limiter.state();
        assert_eq!((state.limit, state.in_flight, state.throttled), (1, 1, 3));
        waiting.release();
        let state = limiter.state();
        assert_eq!(
            (state.in_flight, state.throttled, state.answered),
            (0, 3, 0)
        );
        assert_eq!((state.retried, state.gave_up), (1, 2));
    }

    #[tokio::test]
    async fn halves_once_per_window_and_grows_back() {
        let limiter = WriteLimiter::new(16);
        let mut permits = Vec::new();
        for _ in 0..16 {
            permits.push(limiter.acquire().await);
        }
        assert!(permits.iter().all(|p| p.ticket() == 0));
        let mut rest = permits.split_off(1);
        given_up(permits.remove(0));
        assert_eq!(limiter.state().limit, 8);
        // Throttles of writes sent before the halving report load already cut.
        let answered = rest.split_off(5);
        for permit in rest {
            given_up(permit);
        }
        assert_eq!((limiter.state().limit, limiter.state().throttled), (8, 6));
        for permit in answered {
            permit.answered(); // 10 answered: one window of 8 -> 9
        }
        assert_eq!((limiter.state().limit, limiter.state().in_flight), (9, 0));
        for _ in 0..6 {
            given_up(limiter.acquire().await);
        }
        assert_eq!((limiter.state().limit, limiter.state().lowest), (1, 1));
        for _ in 0..400 {
            limiter.acquire().await.answered();
        }
        assert_eq!(limiter.state().limit, 16);
    }

    #[tokio::test]
    async fn writers_over_the_limit_wait_for_a_slot() {
        let limiter = WriteLimiter::new(2);
        let first = limiter.acquire().await;
        let second = limiter.acquire().await;
        let third = limiter.acquire();
        tokio::pin!(third);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), &mut third).await;
        assert!(waited.is_err(), "both slots are taken");
        drop(first); // a dropped permit frees its slot too
        let third = third.await;
        assert_eq!(limiter.state().in_flight, 2);
        third.answered();
        second.answered();
        assert_eq!(limiter.state().in_flight, 0);
    }
}

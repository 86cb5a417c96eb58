//! The process-wide budget for buffered request and reply bytes
//! (`REDCLOAK_MAX_BUFFERED_BYTES`).
//!
//! Per-connection limits alone do not bound memory: 8 clients each sending 250 MB of one
//! unfinished bulk hold 2 GB. Every session buffer may use [`FREE_PER_BUFFER`] bytes without
//! asking (so small requests never wait on big ones); growth beyond that is taken from this
//! budget before the buffer grows, and given back when the buffer shrinks. When the budget is
//! exhausted the session waits a little for others to finish (backpressure), then gives up
//! with a clear error — the process never grows past the budget and never aborts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every buffer may hold without taking from the budget.
pub const FREE_PER_BUFFER: usize = 64 * 1024;

/// How long a buffer waits for budget before its session gives up.
pub const WAIT: Duration = Duration::from_secs(2);

/// The shared budget.
#[derive(Debug)]
pub struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The configured limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes `n` bytes if they fit. False (nothing taken) if they do not.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        self.try_take_within(n, self.max)
    }

    /// Takes `n` bytes if the use stays within `limit` (≤ the budget). False (nothing
    /// taken) if it would not.
    pub(crate) fn try_take_within(&self, n: usize, limit: usize) -> bool {
        let limit = limit.min(self.max);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken before.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// What one buffer holds of the budget; given back on drop.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<Budget>,
    held: usize,
}

/// The budget is exhausted: this buffer may not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// The configured limit.
    pub max: usize,
}

impl Hold {
    /// Holds nothing yet.
    pub fn new(budget: &Arc<Budget>) -> Hold {
        Hold {
            budget: budget.clone(),
            held: 0,
        }
    }

    /// Adjusts the hold for a buffer of `capacity` bytes: takes what it needs beyond
    /// [`FREE_PER_BUFFER`], gives back what it no longer needs. False if the budget cannot
    /// cover the growth (nothing is taken then).
    pub fn fit(&mut self, capacity: usize) -> bool {
        let want = capacity.saturating_sub(FREE_PER_BUFFER);
        if want > self.held {
            if !self.budget.try_take(want - self.held) {
                return false;
            }
        } else {
            self.budget.give(self.held - want);
        }
        self.held = want;
        true
    }

    /// Like [`Hold::fit`], waiting up to [`WAIT`] for other sessions to give budget back.
    pub async fn fit_or_wait(&mut self, capacity: usize) -> Result<(), Exhausted> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut pause = Duration::from_millis(1);
        while !self.fit(capacity) {
            if tokio::time::Instant::now() >= deadline {
                return Err(Exhausted {
                    max: self.budget.max,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Hold {
    /// Makes room for a read into `buf`: at least a quarter of `chunk` is left as it is (a
    /// read that size is still worth its system call); otherwise the allocation is used again
    /// if nothing else holds its bytes, or the buffer grows by half (or `chunk`), only with
    /// budget taken first, so the buffer never grows past what the budget allows. While the
    /// contents are copied the old and the new allocation both exist, so the growth holds
    /// both until the old one is gone.
    ///
    /// Requests (and replies) parsed out of the buffer share its allocation until they are
    /// dropped, and the reader asks for room again as soon as it has queued a request — while
    /// that request is still alive. Asking for a whole `chunk` free made every request at
    /// -P 1 allocate a new 16 KiB buffer.
    pub async fn grow(&mut self, buf: &mut bytes::BytesMut, chunk: usize) -> Result<(), Exhausted> {
        if buf.capacity() - buf.len() >= chunk / 4 {
            return Ok(());
        }
        // Within the allocation the hold took when it was made: nothing new to take.
        if buf.try_reclaim(chunk) {
            return Ok(());
        }
        let capacity = buf.len() + chunk.max(buf.len() / 2);
        let old = if buf.capacity() > FREE_PER_BUFFER {
            buf.capacity()
        } else {
            0
        };
        self.fit_or_wait(capacity + old).await?;
        let mut grown = bytes::BytesMut::with_capacity(capacity);
        grown.extend_from_slice(buf);
        *buf = grown;
        // The old allocation is freed: give its share back.
        self.fit(capacity);
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_take_only_growth_and_give_it_back() {
        let budget = Budget::new(1000);
        let mut a = Hold::new(&budget);
        assert!(a.fit(FREE_PER_BUFFER), "the free part costs nothing");
        assert_eq!(budget.used(), 0);
        assert!(a.fit(FREE_PER_BUFFER + 600));
        assert_eq!(budget.used(), 600);
        let mut b = Hold::new(&budget);
        assert!(!b.fit(FREE_PER_BUFFER + 500), "over the budget");
        assert_eq!(budget.used(), 600, "a refused growth takes nothing");
        assert!(a.fit(FREE_PER_BUFFER + 100));
        assert!(b.fit(FREE_PER_BUFFER + 500));
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    /// Growing copies into a new allocation: the budget holds old + new meanwhile, and only
    /// the new one afterwards.
    #[tokio::test]
    async fn growth_holds_the_old_and_the_new_buffer_while_copying() {
        let budget = Budget::new(10 * FREE_PER_BUFFER);
        let mut a = Hold::new(&budget);
        let mut buf = bytes::BytesMut::new();
        let mut peak = 0;
        while buf.capacity() < 3 * FREE_PER_BUFFER {
            a.grow(&mut buf, 16 * 1024).await.unwrap();
            buf.resize(buf.capacity(), 0);
            peak = peak.max(budget.used());
        }
        assert_eq!(budget.used(), buf.capacity() - FREE_PER_BUFFER);
        // Twice the budget would be needed to copy 6× into 9×: refused, nothing kept.
        let mut big = bytes::BytesMut::with_capacity(6 * FREE_PER_BUFFER);
        big.resize(big.capacity(), 0);
        let mut b = Hold::new(&budget);
        assert!(b.fit(big.capacity()));
        tokio::time::pause();
        assert!(b.grow(&mut big, 16 * 1024).await.is_err());
        assert_eq!(big.capacity(), 6 * FREE_PER_BUFFER, "not grown");
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(peak > 0);
    }

    #[tokio::test]
    async fn a_buffer_whose_contents_were_taken_is_used_again() {
        let budget = Budget::new(10 * FREE_PER_BUFFER);
        let mut a = Hold::new(&budget);
        let mut buf = bytes::BytesMut::new();
        // Grown past the free part, so the hold takes from the budget.
        a.grow(&mut buf, 2 * FREE_PER_BUFFER).await.unwrap();
        let (start, used) = (buf.as_ptr(), budget.used());
        assert!(used > 0);
        let capacity = buf.capacity();
        for round in 0..100 {
            // Enough to leave less than a quarter of the chunk free.
            buf.resize(capacity - FREE_PER_BUFFER / 4 + round, b'x');
            // A parsed request leaves with the bytes it was made of…
            let request = buf.split_to(buf.len()).freeze();
            drop(request);
            a.grow(&mut buf, 2 * FREE_PER_BUFFER).await.unwrap();
            // …and the same allocation takes the next one: no new buffer, nothing more held.
            assert_eq!(buf.as_ptr(), start, "round {round}");
            assert_eq!(budget.used(), used);
        }
        // While a request still holds its bytes, the buffer cannot be reused: it grows anew.
        buf.resize(capacity - FREE_PER_BUFFER / 4, b'x');
        let held = buf.split_to(10).freeze();
        a.grow(&mut buf, 2 * FREE_PER_BUFFER).await.unwrap();
        assert_ne!(buf.as_ptr(), start);
        assert!(buf.capacity() - buf.len() >= 2 * FREE_PER_BUFFER);
        drop(held);
        // A quarter of a chunk free is room enough: left as it is.
        let before = buf.as_ptr();
        buf.resize(buf.capacity() - 2 * FREE_PER_BUFFER / 4, b'x');
        a.grow(&mut buf, 2 * FREE_PER_BUFFER).await.unwrap();
        assert_eq!(buf.as_ptr(), before);
    }

    #[test]
    fn a_take_within_a_limit_leaves_the_rest_of_the_budget() {
        let budget = Budget::new(1000);
        assert!(budget.try_take_within(400, 500));
        assert!(!budget.try_take_within(200, 500), "over the limit");
        assert_eq!(budget.used(), 400, "a refused take takes nothing");
        assert!(budget.try_take(600), "the rest is there for the others");
        assert!(
            !budget.try_take_within(1, 5000),
            "never over the budget itself"
        );
        budget.give(1000);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn waiting_ends_with_an_error_not_a_hang() {
        let budget = Budget::new(10);
        let mut a = Hold::new(&budget);
        tokio::time::pause();
        assert_eq!(
            a.fit_or_wait(FREE_PER_BUFFER + 11).await,
            Err(Exhausted { max: 10 })
        );
    }
}

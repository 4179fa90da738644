//! Counting on the shards and collecting on the control thread.
//!
//! Each shard counts in its own [`ShardStats`]: plain integers behind a `RefCell`, indexed
//! by *stats slot* (a number the control thread gives each frontend, backend and server,
//! stable over reloads, carried in the snapshot). No atomics, no sharing on the hot path.
//!
//! When the control thread needs numbers it calls [`StatsHub::request`]; each shard, at its
//! next housekeeping tick (every 100 ms), sees the request and copies its counters into
//! its own mutex-protected mailbox in the hub ([`StatsHub::publish`]); the control thread
//! waits for every shard's answer ([`StatsHub::answered`]) and sums them
//! ([`StatsHub::merged`]). The only lock is taken once per request per shard, off the
//! request path.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::report::Counters;

/// The index of a response status in [`Counters::http_responses`].
pub fn status_class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

/// A shard's counters, indexed by stats slot (grown on demand).
#[derive(Debug, Default)]
pub struct ShardStats {
    slots: RefCell<Vec<Counters>>,
    /// Per server slot: consecutive live-traffic errors (`observe`).
    consecutive_errors: RefCell<Vec<u32>>,
}

impl ShardStats {
    /// Update the counters of `slot`.
    #[inline]
    pub fn update(&self, slot: usize, f: impl FnOnce(&mut Counters)) {
        let mut slots = self.slots.borrow_mut();
        if slot >= slots.len() {
            slots.resize(slot + 1, Counters::default());
        }
        f(&mut slots[slot]);
    }

    /// A session starts on `slot` (current, max and total sessions).
    #[inline]
    pub fn session_started(&self, slot: usize) {
        self.update(slot, |c| {
            c.current_sessions += 1;
            c.total_sessions += 1;
            c.max_sessions = c.max_sessions.max(c.current_sessions);
        });
    }

    /// A session of `slot` ends.
    #[inline]
    pub fn session_ended(&self, slot: usize) {
        self.update(slot, |c| {
            c.current_sessions = c.current_sessions.saturating_sub(1)
        });
    }

    /// Live-traffic observation: an error (`true`) or a success on server `slot`.
    /// Returns true when this error makes `limit` consecutive ones (the count restarts).
    pub fn observe(&self, slot: usize, error: bool, limit: u32) -> bool {
        let mut counts = self.consecutive_errors.borrow_mut();
        if slot >= counts.len() {
            if !error {
                return false;
            }
            counts.resize(slot + 1, 0);
        }
        if !error {
            counts[slot] = 0;
            return false;
        }
        counts[slot] += 1;
        if counts[slot] >= limit.max(1) {
            counts[slot] = 0;
            return true;
        }
        false
    }

    /// A copy of every counter.
    pub fn copy(&self) -> Vec<Counters> {
        self.slots.borrow().clone()
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    /// The request this answers.
    seq: u64,
    counters: Vec<Counters>,
}

/// Where shards hand their counters to the control thread.
#[derive(Debug)]
pub struct StatsHub {
    wanted: AtomicU64,
    mailboxes: Vec<Mutex<Mailbox>>,
}

impl StatsHub {
    /// A hub for `shards` shards.
    pub fn new(shards: usize) -> StatsHub {
        StatsHub {
            wanted: AtomicU64::new(0),
            mailboxes: (0..shards)
                .map(|_| Mutex::new(Mailbox::default()))
                .collect(),
        }
    }

    /// Control thread: ask every shard for its counters; returns the request number to
    /// pass to [`StatsHub::answered`].
    pub fn request(&self) -> u64 {
        self.wanted.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Shard: the latest request number (compare with the last one answered).
    pub fn wanted(&self) -> u64 {
        self.wanted.load(Ordering::Acquire)
    }

    /// Shard `shard`: answer request `seq` with `stats`.
    pub fn publish(&self, shard: usize, seq: u64, stats: &ShardStats) {
        let counters = stats.copy();
        let mut mailbox = self.mailboxes[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        mailbox.seq = seq;
        mailbox.counters = counters;
    }

    /// Control thread: whether every shard has answered request `seq`.
    pub fn answered(&self, seq: u64) -> bool {
        self.mailboxes
            .iter()
            .all(|m| m.lock().unwrap_or_else(|e| e.into_inner()).seq >= seq)
    }

    /// Control thread: the sum over shards of their latest answers, indexed by slot.
    pub fn merged(&self) -> Vec<Counters> {
        let mut total: Vec<Counters> = Vec::new();
        for mailbox in &self.mailboxes {
            let mailbox = mailbox.lock().unwrap_or_else(|e| e.into_inner());
            if mailbox.counters.len() > total.len() {
                total.resize(mailbox.counters.len(), Counters::default());
            }
            for (sum, c) in total.iter_mut().zip(&mailbox.counters) {
                add(sum, c);
            }
        }
        total
    }
}

/// `sum += c`, field by field.
pub fn add(sum: &mut Counters, c: &Counters) {
    sum.current_sessions += c.current_sessions;
    sum.max_sessions += c.max_sessions;
    sum.total_sessions += c.total_sessions;
    sum.bytes_in += c.bytes_in;
    sum.bytes_out += c.bytes_out;
    sum.http_requests += c.http_requests;
    for (s, x) in sum.http_responses.iter_mut().zip(&c.http_responses) {
        *s += x;
    }
    sum.denied += c.denied;
    sum.request_errors += c.request_errors;
    sum.connection_errors += c.connection_errors;
    sum.response_errors += c.response_errors;
    sum.retries += c.retries;
    sum.redispatches += c.redispatches;
    sum.queue += c.queue;
    sum.tls_handshakes += c.tls_handshakes;
    sum.tls_resumed += c.tls_resumed;
    sum.tls_handshake_failures += c.tls_handshake_failures;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_by_slot() {
        let hub = StatsHub::new(2);
        let a = ShardStats::default();
        let b = ShardStats::default();
        a.session_started(0);
        a.update(3, |c| c.bytes_in += 10);
        b.update(3, |c| c.bytes_in += 5);
        b.session_started(0);
        b.session_started(0);
        b.session_ended(0);
        let seq = hub.request();
        assert!(!hub.answered(seq));
        hub.publish(0, seq, &a);
        assert!(!hub.answered(seq));
        hub.publish(1, seq, &b);
        assert!(hub.answered(seq));
        let merged = hub.merged();
        assert_eq!(merged[3].bytes_in, 15);
        assert_eq!(merged[0].total_sessions, 3);
        assert_eq!(merged[0].current_sessions, 2);
        assert_eq!(merged[0].max_sessions, 3);
    }

    #[test]
    fn observe_counts_consecutive_errors() {
        let s = ShardStats::default();
        assert!(!s.observe(2, false, 3));
        assert!(!s.observe(2, true, 3));
        assert!(!s.observe(2, true, 3));
        assert!(!s.observe(2, false, 3));
        assert!(!s.observe(2, true, 3));
        assert!(!s.observe(2, true, 3));
        assert!(s.observe(2, true, 3));
        assert!(!s.observe(2, true, 3));
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), 0);
        assert_eq!(status_class(204), 1);
        assert_eq!(status_class(302), 2);
        assert_eq!(status_class(404), 3);
        assert_eq!(status_class(503), 4);
        assert_eq!(status_class(99), 5);
    }
}

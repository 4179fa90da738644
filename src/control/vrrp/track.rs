//! What moves an instance's priority or puts it in FAULT besides the protocol: tracked
//! scripts (`track_script`), this box's own proxy (`track_proxy`) and links
//! (`track_interface`, and the instance's own interface). Sans-io parts here; the tasks
//! that run scripts and watch the proxy are in [`super::router`].

use std::time::{Duration, Instant};

use crate::config::TrackScript;

/// One tracked thing's verdict over time, with `rise`/`fall` hysteresis.
#[derive(Debug, Clone)]
pub struct Verdict {
    rise: u32,
    fall: u32,
    /// Healthy as far as the instance is concerned.
    healthy: bool,
    /// Consecutive results contradicting `healthy`.
    streak: u32,
    /// Why, for `show vrrp` and the log (the last failure's reason, or "ok").
    pub reason: String,
}

impl Verdict {
    /// A tracker that starts healthy (as Keepalived's scripts do: an instance does not
    /// start in FAULT because a script has not run yet).
    pub fn new(rise: u32, fall: u32) -> Verdict {
        Verdict {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: true,
            streak: 0,
            reason: "not run yet".into(),
        }
    }

    /// Whether it counts as healthy now.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Record one result; `true` when the verdict flipped.
    pub fn record(&mut self, ok: bool, reason: String) -> bool {
        self.reason = reason;
        if ok == self.healthy {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if ok { self.rise } else { self.fall };
        if self.streak >= needed {
            self.healthy = ok;
            self.streak = 0;
            return true;
        }
        false
    }
}

/// What a tracker's weight does with its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing (healthy with a negative weight, unhealthy with a positive one).
    None,
    /// Add this to the priority.
    Adjust(i32),
    /// Put the instance in FAULT.
    Fault,
}

/// Keepalived's weight rule: a negative weight is added while unhealthy, a positive one
/// while healthy, and weight 0 means FAULT while unhealthy. In a sync group every
/// unhealthy tracker means FAULT (weights would let the members' priorities disagree and
/// the group flap; Keepalived ignores them there by default too).
pub fn effect(weight: i32, healthy: bool, in_sync_group: bool) -> Effect {
    match (healthy, weight) {
        (false, _) if in_sync_group => Effect::Fault,
        (false, 0) => Effect::Fault,
        (false, w) if w < 0 => Effect::Adjust(w),
        (true, w) if w > 0 && !in_sync_group => Effect::Adjust(w),
        _ => Effect::None,
    }
}

/// The effective priority: `base` plus the adjustments, kept in 1..=254; the address
/// owner (255) is never adjusted.
pub fn effective_priority(base: u8, adjustments: impl Iterator<Item = i32>) -> u8 {
    if base == super::machine::OWNER_PRIORITY {
        return base;
    }
    let sum: i32 = adjustments.sum();
    (i32::from(base) + sum).clamp(1, 254) as u8
}

/// A `track_script` entry's schedule and verdict.
#[derive(Debug, Clone)]
pub struct ScriptTracker {
    /// Its configuration.
    pub script: TrackScript,
    /// Its verdict.
    pub verdict: Verdict,
    /// When it last finished.
    pub last_run: Option<Instant>,
}

impl ScriptTracker {
    /// A tracker for `script`.
    pub fn new(script: TrackScript) -> ScriptTracker {
        ScriptTracker {
            verdict: Verdict::new(script.rise, script.fall),
            script,
            last_run: None,
        }
    }

    /// A short name for logs: the program's file name and its arguments.
    pub fn label(&self) -> String {
        let mut words = self.script.script.iter();
        let program = words
            .next()
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            .unwrap_or_default();
        std::iter::once(program)
            .chain(words.cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How long the proxy may leave a stats request unanswered before a shard counts as stuck.
pub const SHARD_SILENCE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_needs_fall_failures_and_rise_successes() {
        let mut v = Verdict::new(2, 3);
        assert!(v.healthy());
        assert!(!v.record(false, "x".into()));
        assert!(!v.record(false, "x".into()));
        assert!(v.record(false, "x".into()));
        assert!(!v.healthy());
        assert!(!v.record(true, "ok".into()));
        // A failure in between restarts the count.
        assert!(!v.record(false, "x".into()));
        assert!(!v.record(true, "ok".into()));
        assert!(v.record(true, "ok".into()));
        assert!(v.healthy());
    }

    #[test]
    fn weights_follow_keepalived() {
        assert_eq!(effect(-50, false, false), Effect::Adjust(-50));
        assert_eq!(effect(-50, true, false), Effect::None);
        assert_eq!(effect(10, true, false), Effect::Adjust(10));
        assert_eq!(effect(10, false, false), Effect::None);
        assert_eq!(effect(0, false, false), Effect::Fault);
        assert_eq!(effect(0, true, false), Effect::None);
        assert_eq!(effect(-50, false, true), Effect::Fault);
        assert_eq!(effect(10, true, true), Effect::None);
    }

    #[test]
    fn priority_is_clamped_and_owner_is_fixed() {
        assert_eq!(effective_priority(100, [-50].into_iter()), 50);
        assert_eq!(effective_priority(100, [-150].into_iter()), 1);
        assert_eq!(effective_priority(200, [100].into_iter()), 254);
        assert_eq!(effective_priority(255, [-100].into_iter()), 255);
        assert_eq!(effective_priority(100, std::iter::empty()), 100);
    }
}

//! The health state of one server (sans-io): check results, live-traffic errors and admin
//! actions go in, with `now`; transitions come out. The control thread owns one
//! [`ServerHealth`] per server and turns it into the snapshot the shards read.

use std::time::{Duration, Instant};

use crate::config::Check;
use crate::stats::report::ServerState;
use crate::stats::AdminState;

/// A health change worth a log line and a new snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The server became usable.
    Up,
    /// The server stopped being usable because of checks or observed errors.
    Down,
}

/// Health and administrative state of one server.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    /// Whether the server is health-checked at all (unchecked servers are always UP).
    pub checked: bool,
    /// Healthy (UP or going down) or not (DOWN or going up).
    pub up: bool,
    /// Consecutive results against the current state: failures while up, successes
    /// while down.
    pub streak: u32,
    /// Administrative state.
    pub admin: AdminState,
    /// Weight from the configuration or `set server … weight`.
    pub weight: u32,
    /// The weight the configuration gave (an admin weight is kept over a reload only if
    /// the configured weight did not change).
    pub config_weight: u32,
    /// When the displayed state last changed.
    pub last_change: Instant,
    /// Why it last changed.
    pub reason: String,
    /// The last check's result.
    pub last_check: Option<String>,
    /// Since when the server is unusable because DOWN or MAINT (`None` while usable).
    pub down_since: Option<Instant>,
    /// Downtime of earlier stretches.
    pub downtime: Duration,
    /// When the server last became UP (slow start ramps from here).
    pub up_since: Option<Instant>,
    /// Failed checks since start.
    pub check_failures: u64,
    /// UP → DOWN transitions since start.
    pub down_transitions: u64,
    /// Bumped at each DOWN transition when sessions must be shut down.
    pub shutdown_epoch: u64,
}

impl ServerHealth {
    /// A server as it starts: UP (checked or not), admin ready unless `disabled`.
    pub fn new(checked: bool, weight: u32, disabled: bool, now: Instant) -> ServerHealth {
        ServerHealth {
            checked,
            up: true,
            streak: 0,
            admin: if disabled {
                AdminState::Maint
            } else {
                AdminState::Ready
            },
            weight,
            config_weight: weight,
            last_change: now,
            reason: if disabled {
                "disabled in the configuration".to_string()
            } else if checked {
                "starting".to_string()
            } else {
                "not checked".to_string()
            },
            last_check: None,
            down_since: disabled.then_some(now),
            downtime: Duration::ZERO,
            up_since: None,
            check_failures: 0,
            down_transitions: 0,
            shutdown_epoch: 0,
        }
    }

    /// The state as displayed: the admin state first, then health.
    pub fn state(&self) -> ServerState {
        match self.admin {
            AdminState::Maint => ServerState::Maint,
            AdminState::Drain => ServerState::Drain,
            AdminState::Ready => match (self.up, self.streak > 0) {
                (true, false) => ServerState::Up,
                (true, true) => ServerState::GoingDown,
                (false, false) => ServerState::Down,
                (false, true) => ServerState::GoingUp,
            },
        }
    }

    /// Whether new traffic may go to it.
    pub fn usable(&self) -> bool {
        self.up && self.admin == AdminState::Ready
    }

    /// Whether a request pinned to it by persistence may still go to it.
    pub fn pinnable(&self) -> bool {
        self.up && self.admin != AdminState::Maint
    }

    /// The weight in force at `now`: 0 when not usable; during `slowstart` after coming
    /// UP, a share of `weight` growing linearly from 1 (so the server gets a little traffic
    /// at once, as HAProxy does).
    pub fn effective_weight(&self, slowstart: Option<Duration>, now: Instant) -> u32 {
        if !self.usable() {
            return 0;
        }
        match (slowstart, self.up_since) {
            (Some(ramp), Some(since)) if !ramp.is_zero() && self.weight > 0 => {
                let elapsed = now.saturating_duration_since(since);
                if elapsed >= ramp {
                    return self.weight;
                }
                let share = elapsed.as_secs_f64() / ramp.as_secs_f64();
                ((f64::from(self.weight) * share).ceil() as u32).clamp(1, self.weight)
            }
            _ => self.weight,
        }
    }

    /// Whether the weight is still ramping at `now` (the control thread then republishes
    /// periodically).
    pub fn ramping(&self, slowstart: Option<Duration>, now: Instant) -> bool {
        match (slowstart, self.up_since) {
            (Some(ramp), Some(since)) => {
                self.usable() && now.saturating_duration_since(since) < ramp
            }
            _ => false,
        }
    }

    /// Seconds of downtime up to `now`.
    pub fn downtime_at(&self, now: Instant) -> Duration {
        self.downtime
            + self
                .down_since
                .map(|s| now.saturating_duration_since(s))
                .unwrap_or_default()
    }

    /// How long to wait before the next check of a server with `check`.
    pub fn next_interval(&self, check: &Check) -> Duration {
        if self.streak > 0 {
            check.fastinter
        } else if self.up {
            check.inter
        } else {
            check.downinter
        }
    }

    /// A check result: `Ok(detail)` or `Err(reason)`. Returns the transition it caused.
    pub fn on_check(
        &mut self,
        result: Result<String, String>,
        rise: u32,
        fall: u32,
        now: Instant,
    ) -> Option<Transition> {
        let before = self.state();
        let transition = match result {
            Ok(detail) => {
                self.last_check = Some(detail.clone());
                if self.up {
                    self.streak = 0;
                    None
                } else {
                    self.streak += 1;
                    if self.streak >= rise {
                        self.become_up(detail, now);
                        Some(Transition::Up)
                    } else {
                        None
                    }
                }
            }
            Err(reason) => {
                self.check_failures += 1;
                self.last_check = Some(reason.clone());
                if self.up {
                    self.streak += 1;
                    if self.streak >= fall {
                        self.become_down(reason, now);
                        Some(Transition::Down)
                    } else {
                        None
                    }
                } else {
                    self.streak = 0;
                    None
                }
            }
        };
        if transition.is_none() && self.state() != before {
            // going up / going down / back: a displayed change, not a traffic change
            self.last_change = now;
        }
        transition
    }

    /// Live traffic produced `error_limit` consecutive errors: DOWN now, like failed
    /// checks (the checks bring it back).
    pub fn on_observed_errors(&mut self, reason: String, now: Instant) -> Option<Transition> {
        if !self.up {
            return None;
        }
        self.become_down(reason, now);
        Some(Transition::Down)
    }

    /// An admin action; returns the transition in usability, if any.
    pub fn set_admin(&mut self, admin: AdminState, now: Instant) -> Option<Transition> {
        if admin == self.admin {
            return None;
        }
        let was_usable = self.usable();
        let was_counting_down = self.down_since.is_some();
        self.admin = admin;
        self.last_change = now;
        self.reason = format!("set to {} by admin", admin_word(admin));
        let unusable_for_downtime = !self.up || admin == AdminState::Maint;
        match (was_counting_down, unusable_for_downtime) {
            (false, true) => self.down_since = Some(now),
            (true, false) => {
                if let Some(since) = self.down_since.take() {
                    self.downtime += now.saturating_duration_since(since);
                }
            }
            _ => {}
        }
        match (was_usable, self.usable()) {
            (false, true) => {
                self.up_since = Some(now);
                Some(Transition::Up)
            }
            (true, false) => Some(Transition::Down),
            _ => None,
        }
    }

    fn become_up(&mut self, reason: String, now: Instant) {
        self.up = true;
        self.streak = 0;
        self.last_change = now;
        self.reason = reason;
        self.up_since = Some(now);
        if self.admin != AdminState::Maint {
            if let Some(since) = self.down_since.take() {
                self.downtime += now.saturating_duration_since(since);
            }
        }
    }

    fn become_down(&mut self, reason: String, now: Instant) {
        self.up = false;
        self.streak = 0;
        self.last_change = now;
        self.reason = reason;
        self.up_since = None;
        self.down_transitions += 1;
        if self.down_since.is_none() {
            self.down_since = Some(now);
        }
    }
}

/// `ready`, `drain` or `maint`.
pub fn admin_word(admin: AdminState) -> &'static str {
    match admin {
        AdminState::Ready => "ready",
        AdminState::Drain => "drain",
        AdminState::Maint => "maint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(h: &mut ServerHealth, now: Instant) -> Option<Transition> {
        h.on_check(Err("L4 connect refused".into()), 2, 3, now)
    }

    fn pass(h: &mut ServerHealth, now: Instant) -> Option<Transition> {
        h.on_check(Ok("L4 connect ok".into()), 2, 3, now)
    }

    #[test]
    fn fall_then_rise() {
        let now = Instant::now();
        let mut h = ServerHealth::new(true, 10, false, now);
        assert_eq!(h.state(), ServerState::Up);
        assert_eq!(fail(&mut h, now), None);
        assert_eq!(h.state(), ServerState::GoingDown);
        assert!(h.usable());
        assert_eq!(pass(&mut h, now), None);
        assert_eq!(h.state(), ServerState::Up);
        fail(&mut h, now);
        fail(&mut h, now);
        assert_eq!(fail(&mut h, now), Some(Transition::Down));
        assert_eq!(h.state(), ServerState::Down);
        assert!(!h.usable());
        assert_eq!(h.reason, "L4 connect refused");
        assert_eq!(h.down_transitions, 1);
        assert_eq!(pass(&mut h, now), None);
        assert_eq!(h.state(), ServerState::GoingUp);
        assert!(!h.usable());
        assert_eq!(fail(&mut h, now), None);
        assert_eq!(h.state(), ServerState::Down);
        pass(&mut h, now);
        assert_eq!(pass(&mut h, now), Some(Transition::Up));
        assert_eq!(h.state(), ServerState::Up);
        assert_eq!(h.check_failures, 5);
    }

    #[test]
    fn slowstart_ramps_from_one_to_weight() {
        let t0 = Instant::now();
        let mut h = ServerHealth::new(true, 100, false, t0);
        for _ in 0..3 {
            fail(&mut h, t0);
        }
        pass(&mut h, t0);
        pass(&mut h, t0);
        let ramp = Some(Duration::from_secs(10));
        assert_eq!(h.effective_weight(ramp, t0), 1);
        assert_eq!(h.effective_weight(ramp, t0 + Duration::from_secs(5)), 50);
        assert_eq!(h.effective_weight(ramp, t0 + Duration::from_secs(10)), 100);
        assert!(h.ramping(ramp, t0 + Duration::from_secs(9)));
        assert!(!h.ramping(ramp, t0 + Duration::from_secs(10)));
        assert_eq!(h.effective_weight(None, t0), 100);
    }

    #[test]
    fn admin_states() {
        let t0 = Instant::now();
        let mut h = ServerHealth::new(true, 1, false, t0);
        assert_eq!(h.set_admin(AdminState::Drain, t0), Some(Transition::Down));
        assert_eq!(h.state(), ServerState::Drain);
        assert!(!h.usable());
        assert!(h.pinnable());
        assert_eq!(h.set_admin(AdminState::Maint, t0), None);
        assert!(!h.pinnable());
        let later = t0 + Duration::from_secs(3);
        assert_eq!(h.set_admin(AdminState::Ready, later), Some(Transition::Up));
        assert_eq!(h.downtime_at(later), Duration::from_secs(3));
        let disabled = ServerHealth::new(false, 1, true, t0);
        assert_eq!(disabled.state(), ServerState::Maint);
    }

    #[test]
    fn observed_errors_mark_down() {
        let t0 = Instant::now();
        let mut h = ServerHealth::new(true, 1, false, t0);
        assert_eq!(
            h.on_observed_errors("observed 3 consecutive errors".into(), t0),
            Some(Transition::Down)
        );
        assert_eq!(h.state(), ServerState::Down);
        assert_eq!(h.on_observed_errors("again".into(), t0), None);
    }
}

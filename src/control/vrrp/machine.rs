//! The VRRP state machine of one virtual router (RFC 5798 §6.4, also right for RFC 3768),
//! sans-io: events and `now` go in, actions come out; [`Machine::next_deadline`] says when
//! to call it again with [`Event::Timer`]. The I/O shell sends the adverts, adds and
//! removes the virtual addresses and announces them (gratuitous ARP / unsolicited NA).
//!
//! Beyond the RFC, as Keepalived does: `preempt_delay` (a backup does not preempt a
//! lower-priority master until this long after startup), a master answers a
//! lower-priority advert at once with its own (RFC 9568 §6.4.3), a master leaving (stop or
//! fault) sends priority 0 so a backup takes over after its skew time instead of the whole
//! master-down interval, and an effective priority that tracking may change at run time.
//! Also a master that yields to a higher priority sends priority 0, and a master that hears
//! priority 0 announces its addresses again: after a healed split brain the winner then
//! re-announces even when it never hears the loser as master (Keepalived issue #166).

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Priority of the address owner: it is master at once and always wins.
pub const OWNER_PRIORITY: u8 = 255;

/// The RFC states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started, or stopped.
    Init,
    /// Listening; takes over when the master goes silent.
    Backup,
    /// Holds the virtual addresses and advertises.
    Master,
    /// A tracked interface is down: holds nothing, sends nothing.
    Fault,
}

impl State {
    /// `INIT`, `BACKUP`, `MASTER`, `FAULT`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// The fixed parameters of an instance.
#[derive(Debug, Clone)]
pub struct Params {
    /// Our advertisement interval.
    pub advert_int: Duration,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// After startup, how long preemption waits.
    pub preempt_delay: Duration,
    /// Our primary address on the interface (ties between equal priorities go to the
    /// higher address).
    pub local: IpAddr,
}

/// What happens to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start (or restart after a fault).
    Startup,
    /// Stop cleanly (a master sends priority 0).
    Shutdown,
    /// A valid advertisement of our VRID from another router.
    Advert {
        /// Its source address.
        from: IpAddr,
        /// Its priority.
        priority: u8,
        /// Its advertisement interval.
        interval: Duration,
    },
    /// A deadline given by [`Machine::next_deadline`] has passed.
    Timer,
    /// Something tracked failed (an interface down, a script, the proxy, the sync group):
    /// give up the addresses and stay silent.
    Fault(String),
    /// Nothing tracked fails any more.
    FaultCleared,
    /// Sync group: another instance of the group became master; a backup follows at once.
    Takeover(String),
    /// Sync group: another instance of the group left master; a master follows (sending
    /// priority 0 so that the peer's instance takes over after its skew time).
    StepDown(String),
    /// The effective priority changed (tracking).
    Priority(u8),
}

/// What the I/O shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority.
    Send(u8),
    /// Add the virtual addresses and announce them (GARP / NA burst).
    TakeAddresses,
    /// Remove the virtual addresses.
    ReleaseAddresses,
    /// The state changed (log it, run the notify script).
    Transition {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why, for the log, `halb ctl show vrrp` and the stats page.
        reason: String,
    },
}

/// One virtual router.
#[derive(Debug, Clone)]
pub struct Machine {
    params: Params,
    state: State,
    priority: u8,
    /// The master's advertisement interval as last heard (ours when master).
    master_adver_interval: Duration,
    adver_at: Option<Instant>,
    master_down_at: Option<Instant>,
    preempt_from: Instant,
    /// The master as last heard (ourselves when master).
    master: Option<IpAddr>,
    /// The master-down timer runs short because the master sent priority 0.
    master_left: bool,
    /// A lower-priority master we are about to preempt (its address and priority).
    preempting: Option<(IpAddr, u8)>,
}

impl Machine {
    /// An instance in `Init` with effective priority `priority` (1..=255).
    pub fn new(params: Params, priority: u8, now: Instant) -> Machine {
        Machine {
            master_adver_interval: params.advert_int,
            params,
            state: State::Init,
            priority: priority.max(1),
            adver_at: None,
            master_down_at: None,
            preempt_from: now,
            master: None,
            master_left: false,
            preempting: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The master as last heard (our own address when we are master).
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }

    /// When [`Event::Timer`] is due next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Master => self.adver_at,
            State::Backup => self.master_down_at,
            State::Init | State::Fault => None,
        }
    }

    /// Skew time (RFC 5798 §6.1): `((256 - priority) * Master_Adver_Interval) / 256`.
    pub fn skew(&self) -> Duration {
        self.master_adver_interval * (256 - u32::from(self.priority)) / 256
    }

    /// Master down interval: `3 * Master_Adver_Interval + Skew_Time`.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * 3 + self.skew()
    }

    /// Handle `event` at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, event) {
            (State::Init, Event::Startup) => {
                self.preempt_from = now + self.params.preempt_delay;
                self.start(now, "startup", &mut out);
            }
            (State::Fault, Event::FaultCleared) => {
                self.start(now, "fault cleared", &mut out);
            }
            (State::Init | State::Fault, Event::Priority(p)) => self.priority = p.max(1),
            (State::Init | State::Fault, _) => {}
            (_, Event::Fault(reason)) => {
                self.leave(now, State::Fault, reason, &mut out);
            }
            (State::Backup, Event::Takeover(reason)) => self.become_master(now, reason, &mut out),
            (State::Master, Event::StepDown(reason)) => {
                out.push(Action::Send(0));
                out.push(Action::ReleaseAddresses);
                self.state = State::Backup;
                self.adver_at = None;
                self.master = None;
                self.master_down_at = Some(now + self.master_down_interval());
                out.push(Action::Transition {
                    from: State::Master,
                    to: State::Backup,
                    reason,
                });
            }
            (_, Event::Takeover(_)) | (_, Event::StepDown(_)) => {}
            (_, Event::Shutdown) => {
                self.leave(now, State::Init, "shutdown".into(), &mut out);
            }
            (_, Event::FaultCleared) | (_, Event::Startup) => {}
            (_, Event::Priority(p)) => {
                self.priority = p.max(1);
                if self.state == State::Master {
                    // Tell the others at once: a higher backup may now preempt.
                    out.push(Action::Send(self.priority));
                    self.adver_at = Some(now + self.params.advert_int);
                }
            }
            (State::Backup, Event::Timer) => {
                if self.master_down_at.is_some_and(|t| now >= t) {
                    let reason = if let Some((from, p)) = self.preempting {
                        format!("preempting the lower-priority master {from} (priority {p})")
                    } else if self.master_left {
                        format!(
                            "the master left (priority 0), skew time {} ms",
                            self.skew().as_millis()
                        )
                    } else {
                        format!(
                            "no advertisement from the master for {} ms",
                            self.master_down_interval().as_millis()
                        )
                    };
                    self.become_master(now, reason, &mut out);
                }
            }
            (State::Master, Event::Timer) => {
                if self.adver_at.is_some_and(|t| now >= t) {
                    out.push(Action::Send(self.priority));
                    self.adver_at = Some(now + self.params.advert_int);
                }
            }
            (
                State::Backup,
                Event::Advert {
                    from,
                    priority,
                    interval,
                },
            ) => {
                if priority == 0 {
                    // The master is leaving: take over after the skew time.
                    self.master_down_at = Some(now + self.skew());
                    self.master_left = true;
                    self.preempting = None;
                } else if !self.params.preempt
                    || priority >= self.priority
                    || now < self.preempt_from
                {
                    self.master_adver_interval = interval;
                    self.master_down_at = Some(now + self.master_down_interval());
                    self.master = Some(from);
                    self.master_left = false;
                    self.preempting = None;
                } else {
                    // A lower-priority master and we preempt: ignore it, so that our
                    // master-down timer expires and we take over.
                    self.preempting = Some((from, priority));
                }
            }
            (
                State::Master,
                Event::Advert {
                    from,
                    priority,
                    interval,
                },
            ) => {
                let wins = priority > self.priority
                    || (priority == self.priority && from > self.params.local);
                if priority == 0 {
                    // Another master left (or stepped down after a split brain healed):
                    // make sure everyone hears us, and announce the addresses again —
                    // neighbours may still send to the one that left.
                    out.push(Action::Send(self.priority));
                    out.push(Action::TakeAddresses);
                    self.adver_at = Some(now + self.params.advert_int);
                } else if wins && priority != 0 {
                    self.master_adver_interval = interval;
                    self.master = Some(from);
                    // Beyond the RFC: say we leave (priority 0). After a split brain the
                    // winner may never hear a lower-priority advert from us, so it would
                    // not know that neighbours still send to us; this makes it re-announce.
                    out.push(Action::Send(0));
                    out.push(Action::ReleaseAddresses);
                    self.state = State::Backup;
                    self.adver_at = None;
                    self.master_down_at = Some(now + self.master_down_interval());
                    out.push(Action::Transition {
                        from: State::Master,
                        to: State::Backup,
                        reason: format!("higher priority {priority} advertised by {from}"),
                    });
                } else {
                    // A lower-priority router thinks it is master (a healed split brain):
                    // answer at once, and announce the addresses again so that switches
                    // and neighbours learn that they are here.
                    out.push(Action::Send(self.priority));
                    out.push(Action::TakeAddresses);
                    self.adver_at = Some(now + self.params.advert_int);
                }
            }
        }
        out
    }

    fn start(&mut self, now: Instant, why: &str, out: &mut Vec<Action>) {
        let from = self.state;
        self.master_adver_interval = self.params.advert_int;
        if self.priority == OWNER_PRIORITY {
            self.become_master(now, format!("{why}: address owner (priority 255)"), out);
        } else {
            self.state = State::Backup;
            self.master = None;
            self.preempting = None;
            self.master_left = false;
            self.master_down_at = Some(now + self.master_down_interval());
            out.push(Action::Transition {
                from,
                to: State::Backup,
                reason: why.to_string(),
            });
        }
    }

    fn become_master(&mut self, now: Instant, reason: String, out: &mut Vec<Action>) {
        let from = self.state;
        self.master_left = false;
        self.preempting = None;
        self.state = State::Master;
        self.master = Some(self.params.local);
        self.master_adver_interval = self.params.advert_int;
        self.master_down_at = None;
        out.push(Action::Send(self.priority));
        out.push(Action::TakeAddresses);
        self.adver_at = Some(now + self.params.advert_int);
        out.push(Action::Transition {
            from,
            to: State::Master,
            reason,
        });
    }

    fn leave(&mut self, _now: Instant, to: State, reason: String, out: &mut Vec<Action>) {
        let from = self.state;
        if from == State::Master {
            out.push(Action::Send(0));
            out.push(Action::ReleaseAddresses);
        }
        self.state = to;
        self.adver_at = None;
        self.master_down_at = None;
        self.master = None;
        out.push(Action::Transition { from, to, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(priority: u8, now: Instant) -> Machine {
        Machine::new(
            Params {
                advert_int: Duration::from_secs(1),
                preempt: true,
                preempt_delay: Duration::ZERO,
                local: "10.0.0.1".parse().unwrap(),
            },
            priority,
            now,
        )
    }

    fn transitions(actions: &[Action]) -> Vec<(State, State)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Transition { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sync_group_takeover_and_step_down() {
        let t0 = Instant::now();
        let mut m = machine(100, t0);
        m.handle(Event::Startup, t0);
        // Takeover moves a backup to master at once, with adverts and addresses.
        let a = m.handle(Event::Takeover("group".into()), t0);
        assert_eq!(transitions(&a), vec![(State::Backup, State::Master)]);
        assert!(a.contains(&Action::Send(100)) && a.contains(&Action::TakeAddresses));
        // Ignored when already master.
        assert!(m.handle(Event::Takeover("again".into()), t0).is_empty());
        // StepDown: priority 0, addresses released, backup with a master-down timer.
        let a = m.handle(Event::StepDown("group".into()), t0);
        assert_eq!(a[0], Action::Send(0));
        assert_eq!(a[1], Action::ReleaseAddresses);
        assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
        assert_eq!(m.next_deadline(), Some(t0 + m.master_down_interval()));
        assert!(m.handle(Event::StepDown("again".into()), t0).is_empty());
    }

    #[test]
    fn fault_carries_its_reason_and_clears() {
        let t0 = Instant::now();
        let mut m = machine(255, t0);
        let a = m.handle(Event::Startup, t0);
        assert_eq!(
            m.state(),
            State::Master,
            "the owner is master at once: {a:?}"
        );
        let a = m.handle(Event::Fault("interface eth1 down".into()), t0);
        assert_eq!(a[0], Action::Send(0));
        assert!(a.iter().any(|x| matches!(x, Action::Transition { to: State::Fault, reason, .. } if reason == "interface eth1 down")));
        assert_eq!(m.next_deadline(), None);
        m.handle(Event::FaultCleared, t0);
        assert_eq!(m.state(), State::Master);
    }

    #[test]
    fn priority_zero_names_the_handover() {
        let t0 = Instant::now();
        let mut m = machine(100, t0);
        m.handle(Event::Startup, t0);
        let from: IpAddr = "10.0.0.2".parse().unwrap();
        let advert = |priority| Event::Advert {
            from,
            priority,
            interval: Duration::from_secs(1),
        };
        m.handle(advert(200), t0);
        m.handle(advert(0), t0);
        let due = m.next_deadline().unwrap();
        assert_eq!(due, t0 + m.skew());
        let a = m.handle(Event::Timer, due);
        assert!(a.iter().any(|x| matches!(x, Action::Transition { to: State::Master, reason, .. } if reason.starts_with("the master left (priority 0)"))), "{a:?}");
    }
}

//! Health checking on the control thread: one task per checked server, each running its
//! [`probe`] every `inter` (`fastinter` while the state is changing, `downinter` while
//! DOWN) and feeding the result to the server's [`state::ServerHealth`] through
//! [`Control::on_check`]. Checks of all servers run concurrently; none runs on a shard.

pub mod probe;
pub mod state;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use super::{Control, ObservedErrors};
use crate::config::{Check, Mode, ServerTls};

/// How often slow-start weights are republished while a server ramps up.
pub const SLOWSTART_TICK: Duration = Duration::from_millis(500);

/// How often the control thread collects live-traffic observations from the shards.
pub const OBSERVE_TICK: Duration = Duration::from_millis(100);

/// Checks start on a grid of this step: each check waits until the first grid instant
/// after its due time, so that checks due within the same step start together, in one
/// wakeup of the control thread, instead of one wakeup (and timer re-arm) per check. At
/// 1,000 checks a second that is 100 wakeups instead of thousands; a check is at most
/// this much late.
pub const CHECK_TICK: Duration = Duration::from_millis(10);

/// Sleep until the first [`CHECK_TICK`] grid instant at or after `due`.
async fn sleep_on_grid(due: Instant) {
    let now = Instant::now();
    let aligned = on_grid(due);
    if aligned > now {
        glommio::timer::sleep(aligned - now).await;
    }
}

/// The first [`CHECK_TICK`] grid instant at or after `due` (the grid starts at the first
/// call in the process).
fn on_grid(due: Instant) -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let tick = CHECK_TICK.as_nanos();
    let since = due.saturating_duration_since(origin).as_nanos();
    let steps = since.div_ceil(tick);
    origin + Duration::from_nanos((steps * tick) as u64)
}

/// What a check task reads about its server ([`Control::check_of`]; read again after a
/// reload).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckTarget {
    /// The check.
    pub check: Check,
    /// Where it connects: the server's address, or the check's `address`/`port`.
    pub address: SocketAddr,
    /// The server's TLS settings when the check speaks TLS ([`probe::check_tls`]), with
    /// the backend's mode (ALPN, as for traffic); `None` = plain TCP.
    pub tls: Option<(ServerTls, Mode)>,
}

/// A check task's TLS client, with the settings it was built from (it is rebuilt only when
/// a reload changes them).
type TlsClient = (
    (ServerTls, Mode, SocketAddr),
    Result<probe::CheckTls, String>,
);

/// Start a check task for every checked server that has none (at startup, after a
/// reload).
pub fn spawn_checks(control: &Rc<RefCell<Control>>) {
    let slots = control.borrow().unchecked_servers();
    for slot in slots {
        control.borrow_mut().checking_started(slot);
        glommio::spawn_local(check_loop(Rc::clone(control), slot)).detach();
    }
}

/// The first check of a server waits a fraction of its interval derived from its slot,
/// so that many servers are not all checked in the same instant.
fn first_delay(slot: usize, inter: Duration) -> Duration {
    // Golden-ratio spread: consecutive slots land far apart within the interval.
    let fraction = ((slot as f64) * 0.618_033_988_75).fract();
    inter.mul_f64(fraction)
}

async fn check_loop(control: Rc<RefCell<Control>>, slot: usize) {
    let first = control.borrow().check_of(slot).map(|t| t.check.inter);
    if let Some(inter) = first {
        glommio::timer::sleep(first_delay(slot, inter)).await;
    }
    let mut buf = Vec::new();
    // The check as last read, and the configuration version it was read from.
    let mut cached: Option<(u64, CheckTarget)> = None;
    // The TLS client of a server with TLS: one per task, not per check, so that sessions
    // resume from one check to the next. If it cannot be built, every check fails with
    // the reason.
    let mut tls: Option<TlsClient> = None;
    loop {
        let version = control.borrow().config_version();
        let target = match cached.take() {
            Some((v, target)) if v == version => target,
            _ => {
                let Some(target) = control.borrow().check_of(slot) else {
                    break;
                };
                let settings = target
                    .tls
                    .as_ref()
                    .map(|(server_tls, mode)| (server_tls.clone(), *mode, target.address));
                if tls.as_ref().map(|(built, _)| built) != settings.as_ref() {
                    tls = settings.map(|(server_tls, mode, address)| {
                        let client = probe::CheckTls::new(&server_tls, mode, address);
                        ((server_tls, mode, address), client)
                    });
                }
                target
            }
        };
        let started = Instant::now();
        let result = match &tls {
            None => probe::run(&target.check, target.address, None, &mut buf).await,
            Some((_, Ok(client))) => {
                probe::run(&target.check, target.address, Some(client), &mut buf).await
            }
            Some((_, Err(reason))) => Err(reason.clone()),
        };
        cached = Some((version, target));
        let wait = {
            let mut c = control.borrow_mut();
            c.on_check(slot, result, Instant::now());
            c.next_check_in(slot)
        };
        // The interval runs from the start of a check, like HAProxy's.
        match wait {
            Some(wait) => sleep_on_grid(started + wait).await,
            None => break,
        }
    }
    control.borrow_mut().checking_ended(slot);
}

/// Republish while slow starts ramp (see [`Control::tick_slowstart`]).
pub async fn slowstart_loop(control: Rc<RefCell<Control>>) {
    loop {
        glommio::timer::sleep(SLOWSTART_TICK).await;
        control.borrow_mut().tick_slowstart(Instant::now());
    }
}

/// Apply the shards' live-traffic observations (`observe`).
pub async fn observe_loop(control: Rc<RefCell<Control>>, observed: mpsc::Receiver<ObservedErrors>) {
    loop {
        glommio::timer::sleep(OBSERVE_TICK).await;
        while let Ok(o) = observed.try_recv() {
            control.borrow_mut().on_observed(o, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_rounds_up_to_the_tick() {
        let base = on_grid(Instant::now());
        assert_eq!(on_grid(base), base);
        assert_eq!(on_grid(base + Duration::from_nanos(1)), base + CHECK_TICK);
        assert_eq!(on_grid(base + CHECK_TICK), base + CHECK_TICK);
        assert_eq!(
            on_grid(base + CHECK_TICK + Duration::from_millis(3)),
            base + CHECK_TICK * 2
        );
    }
}

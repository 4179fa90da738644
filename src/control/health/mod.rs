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

use super::{Control, ObservedErrors};

/// How often slow-start weights are republished while a server ramps up.
pub const SLOWSTART_TICK: Duration = Duration::from_millis(500);

/// How often the control thread collects live-traffic observations from the shards.
pub const OBSERVE_TICK: Duration = Duration::from_millis(100);

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
    let first = control
        .borrow()
        .check_of(slot)
        .map(|(check, _)| check.inter);
    if let Some(inter) = first {
        glommio::timer::sleep(first_delay(slot, inter)).await;
    }
    loop {
        let Some((check, target)) = control.borrow().check_of(slot) else {
            break;
        };
        let result = probe::run(&check, target).await;
        let wait = {
            let mut c = control.borrow_mut();
            c.on_check(slot, result, Instant::now());
            c.next_check_in(slot)
        };
        match wait {
            Some(wait) => glommio::timer::sleep(wait).await,
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

//! Inactivity accounting shared by the two directions of one connection.
//!
//! A connection is idle only when neither direction moves: a download whose client sends
//! nothing must not hit `timeouts.client` while the server is streaming. Each direction
//! touches the shared clock on progress; a wait that expires re-checks the clock and keeps
//! waiting for the remainder if the other direction moved meanwhile.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// Last time any byte moved on the connection.
#[derive(Debug)]
pub struct Activity {
    last: Cell<Instant>,
}

impl Activity {
    /// A clock starting now.
    pub fn new() -> Activity {
        Activity {
            last: Cell::new(Instant::now()),
        }
    }

    /// Record progress.
    pub fn touch(&self) {
        self.last.set(Instant::now());
    }

    fn idle_for(&self) -> Duration {
        self.last.get().elapsed()
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// Why an idle-bounded wait failed.
#[derive(Debug)]
pub enum WaitError {
    /// Nothing moved in either direction for the whole timeout.
    Idle,
    /// The operation itself failed.
    Io(io::Error),
}

/// Drive `op` to completion, failing with [`WaitError::Idle`] only once the whole
/// connection has been idle for `limit` (progress of the other direction re-arms the wait).
pub async fn until_idle<T, F>(limit: Duration, activity: &Activity, op: F) -> Result<T, WaitError>
where
    F: Future<Output = io::Result<T>>,
{
    let mut op = std::pin::pin!(op);
    loop {
        let idle = activity.idle_for();
        if idle >= limit {
            return Err(WaitError::Idle);
        }
        let timer = glommio::timer::Timer::new(limit - idle);
        let finished = futures_lite::future::or(async { Some(op.as_mut().await) }, async {
            timer.await;
            None
        })
        .await;
        if let Some(result) = finished {
            return result.map_err(WaitError::Io);
        }
    }
}

//! Socket readiness through one edge-triggered epoll instance per shard.
//!
//! glommio waits through io_uring one-shot polls, one per wait. Its rings are set up
//! without `IORING_SETUP_COOP_TASKRUN`, so every poll that completes while the shard's
//! thread runs is announced by the kernel with `TWA_SIGNAL` (an IPI and the signal path):
//! a fixed cost per wait that HAProxy's epoll does not pay
//! (`bench-results/l4/experiments/glommio-coop-taskrun`). So the shard's sockets wait here
//! instead:
//!
//! - each socket is registered once (`EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`) when it is
//!   made, under a slot of this reactor; its last close removes it from epoll (the slot's
//!   generation, part of the token, makes any late event harmless);
//! - a slot holds the socket's readiness (set by events, cleared by the socket's user
//!   when a syscall says `WouldBlock` or a read comes back short) and the wakers of its
//!   reader and its writer;
//! - the reactor task takes the events ready now (`epoll_wait` with a zero timeout),
//!   wakes the waiters and yields, so the woken tasks run before it looks again; when
//!   nothing is ready it awaits the epoll descriptor's readability through glommio: one
//!   io_uring poll for the whole shard, armed only when the shard has nothing to do.
//!
//! Edge-triggered rules: the readiness flags may say "ready" when a syscall then finds
//! nothing (it is cleared right there, with no await in between, so an event that comes
//! later is never lost); they never say "not ready" when the kernel has something to give,
//! because every new arrival after a `WouldBlock` queues a new event.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_lite::future::poll_fn;
use futures_lite::io::AsyncRead;

use crate::sys::{Epoll, EpollEvent};

/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// Which readiness a waiter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (data, end of stream, error) — for a listener: a connection to accept.
    Read,
    /// Writable (room, connect finished, error).
    Write,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    readable: bool,
    writable: bool,
    /// An event reported end of stream (`EPOLLRDHUP`), hang-up or error: sticky.
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// The readiness reactor of one shard (one per thread, see [`current`]).
pub struct Reactor {
    epoll: Epoll,
    slots: RefCell<Slots>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

/// This thread's reactor, created (with its task, on this thread's glommio executor) by
/// the first call. Panics outside a glommio executor or if epoll is not available.
pub fn current() -> Rc<Reactor> {
    CURRENT.with(|cell| {
        if let Some(reactor) = &*cell.borrow() {
            return Rc::clone(reactor);
        }
        let reactor = Rc::new(Reactor {
            epoll: Epoll::new().expect("epoll_create1"),
            slots: RefCell::new(Slots::default()),
        });
        glommio::spawn_local(Rc::clone(&reactor).run()).detach();
        *cell.borrow_mut() = Some(Rc::clone(&reactor));
        reactor
    })
}

impl Reactor {
    /// Register `fd` (read and write interest, edge-triggered) under a new slot, marked
    /// writable, and readable if `readable` (a socket not marked readable that has data
    /// already is reported by epoll at once).
    pub fn register(self: &Rc<Self>, fd: RawFd, readable: bool) -> io::Result<Registration> {
        let (slot, generation) = {
            let mut slots = self.slots.borrow_mut();
            match slots.free.pop() {
                Some(i) => (i, slots.slots[i as usize].generation),
                None => {
                    slots.slots.push(Slot::default());
                    ((slots.slots.len() - 1) as u32, 0)
                }
            }
        };
        {
            let mut slots = self.slots.borrow_mut();
            let s = &mut slots.slots[slot as usize];
            s.readable = readable;
            s.writable = true;
        }
        let registration = Registration {
            reactor: Rc::clone(self),
            slot,
            generation,
        };
        // On failure the registration's drop frees the slot.
        self.epoll
            .add(fd, (u64::from(generation) << 32) | u64::from(slot))?;
        Ok(registration)
    }

    fn release(&self, slot: u32) {
        let mut slots = self.slots.borrow_mut();
        let s = &mut slots.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.readable = false;
        s.writable = false;
        s.closed = false;
        s.reader = None;
        s.writer = None;
        slots.free.push(slot);
    }

    /// Take the ready events, mark the slots ready and wake their waiters.
    fn dispatch(&self, events: &[EpollEvent]) {
        for event in events {
            let token = event.token();
            let (slot, generation) = (token as u32, (token >> 32) as u32);
            let (reader, writer) = {
                let mut slots = self.slots.borrow_mut();
                let Some(s) = slots.slots.get_mut(slot as usize) else {
                    continue;
                };
                if s.generation != generation {
                    continue;
                }
                let mut reader = None;
                let mut writer = None;
                if event.closed() {
                    s.closed = true;
                }
                if event.readable() {
                    s.readable = true;
                    reader = s.reader.take();
                }
                if event.writable() {
                    s.writable = true;
                    writer = s.writer.take();
                }
                (reader, writer)
            };
            if let Some(w) = reader {
                w.wake();
            }
            if let Some(w) = writer {
                w.wake();
            }
        }
    }

    /// The reactor task: never ends (dropped with the executor).
    async fn run(self: Rc<Self>) {
        let mut events = vec![EpollEvent::EMPTY; EVENTS];
        loop {
            let n = match self.epoll.wait(&mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    tracing::error!("epoll_wait failed: {e}");
                    0
                }
            };
            if n > 0 {
                self.dispatch(&events[..n]);
                // Let the woken tasks run (they are queued ahead of this one) before looking
                // again. glommio still polls its own rings whenever its preemption timer
                // fires, so timers are not starved by a shard that is busy all the time.
                futures_lite::future::yield_now().await;
                continue;
            }
            self.sleep().await;
        }
    }

    /// Await an event through glommio: an io_uring poll on (a duplicate of) the epoll
    /// descriptor. Its read fails once the poll fired (an epoll descriptor is no socket),
    /// which is all that is wanted.
    async fn sleep(&self) {
        match self.epoll.glommio_waiter() {
            Ok(mut waiter) => {
                let mut byte = [0u8; 1];
                let _ = poll_fn(|cx| Pin::new(&mut waiter).poll_read(cx, &mut byte)).await;
            }
            Err(e) => {
                // Out of descriptors: look again a little later.
                tracing::warn!("reactor: cannot await epoll through glommio: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
}

/// A socket's place in its shard's reactor; dropping it frees the slot (the socket's
/// close removes the epoll registration).
pub struct Registration {
    reactor: Rc<Reactor>,
    slot: u32,
    generation: u32,
}

impl Registration {
    /// Ready if the socket is marked ready for `interest`; otherwise the waker is kept
    /// and woken by the next matching event.
    pub fn poll_ready(&self, interest: Interest, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.reactor.slots.borrow_mut();
        let s = &mut slots.slots[self.slot as usize];
        debug_assert_eq!(s.generation, self.generation);
        let (ready, waker) = match interest {
            Interest::Read => (s.readable, &mut s.reader),
            Interest::Write => (s.writable, &mut s.writer),
        };
        if ready {
            return Poll::Ready(());
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether the socket is marked ready for `interest`.
    pub fn is_ready(&self, interest: Interest) -> bool {
        let slots = self.reactor.slots.borrow();
        let s = &slots.slots[self.slot as usize];
        match interest {
            Interest::Read => s.readable,
            Interest::Write => s.writable,
        }
    }

    /// A syscall found the socket not ready for `interest` (`WouldBlock`): forget the
    /// readiness until the next event. Call it right after that syscall, with no await
    /// in between.
    pub fn clear(&self, interest: Interest) {
        let mut slots = self.reactor.slots.borrow_mut();
        let s = &mut slots.slots[self.slot as usize];
        match interest {
            Interest::Read => s.readable = false,
            Interest::Write => s.writable = false,
        }
    }

    /// A stream read returned less than asked: the socket's receive queue was empty at
    /// that moment, so (as after a `WouldBlock`) the next arrival queues a new event —
    /// unless the end of stream was already reported, which no later event repeats: then
    /// the read readiness stays, for the read that will return 0.
    pub fn drained(&self) {
        let mut slots = self.reactor.slots.borrow_mut();
        let s = &mut slots.slots[self.slot as usize];
        if !s.closed {
            s.readable = false;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reactor.release(self.slot);
    }
}

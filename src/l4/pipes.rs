//! A per-shard pool of kernel pipes for splicing.
//!
//! Creating a pipe costs two syscalls (pipe2 + F_SETPIPE_SZ) and two descriptors, so a
//! shard keeps the empty pipes of finished connections for the next ones, up to
//! `global.maxpipes`. A pipe that still holds data (a connection cut mid-transfer) is
//! closed, never reused.

use crate::sys::Pipe;

/// Pipes owned by one shard.
#[derive(Debug)]
pub struct PipePool {
    free: Vec<Pipe>,
    in_use: usize,
    max: usize,
    size: Option<u32>,
    warned: bool,
}

impl PipePool {
    /// A pool that lends at most `max` pipes of `size` bytes (kernel default when `None`).
    pub fn new(max: usize, size: Option<u32>) -> PipePool {
        PipePool {
            free: Vec::new(),
            in_use: 0,
            max,
            size,
            warned: false,
        }
    }

    /// Lend a pipe, or `None` when `max` are lent already or the kernel refuses one (the
    /// caller then forwards by copying).
    pub fn take(&mut self) -> Option<Pipe> {
        if self.free.is_empty() && self.in_use >= self.max {
            return None;
        }
        let pipe = match self.free.pop() {
            Some(p) => p,
            None => self.create()?,
        };
        self.in_use += 1;
        Some(pipe)
    }

    /// A new pipe. If the configured size is refused (an unprivileged process above
    /// fs.pipe-max-size, or past fs.pipe-user-pages-soft), say so once and continue with
    /// the kernel's default size; if no pipe can be had at all, say so once and copy.
    fn create(&mut self) -> Option<Pipe> {
        match Pipe::new(self.size) {
            Ok(p) => Some(p),
            Err(e) if self.size.is_some() => {
                tracing::warn!(
                    "pipesize {} refused ({e}); using the kernel's default pipe size — raise fs.pipe-max-size / fs.pipe-user-pages-soft (see tuning/) or lower global.pipesize",
                    self.size.unwrap_or(0)
                );
                self.size = None;
                Pipe::new(None).ok()
            }
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    tracing::warn!("cannot create a pipe ({e}); forwarding by copy until pipes are available again");
                }
                None
            }
        }
    }

    /// Give a pipe back; kept for reuse only if it is empty.
    pub fn give_back(&mut self, pipe: Pipe) {
        self.in_use = self.in_use.saturating_sub(1);
        if pipe.buffered == 0 {
            self.free.push(pipe);
        }
    }

    /// Pipes lent out now.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// The pipe capacity used for one splice call.
    pub fn chunk(&self) -> usize {
        self.size.map(|s| s as usize).unwrap_or(1 << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_empty_pipes_and_respects_max() {
        let mut pool = PipePool::new(2, None);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        pool.give_back(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.take().unwrap();
        pool.give_back(b);
        pool.give_back(c);
        assert_eq!(pool.in_use(), 0);
    }
}

//! Resource limits checked (and raised where we may) before anything starts.

use crate::sys::{self, Resource};

/// glommio's io_uring rings and registered buffers are locked memory.
pub const MIN_MEMLOCK_PER_SHARD: u64 = 512 * 1024;

/// Descriptors used per connection slot: client + server sockets.
pub const FDS_PER_CONNECTION: u64 = 2;

/// Descriptors per pipe lent to a spliced direction: its two ends (see `l4::pump`).
pub const FDS_PER_PIPE: u64 = 2;

/// Descriptors kept for listeners, io_uring, the shards' epoll instances, logs and the
/// control thread.
pub const FD_RESERVE: u64 = 256;

/// A limit is too low to run this configuration.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// RLIMIT_NOFILE cannot cover `maxconn`.
    #[error("open-file limit too low: maxconn {maxconn} needs {needed} descriptors but RLIMIT_NOFILE is {soft} (hard {hard}) — raise it (`ulimit -n {needed}`, or LimitNOFILE={needed} in the systemd unit) or lower global.maxconn")]
    OpenFiles {
        /// The configured connection limit.
        maxconn: u64,
        /// Descriptors needed.
        needed: u64,
        /// Soft limit in force.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
    /// RLIMIT_MEMLOCK cannot hold the io_uring rings.
    #[error("locked-memory limit too low: {shards} shard(s) and the control thread need {needed_kib} KiB but RLIMIT_MEMLOCK is {soft_kib} KiB — raise it (`ulimit -l {needed_kib}`, or LimitMEMLOCK=infinity in the systemd unit)")]
    LockedMemory {
        /// Shards to start.
        shards: usize,
        /// KiB needed.
        needed_kib: u64,
        /// KiB in force.
        soft_kib: u64,
    },
    /// The limits could not be read.
    #[error("cannot read resource limits: {0}")]
    Io(#[from] std::io::Error),
}

/// What the process may use, decided at startup.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The whole-process connection limit in force.
    pub maxconn: u64,
    /// Pipes per shard.
    pub maxpipes: u64,
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit, then check that `maxconn` (or,
/// when unset, a value derived from the limit), the pipe pools and the pools of idle
/// HTTP server connections (`pooled_per_shard` descriptors per shard at most) fit; check
/// memlock.
pub fn prepare(
    maxconn: Option<u32>,
    maxpipes: u32,
    pooled_per_shard: u64,
    shards: usize,
) -> Result<Budget, LimitError> {
    let files = sys::get_limit(Resource::OpenFiles)?;
    let soft = if files.soft < files.hard {
        match sys::set_soft_limit(Resource::OpenFiles, files.hard, files.hard) {
            Ok(()) => files.hard,
            Err(_) => files.soft,
        }
    } else {
        files.soft
    };
    let pipe_fds = (FDS_PER_PIPE * maxpipes as u64 + pooled_per_shard) * shards as u64;
    let maxconn = match maxconn {
        Some(m) => m as u64,
        None => soft.saturating_sub(FD_RESERVE + pipe_fds) / FDS_PER_CONNECTION,
    };
    let needed = maxconn * FDS_PER_CONNECTION + pipe_fds + FD_RESERVE;
    if needed > soft || maxconn == 0 {
        return Err(LimitError::OpenFiles {
            maxconn,
            needed,
            soft,
            hard: files.hard,
        });
    }
    let memlock = sys::get_limit(Resource::LockedMemory)?;
    // One executor per shard, plus the control thread's.
    let needed_mem = MIN_MEMLOCK_PER_SHARD * (shards as u64 + 1);
    if memlock.soft < needed_mem {
        // Try to raise it (works as root or when the hard limit allows).
        let raised = needed_mem.max(memlock.soft);
        if sys::set_soft_limit(Resource::LockedMemory, raised, memlock.hard.max(raised)).is_err() {
            return Err(LimitError::LockedMemory {
                shards,
                needed_kib: needed_mem / 1024,
                soft_kib: memlock.soft / 1024,
            });
        }
    }
    Ok(Budget {
        maxconn,
        maxpipes: maxpipes as u64,
    })
}

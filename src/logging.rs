//! Log output: tracing to stderr or to a file (`global.log`).
//!
//! Connection records use the target `halb::access`, one line per closed connection;
//! everything else (startup, transitions, errors) uses `halb`. The level is INFO unless
//! the environment variable `HALB_LOG` names another (`debug`, `warn`, ...).

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::sync::Arc;

use tracing::level_filters::LevelFilter;

use crate::config::LogTarget;

/// Install the global subscriber for `target`. Call once, before starting the runtime.
///
/// Shards log from their own threads, one line per closed connection, so the writer takes
/// no lock: each formatted line goes out with one `write(2)` on a shared descriptor (an
/// `O_APPEND` file, or a duplicate of stderr), which the kernel keeps whole for lines this
/// short. (`std::io::stderr` or a `Mutex<File>` would make every shard contend on one
/// lock per connection.)
pub fn init(target: &LogTarget) -> std::io::Result<()> {
    let level = std::env::var("HALB_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(true)
        .with_thread_names(false);
    let (file, ansi) = match target {
        LogTarget::Stderr => {
            let stderr = std::io::stderr();
            let ansi = std::io::IsTerminal::is_terminal(&stderr);
            (File::from(stderr.as_fd().try_clone_to_owned()?), ansi)
        }
        LogTarget::File(path) => (
            OpenOptions::new().create(true).append(true).open(path)?,
            false,
        ),
    };
    let _ = builder
        .with_ansi(ansi)
        .with_writer(Arc::new(file))
        .try_init();
    Ok(())
}

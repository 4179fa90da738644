//! Log output: tracing to stderr or to a file (`global.log`).
//!
//! Connection records use the target `halb::access`, one line per closed connection (per
//! request in HTTP mode); everything else (startup, transitions, errors) uses `halb` and
//! its modules (`halb::vrrp`, `halb::health`, ...). The level is INFO unless the
//! environment variable `HALB_LOG` says otherwise: a level (`debug`, `warn`, ...) or
//! per-target directives, e.g. `HALB_LOG=info,halb::access=off` to keep everything but
//! the access log (which shards then skip entirely, not even formatting the line).

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::sync::Arc;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::config::LogTarget;

/// Install the global subscriber for `target`. Call once, before starting the runtime.
///
/// Shards log from their own threads, one line per closed connection, so the writer takes
/// no lock: each formatted line goes out with one `write(2)` on a shared descriptor (an
/// `O_APPEND` file, or a duplicate of stderr), which the kernel keeps whole for lines this
/// short. (`std::io::stderr` or a `Mutex<File>` would make every shard contend on one
/// lock per connection.)
pub fn init(target: &LogTarget) -> std::io::Result<()> {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    let filter = match std::env::var("HALB_LOG") {
        Ok(v) => v.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!(
                "halb: HALB_LOG={v:?} is not understood ({e}): logging at info; write a level (\"warn\") or directives (\"info,halb::access=off\")"
            );
            info()
        }),
        Err(_) => info(),
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
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
    let subscriber = builder
        .with_ansi(ansi)
        .with_writer(Arc::new(file))
        .finish()
        .with(filter);
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

//! Log output: tracing to stderr or to a file (`global.log`).
//!
//! Connection records use the target `halb::access`, one line per closed connection;
//! everything else (startup, transitions, errors) uses `halb`. The level is INFO unless
//! the environment variable `HALB_LOG` names another (`debug`, `warn`, ...).

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;

use crate::config::LogTarget;

/// Install the global subscriber for `target`. Call once, before starting the runtime.
pub fn init(target: &LogTarget) -> std::io::Result<()> {
    let level = std::env::var("HALB_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(true)
        .with_thread_names(false);
    match target {
        LogTarget::Stderr => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let _ = builder
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .try_init();
        }
        LogTarget::File(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let _ = builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init();
        }
    }
    Ok(())
}

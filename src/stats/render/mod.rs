//! Renderers of a [`StatsReport`]: pure functions from a report to a body.
//!
//! | function | format | content type |
//! |---|---|---|
//! | [`html`] | the HTML stats page | [`CONTENT_TYPE_HTML`] |
//! | [`csv`] | HAProxy-like CSV | [`CONTENT_TYPE_CSV`] |
//! | [`json`] | the report as JSON | [`CONTENT_TYPE_JSON`] |
//! | [`prometheus`] | Prometheus text exposition format 0.0.4 | [`CONTENT_TYPE_METRICS`] |

mod csv;
mod html;
mod json;
mod prometheus;

pub use self::csv::{csv, CSV_FIELDS};
pub use self::html::{escape as escape_html, html, HtmlOptions};
pub use self::json::json;
pub use self::prometheus::prometheus;

#[cfg(doc)]
use super::report::StatsReport;
use super::report::{BackendReport, ServerState};

/// Content type of the HTML page.
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";
/// Content type of `URI;csv`.
pub const CONTENT_TYPE_CSV: &str = "text/csv; charset=utf-8";
/// Content type of `URI;json`.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of `/metrics` (Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE_METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every [`ServerState`], in display order (legend, `halb_server_status` samples).
pub const ALL_STATES: [ServerState; 6] = [
    ServerState::Up,
    ServerState::GoingDown,
    ServerState::GoingUp,
    ServerState::Down,
    ServerState::Drain,
    ServerState::Maint,
];

/// The labels of [`crate::stats::report::Counters::http_responses`]' six slots.
pub const RESPONSE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// A duration in seconds the way HAProxy shows it: `12s`, `3m4s`, `2h5m`, `3d4h`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Whether a server in `state` takes new traffic (UP or GOING_DOWN).
pub(crate) fn takes_traffic(state: ServerState) -> bool {
    matches!(state, ServerState::Up | ServerState::GoingDown)
}

/// The state word of a backend as a whole: `UP` when at least one server is usable (or
/// the report says so), `DOWN` otherwise.
pub(crate) fn backend_status(b: &BackendReport) -> &'static str {
    if b.usable_servers > 0 {
        "UP"
    } else {
        "DOWN"
    }
}

/// Usable (UP or GOING_DOWN) servers of a backend: `(active, backup)`.
pub(crate) fn usable_split(b: &BackendReport) -> (usize, usize) {
    b.servers
        .iter()
        .filter(|s| takes_traffic(s.state))
        .fold(
            (0, 0),
            |(a, k), s| if s.backup { (a, k + 1) } else { (a + 1, k) },
        )
}

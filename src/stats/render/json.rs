//! `URI;json`: the whole [`StatsReport`] as one JSON object (`info`, `frontends`,
//! `backends`), exactly as serde derives it: server states as `"UP"`, `"GOING_DOWN"`,
//! ...; addresses as `"10.0.0.11:80"` strings; `http_responses` as a 6-number array
//! (`1xx`, `2xx`, `3xx`, `4xx`, `5xx`, other). Followed by a newline.

use crate::stats::report::StatsReport;

/// The JSON rendering of `report` (compact, newline-terminated).
pub fn json(report: &StatsReport) -> String {
    // The report holds only strings, numbers, booleans, sequences and structs: it
    // cannot fail to serialize.
    let mut s = serde_json::to_string(report).expect("a StatsReport always serializes");
    s.push('\n');
    s
}

//! Stats: per-shard counters (no atomics on the hot path), merged by the control thread
//! on request into a [`report::StatsReport`], rendered as HTML, CSV, JSON and Prometheus
//! text by [`render`], and served by the `[stats]` listener.
//!
//! Shards count in [`collect`]. Everything else here is sans-io: [`route::route`] decides
//! what one request asks for (page, admin action or an error answer, basic auth
//! included), [`render`] turns a report into a body, [`route::Response`] into bytes. The
//! listener's I/O loop (control thread) reads a request, calls [`route::route`], builds a
//! report when the route needs one ([`route::Route::render`]), applies admin actions, and
//! writes the bytes back.

pub mod collect;
pub mod prom_check;
pub mod render;
pub mod report;
pub mod route;

pub use route::{route, ActionKind, AdminState, Response, Route, StatsAction};

#[cfg(test)]
mod tests;

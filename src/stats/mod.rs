//! Stats: per-shard counters (no atomics on the hot path), merged by the control thread
//! on request into a [`report::StatsReport`], rendered as HTML, CSV, JSON and Prometheus
//! text by [`render`], and served by the `[stats]` listener ([`server`]).

pub mod report;

//! `leastconn`: the member with the fewest active connections relative to its weight.

/// Picks the member minimising `(active + 1) / weight` (HAProxy's key: the load the server
/// would carry once this connection is added, so that weights are honoured from the very
/// first connection). The scan starts at member `start` and keeps the first strict minimum,
/// so equal members are taken in turn (the caller advances `start` past the winner).
/// Members whose server index is in `excluded` are skipped. Returns a member position.
#[inline]
pub(crate) fn pick(
    servers: &[usize],
    weights: &[u32],
    active: &[u32],
    start: usize,
    excluded: &[usize],
) -> Option<usize> {
    let n = servers.len();
    if n == 0 {
        return None;
    }
    let start = if start >= n { 0 } else { start };
    // Best so far: (position, active + 1, weight).
    let mut best: Option<(usize, u64, u64)> = None;
    for pos in (start..n).chain(0..start) {
        let server = servers[pos];
        if !excluded.is_empty() && excluded.contains(&server) {
            continue;
        }
        let load = u64::from(active.get(server).copied().unwrap_or(0)) + 1;
        let weight = u64::from(weights[pos]);
        match best {
            // load/weight < best_load/best_weight, by cross-multiplication.
            Some((_, bl, bw)) if load * bw >= bl * weight => {}
            _ => best = Some((pos, load, weight)),
        }
    }
    best.map(|(pos, _, _)| pos)
}

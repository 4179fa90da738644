//! Weighted round robin: the smooth (nginx) rotation used by `roundrobin`, and the
//! precomputed schedule (one period of it) used by `static-rr` and by map-based hashing.

/// Smooth weighted round robin state (nginx's algorithm).
///
/// Every pick adds each candidate's weight to its `current` value, picks the candidate with
/// the highest `current` (the first one on a tie) and subtracts the candidates' total weight
/// from the winner. Over any `W` consecutive picks (`W` = the sum of the weights, nothing
/// excluded) every member is picked exactly `weight` times, spread as evenly as possible:
/// weights 3:1 give `a a b a`, weights 5:1:1 give `a a b a c a a`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    /// State for `members` members, all starting at 0.
    pub(crate) fn new(members: usize) -> Self {
        SmoothWrr {
            current: vec![0; members],
        }
    }

    /// Next member position, skipping members whose server index is in `excluded`.
    /// `servers[i]` / `weights[i]` describe member `i`. `None` when every member is excluded.
    #[inline]
    pub(crate) fn next(
        &mut self,
        servers: &[usize],
        weights: &[u32],
        excluded: &[usize],
    ) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        let mut best_current = i64::MIN;
        for (i, cur) in self.current.iter_mut().enumerate() {
            if !excluded.is_empty() && excluded.contains(&servers[i]) {
                continue;
            }
            let w = i64::from(weights[i]);
            *cur += w;
            total += w;
            if best.is_none() || *cur > best_current {
                best = Some(i);
                best_current = *cur;
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }

    /// Takes over the rotation position of a previous state: `inherited[i]` is member `i`'s
    /// previous `current` value (`0` for a new member). The values are re-centred so that
    /// they sum to 0 again (the invariant of the algorithm), which keeps the rotation fair.
    pub(crate) fn inherit(&mut self, inherited: impl Iterator<Item = i64>) {
        for (cur, prev) in self.current.iter_mut().zip(inherited) {
            *cur = prev;
        }
        let n = self.current.len() as i64;
        if n == 0 {
            return;
        }
        let sum: i64 = self.current.iter().sum();
        let share = sum.div_euclid(n);
        let rest = sum.rem_euclid(n);
        for cur in &mut self.current {
            *cur -= share;
        }
        self.current[0] -= rest;
    }

    /// Member `i`'s current value (for [`SmoothWrr::inherit`]).
    pub(crate) fn current(&self, i: usize) -> i64 {
        self.current[i]
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Above this many steps (`cycle length × members`) the schedule is not simulated with
/// [`SmoothWrr`] but built by [`deadline_schedule`] (`O(W log W)`), so a huge backend never
/// makes a rebuild slow.
const SIMULATION_LIMIT: u64 = 1 << 24;

/// A weighted, interleaved cycle of member positions: member `i` appears `weights[i] / g`
/// times (`g` = the gcd of all weights). It is one period of the smooth round robin (as
/// HAProxy builds its static map): weights 3:1 give `a a b a`, 5:1:1 give `a a b a c a a`.
/// Members of weight 0 do not appear; an empty or all-zero `weights` gives an empty
/// schedule.
pub(crate) fn interleaved_schedule(weights: &[u32]) -> Vec<u32> {
    let g = weights
        .iter()
        .fold(0u64, |g, &w| gcd(g, u64::from(w)))
        .max(1);
    let reduced: Vec<u32> = weights.iter().map(|&w| (u64::from(w) / g) as u32).collect();
    let len: u64 = reduced.iter().map(|&w| u64::from(w)).sum();
    if len.saturating_mul(reduced.len() as u64) <= SIMULATION_LIMIT {
        smooth_schedule(&reduced, len as usize)
    } else {
        deadline_schedule(&reduced)
    }
}

/// One period (`len` = the sum of `weights`) of the smooth round robin.
fn smooth_schedule(weights: &[u32], len: usize) -> Vec<u32> {
    let positions: Vec<usize> = (0..weights.len()).collect();
    let mut wrr = SmoothWrr::new(weights.len());
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        match wrr.next(&positions, weights, &[]) {
            Some(p) => out.push(p as u32),
            None => break,
        }
    }
    out
}

/// Earliest-ideal-time ordering: occurrence `k` of member `i` is placed at `(k + 1/2) / w_i`,
/// the cycle is all occurrences sorted by that time (ties: lower member first). Same counts
/// as [`smooth_schedule`], evenly spread, in `O(W log W)`.
pub(crate) fn deadline_schedule(weights: &[u32]) -> Vec<u32> {
    let len: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut slots: Vec<(u32, u32, u32)> = Vec::with_capacity(len as usize);
    for (i, &w) in weights.iter().enumerate() {
        for k in 0..w {
            slots.push((k, w, i as u32));
        }
    }
    // (2k+1)/(2w) ordered by cross-multiplication: exact, no floating point.
    slots.sort_unstable_by(|&(k1, w1, i1), &(k2, w2, i2)| {
        let a = (2 * u64::from(k1) + 1) * u64::from(w2);
        let b = (2 * u64::from(k2) + 1) * u64::from(w1);
        a.cmp(&b).then(i1.cmp(&i2))
    });
    slots.into_iter().map(|(_, _, i)| i).collect()
}

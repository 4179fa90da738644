//! The consistent-hash ring of `hash_type = "consistent"`.
//!
//! Each server owns `weight × points_per_weight` points on a 64-bit ring, point `k` of server
//! `name` being [`ring_point`]`(name, k)`: the points depend only on the server's own name and
//! weight, never on the other servers. A key belongs to the owner of the first point at or
//! after its hash (wrapping). Hence taking a server off the ring (down, disabled, weight 0,
//! or removed from the configuration) moves only the keys it owned, and every other key keeps
//! its server.

use super::hash::ring_point;

/// Upper bound of points per unit of weight (a weight-1 server gets this many points when
/// the backend is small): ~8 % standard deviation of the per-server load.
pub(crate) const MAX_POINTS_PER_WEIGHT: u32 = 160;

/// Target number of points for the whole backend. Points per unit of weight shrink, down to
/// one, when the declared weights exceed `RING_BUDGET / MAX_POINTS_PER_WEIGHT`; this bounds
/// the memory of one ring (12 bytes a point) for large backends.
pub(crate) const RING_BUDGET: u64 = 32_768;

/// Points per unit of weight for a backend whose declared servers' weights (every server,
/// usable or not, so that health changes never re-scale the ring) sum to `declared_weight`.
pub(crate) fn points_per_weight(declared_weight: u64) -> u32 {
    let per = RING_BUDGET / declared_weight.max(1);
    per.clamp(1, u64::from(MAX_POINTS_PER_WEIGHT)) as u32
}

/// A sorted ring of points, each owned by a group member position.
#[derive(Clone, Default)]
pub(crate) struct Ring {
    points: Vec<u64>,
    owners: Vec<u32>,
}

/// Summarised: a ring holds up to tens of thousands of points.
impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("points", &self.points.len())
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// Builds the ring of `members`: `(name, weight)` per member position.
    pub(crate) fn build<'a>(
        members: impl Iterator<Item = (&'a str, u32)>,
        points_per_weight: u32,
    ) -> Ring {
        let mut all: Vec<(u64, u32)> = Vec::new();
        for (pos, (name, weight)) in members.enumerate() {
            let n = weight.saturating_mul(points_per_weight);
            all.reserve(n as usize);
            for k in 0..n {
                all.push((ring_point(name, k), pos as u32));
            }
        }
        // Fully ordered (point, owner): the ring does not depend on the member order, and
        // two servers on the same point resolve the same way whatever else is on the ring.
        all.sort_unstable();
        let (points, owners) = all.into_iter().unzip();
        Ring { points, owners }
    }

    /// Number of points.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// The member owning `hash`: the owner of the first point at or after it (wrapping),
    /// walking on to the next point whose owner's server index (`servers[owner]`) is not in
    /// `excluded`. The walk is bounded by the ring size; the caller checks beforehand that
    /// some member is not excluded.
    #[inline]
    pub(crate) fn lookup(&self, hash: u64, servers: &[usize], excluded: &[usize]) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let start = self.points.partition_point(|&p| p < hash);
        let start = if start == len { 0 } else { start };
        let owner = self.owners[start] as usize;
        if excluded.is_empty() || !excluded.contains(&servers[owner]) {
            return Some(owner);
        }
        self.owners[start..]
            .iter()
            .chain(&self.owners[..start])
            .map(|&o| o as usize)
            .find(|&o| !excluded.contains(&servers[o]))
    }
}

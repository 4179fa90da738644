//! Which core each shard and the control thread run on.
//!
//! Cores come from the process's own affinity mask, so `taskset -c 1 halb run` confines
//! halb to core 1 (what the benchmarks do). `shards = "auto"` uses every allowed core but
//! the control core; on a box with fewer cores than shards + 1 the control thread shares.

use crate::config::{ControlCore, ShardCount};

/// The decided placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Core of each shard, in shard order.
    pub shard_cores: Vec<usize>,
    /// Core of the control thread, or `None` when it shares (unpinned).
    pub control_core: Option<usize>,
}

/// A placement that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// More shards than allowed cores.
    #[error("shards = {shards} but only {cores} core(s) are available to halb (cores {list:?}); lower `shards` or widen the CPU affinity")]
    TooManyShards {
        /// Requested shards.
        shards: usize,
        /// Allowed cores.
        cores: usize,
        /// Their ids.
        list: Vec<usize>,
    },
    /// control_core names a core outside the mask.
    #[error("control_core = {core} is not among the cores available to halb ({list:?})")]
    NoSuchCore {
        /// Requested core.
        core: usize,
        /// Allowed cores.
        list: Vec<usize>,
    },
    /// Nothing to run on.
    #[error("no CPU is available to halb (empty affinity mask)")]
    NoCores,
}

/// Decide where shards and the control thread run, given the allowed `cores` (ascending).
pub fn plan(
    shards: ShardCount,
    control: ControlCore,
    cores: &[usize],
) -> Result<Placement, PlacementError> {
    if cores.is_empty() {
        return Err(PlacementError::NoCores);
    }
    let control_core = match control {
        ControlCore::Shared => None,
        ControlCore::Core(c) => {
            if !cores.contains(&c) {
                return Err(PlacementError::NoSuchCore {
                    core: c,
                    list: cores.to_vec(),
                });
            }
            Some(c)
        }
        ControlCore::Auto => match shards {
            // Keep the last core for control when there is more than one.
            ShardCount::Auto if cores.len() > 1 => cores.last().copied(),
            ShardCount::Fixed(n) if cores.len() > n => cores.last().copied(),
            _ => None,
        },
    };
    let data_cores: Vec<usize> = cores
        .iter()
        .copied()
        .filter(|c| Some(*c) != control_core)
        .collect();
    let wanted = match shards {
        ShardCount::Auto => data_cores.len().max(1),
        ShardCount::Fixed(n) => n,
    };
    let pool = if data_cores.is_empty() {
        cores.to_vec()
    } else {
        data_cores
    };
    if wanted > pool.len() {
        return Err(PlacementError::TooManyShards {
            shards: wanted,
            cores: pool.len(),
            list: cores.to_vec(),
        });
    }
    Ok(Placement {
        shard_cores: pool[..wanted].to_vec(),
        control_core,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_on_two_cores_keeps_one_for_control() {
        let p = plan(ShardCount::Auto, ControlCore::Auto, &[0, 1]).unwrap();
        assert_eq!(p.shard_cores, vec![0]);
        assert_eq!(p.control_core, Some(1));
    }

    #[test]
    fn single_core_shares() {
        let p = plan(ShardCount::Auto, ControlCore::Auto, &[1]).unwrap();
        assert_eq!(p.shard_cores, vec![1]);
        assert_eq!(p.control_core, None);
    }

    #[test]
    fn fixed_shards_filling_the_box_share_control() {
        let p = plan(ShardCount::Fixed(2), ControlCore::Auto, &[0, 1]).unwrap();
        assert_eq!(p.shard_cores, vec![0, 1]);
        assert_eq!(p.control_core, None);
    }

    #[test]
    fn too_many_shards_is_an_error() {
        assert!(plan(ShardCount::Fixed(3), ControlCore::Auto, &[0, 1]).is_err());
        assert!(plan(ShardCount::Fixed(2), ControlCore::Core(1), &[0, 1]).is_err());
    }

    #[test]
    fn explicit_control_core() {
        let p = plan(ShardCount::Fixed(1), ControlCore::Core(0), &[0, 1]).unwrap();
        assert_eq!(p.shard_cores, vec![1]);
        assert_eq!(p.control_core, Some(0));
    }
}

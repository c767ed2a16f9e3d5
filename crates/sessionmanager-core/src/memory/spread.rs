//! Which shard a hash goes to. Shards get unequal shares on purpose, so their
//! hash tables do not all double at the same moment.

/// Map slots per shard, on average: how finely the shares are drawn.
const SLOTS_PER_SHARD: usize = 32;
/// Most map slots (256 KiB of map); beyond 2048 shards the shares get coarser,
/// down to one slot each.
const MAX_SLOTS: usize = 1 << 16;

/// Maps a 64-bit hash to one of `count` shards, shard `i` receiving a share of
/// hashes proportional to `2^(i / count)`: the largest about twice the smallest.
///
/// Why not an even split: a hash table doubles its buckets when it fills, and
/// right after that it is less than half full. With equal shares every shard's
/// table doubles at the same moment (for 64 shards of records, just above
/// 917 k sessions), so the store's memory per session jumps by half at that
/// point. Shares spread over one doubling put the tables at evenly spread fill
/// levels whatever the number of sessions, so memory grows smoothly at the
/// average rate instead of in steps. Contention is barely affected: the busiest
/// shard sees at most twice the traffic of the quietest.
pub(crate) struct ShardMap {
    /// Shard of each slot; the hash's top bits pick the slot.
    slots: Box<[u32]>,
    /// `64 - log2(slots.len())`.
    shift: u32,
}

impl ShardMap {
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1);
        let len = count
            .saturating_mul(SLOTS_PER_SHARD)
            .min(MAX_SLOTS)
            .max(count)
            .next_power_of_two();
        let weight = |shard: usize| (shard as f64 / count as f64).exp2();
        let total: f64 = (0..count).map(weight).sum();
        let mut slots = Vec::with_capacity(len);
        let mut cumulative = 0.0;
        for shard in 0..count {
            cumulative += weight(shard);
            let share_end = ((cumulative / total) * len as f64).round() as usize;
            // Every shard gets at least one slot, and the last one ends the map.
            let end = if shard + 1 == count {
                len
            } else {
                share_end
                    .max(slots.len() + 1)
                    .min(len - (count - 1 - shard))
            };
            slots.resize(end, shard as u32);
        }
        Self {
            slots: slots.into_boxed_slice(),
            shift: 64 - len.trailing_zeros(),
        }
    }

    /// The shard for `hash`, from its top bits.
    pub(crate) fn shard_of(&self, hash: u64) -> usize {
        // `len` is at least SLOTS_PER_SHARD, so the shift is below 64.
        self.slots[(hash >> self.shift) as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(map: &ShardMap, count: usize) -> Vec<usize> {
        let mut shares = vec![0; count];
        for &shard in &map.slots {
            shares[shard as usize] += 1;
        }
        shares
    }

    #[test]
    fn every_shard_gets_a_share_growing_to_about_twice_the_first() {
        for count in [1, 2, 3, 7, 64, 100, 1000, 5000, 100_000] {
            let map = ShardMap::new(count);
            let shares = shares(&map, count);
            assert!(shares.iter().all(|&s| s > 0), "{count}: {shares:?}");
            assert!(shares.windows(2).all(|w| w[0] <= w[1] + 1), "{count}");
            if (64..=2048).contains(&count) {
                let ratio = shares[count - 1] as f64 / shares[0] as f64;
                assert!((1.7..2.3).contains(&ratio), "{count}: {ratio}");
            }
        }
    }

    #[test]
    fn any_hash_maps_to_a_shard_in_range() {
        for count in [1, 5, 64] {
            let map = ShardMap::new(count);
            for hash in [0, 1, u64::MAX / 3, u64::MAX - 1, u64::MAX] {
                assert!(map.shard_of(hash) < count);
            }
            assert_eq!(map.shard_of(0), 0);
            assert_eq!(map.shard_of(u64::MAX), count - 1);
        }
    }
}

//! One side of an L2 book: price levels kept sorted in two flat vectors with the best level
//! last, so that the common update (near the touch) is a short scan and a short move, and the
//! top N levels are a contiguous slice.

/// One side's levels. Keys are "higher is better": ticks for bids, negated ticks for asks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ladder {
    keys: Vec<i64>,
    sizes: Vec<f64>,
}

/// How many levels next to the touch are scanned linearly before a binary search.
const NEAR_TOUCH: usize = 24;

impl Ladder {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            keys: Vec::with_capacity(capacity),
            sizes: Vec::with_capacity(capacity),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.sizes.clear();
    }

    /// `Ok(index)` of `key`, or `Err(index)` where it would be inserted.
    #[inline]
    fn find(&self, key: i64) -> Result<usize, usize> {
        let len = self.keys.len();
        if len == 0 || key > self.keys[len - 1] {
            return Err(len);
        }
        let near = len.saturating_sub(NEAR_TOUCH);
        if key >= self.keys[near] {
            let mut index = len;
            while index > near {
                index -= 1;
                let here = self.keys[index];
                if here == key {
                    return Ok(index);
                }
                if here < key {
                    return Err(index + 1);
                }
            }
            return Err(near);
        }
        self.keys[..near].binary_search(&key)
    }

    /// Sets the absolute size at `key`; 0 removes the level (an absent level is fine).
    /// Returns whether the ladder changed.
    #[inline]
    pub(crate) fn set(&mut self, key: i64, size: f64) -> bool {
        match self.find(key) {
            Ok(index) => {
                if size == 0.0 {
                    self.keys.remove(index);
                    self.sizes.remove(index);
                    true
                } else if self.sizes[index] == size {
                    false
                } else {
                    self.sizes[index] = size;
                    true
                }
            }
            Err(index) => {
                if size == 0.0 {
                    return false;
                }
                if index == self.keys.len() {
                    self.keys.push(key);
                    self.sizes.push(size);
                } else {
                    self.keys.insert(index, key);
                    self.sizes.insert(index, size);
                }
                true
            }
        }
    }

    /// Replaces every level. `levels` may be in any order; duplicates keep the last size.
    pub(crate) fn replace(&mut self, levels: impl Iterator<Item = (i64, f64)>) {
        self.clear();
        for (key, size) in levels {
            self.set(key, size);
        }
    }

    #[inline]
    pub(crate) fn best(&self) -> Option<(i64, f64)> {
        let last = self.keys.len().checked_sub(1)?;
        Some((self.keys[last], self.sizes[last]))
    }

    #[inline]
    pub(crate) fn size_at(&self, key: i64) -> f64 {
        match self.find(key) {
            Ok(index) => self.sizes[index],
            Err(_) => 0.0,
        }
    }

    /// Summed size of the best `depth` levels, added from the best outward.
    #[inline]
    pub(crate) fn top_size(&self, depth: usize) -> f64 {
        let start = self.sizes.len().saturating_sub(depth);
        // + 0.0: an empty sum of floats is -0.0 in Rust.
        self.sizes[start..].iter().rev().sum::<f64>() + 0.0
    }

    /// Summed sizes of the best `depths[i]` levels for every i, in one pass from the best
    /// outward. `depths` must be ascending.
    #[inline]
    pub(crate) fn top_sizes(&self, depths: &[usize], out: &mut [f64]) {
        let mut total = 0.0;
        let mut taken = 0;
        let mut levels = self.sizes.iter().rev();
        for (depth, slot) in depths.iter().zip(out.iter_mut()) {
            while taken < *depth {
                match levels.next() {
                    Some(size) => total += size,
                    None => break,
                }
                taken += 1;
            }
            *slot = total;
        }
    }

    /// Summed size of the levels from the best outward while their key is at least `min_key`.
    pub(crate) fn size_down_to(&self, min_key: i64) -> f64 {
        self.keys
            .iter()
            .zip(&self.sizes)
            .rev()
            .take_while(|(key, _)| **key >= min_key)
            .map(|(_, size)| size)
            .sum::<f64>()
            + 0.0
    }

    /// The best `depth` levels as (keys, sizes) slices, best last.
    #[inline]
    pub(crate) fn top(&self, depth: usize) -> (&[i64], &[f64]) {
        let start = self.keys.len().saturating_sub(depth);
        (&self.keys[start..], &self.sizes[start..])
    }

    /// The level `rank` places from the best (0 = best), as (key, size).
    #[inline]
    pub(crate) fn at_rank(&self, rank: usize) -> Option<(i64, f64)> {
        let index = self.keys.len().checked_sub(rank + 1)?;
        Some((self.keys[index], self.sizes[index]))
    }

    /// Sizes of the best `depth` levels, best first.
    #[inline]
    pub(crate) fn top_sizes_iter(&self, depth: usize) -> impl Iterator<Item = f64> + '_ {
        let start = self.sizes.len().saturating_sub(depth);
        self.sizes[start..].iter().rev().copied()
    }

    /// Levels from the best outward, as (key, size).
    pub(crate) fn iter_from_best(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.keys
            .iter()
            .copied()
            .zip(self.sizes.iter().copied())
            .rev()
    }

    /// Checks the ladder's own invariants (strictly ascending keys, positive finite sizes).
    #[cfg(test)]
    pub(crate) fn is_well_formed(&self) -> bool {
        self.keys.windows(2).all(|pair| pair[0] < pair[1])
            && self
                .sizes
                .iter()
                .all(|size| size.is_finite() && *size > 0.0)
            && self.keys.len() == self.sizes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_update_delete_in_any_order() {
        let mut ladder = Ladder::default();
        for key in [5, 1, 9, 3, 7, 100, -4] {
            assert!(ladder.set(key, key as f64 + 10.0));
        }
        assert!(ladder.is_well_formed());
        assert_eq!(ladder.best(), Some((100, 110.0)));
        assert!(
            !ladder.set(42, 0.0),
            "deleting an absent level changes nothing"
        );
        assert!(ladder.set(100, 0.0));
        assert_eq!(ladder.best(), Some((9, 19.0)));
        assert!(!ladder.set(9, 19.0), "same size is no change");
        assert!(ladder.set(9, 1.0));
        assert_eq!(ladder.size_at(9), 1.0);
        assert_eq!(ladder.size_at(8), 0.0);
        assert_eq!(ladder.top_size(2), 1.0 + 17.0);
        assert_eq!(
            ladder.top_size(100),
            ladder.iter_from_best().map(|(_, s)| s).sum::<f64>()
        );
    }

    #[test]
    fn far_levels_take_the_binary_search_path() {
        let mut ladder = Ladder::default();
        for key in 0..1000 {
            ladder.set(key * 2, 1.0);
        }
        assert!(ladder.set(3, 5.0));
        assert!(ladder.set(1001, 5.0));
        assert_eq!(ladder.size_at(3), 5.0);
        assert!(ladder.set(3, 0.0));
        assert_eq!(ladder.size_at(3), 0.0);
        assert!(ladder.is_well_formed());
        assert_eq!(ladder.len(), 1001);
    }

    #[test]
    fn top_sizes_in_one_pass() {
        let mut ladder = Ladder::default();
        for key in 1..=10 {
            ladder.set(key, key as f64);
        }
        let mut out = [0.0; 3];
        ladder.top_sizes(&[1, 3, 50], &mut out);
        assert_eq!(out, [10.0, 27.0, 55.0]);
        assert_eq!(ladder.size_down_to(8), 27.0);
        let empty = Ladder::default();
        empty.top_sizes(&[1, 3, 50], &mut out);
        assert_eq!(out, [0.0; 3]);
    }
}

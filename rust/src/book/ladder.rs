//! One side of an L2 book in two tiers. The levels next to the touch sit sorted in two flat
//! vectors with the best level last, so the common update is a short scan and a short move and
//! the top N levels are a contiguous slice. Levels further out live unordered in a hash table ([`FarLevels`]), so
//! an insert or delete a thousand levels deep costs one hash probe, not a move of every level
//! between it and the touch (on the recorded BTCUSDT stream half of all inserts and deletes land
//! more than 200 levels from the touch, and the book grows to 5,000 levels a side). The far
//! tier is put in order only when it is read in order: a refill of the near tier after a sweep,
//! or a reader that walks the whole side. A side of a depth message sorted by price (as the
//! venue sends it) is merged in one pass: one walk up the near tier, each level moved at most
//! once, the tiers rebalanced once.
//!
//! Invariants: near keys strictly ascending; every far key below the worst near key; the near
//! tier holds at least `min(near_min, len)` levels, so any depth up to `near_min` is contiguous.

use std::sync::atomic::{AtomicU64, Ordering};

use super::far_levels::FarLevels;

/// Ladder identities: every ladder, and every clone of one, gets its own.
static NEXT_LADDER_ID: AtomicU64 = AtomicU64::new(1);

/// Which ladder this is and how many times its contiguous top has changed: readers that keep
/// values computed from the top levels (the feature engine) recompute them only when the stamp
/// moved. A clone is another ladder with its own history, so it takes a fresh identity.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TopStamp {
    ladder: u64,
    changes: u64,
}

impl TopStamp {
    fn fresh() -> Self {
        Self {
            ladder: NEXT_LADDER_ID.fetch_add(1, Ordering::Relaxed),
            changes: 0,
        }
    }
}

impl Clone for TopStamp {
    fn clone(&self) -> Self {
        Self::fresh()
    }
}

/// One side's levels. Keys are "higher is better": ticks for bids, negated ticks for asks.
#[derive(Debug, Clone)]
pub(crate) struct Ladder {
    keys: Vec<i64>,
    sizes: Vec<f64>,
    far: FarLevels,
    near_min: usize,
    refill_scratch: Vec<(i64, f64)>,
    /// Inserts and deletes found by [`Self::merge_ascending`], applied after its pass.
    edits: Vec<Edit>,
    /// Counts every change among the best `near_min` levels (an insert, resize or delete whose
    /// rank from the best is below `near_min`; deeper levels can only be in the far tier or
    /// the near tier's surplus, whose changes leave the best `near_min` levels as they were).
    stamp: TopStamp,
}

/// A level to insert into (size > 0) or delete from (size 0) the near tier at an index of the
/// near tier as it was before the merge.
#[derive(Debug, Clone, Copy)]
struct Edit {
    index: usize,
    key: i64,
    size: f64,
}

/// The order of one side's price levels in a message, by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOrder {
    /// Strictly ascending: the worst level first (Binance bids).
    Ascending,
    /// Strictly descending: the best level first (Binance asks, as keys are negated ticks).
    Descending,
    /// Anything else (a repeated price, or out of order).
    Unordered,
}

/// What one update did to a side, for readers that keep sums over its best levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LevelChange {
    /// Nothing: the size was already that (or an absent level was removed).
    Unchanged,
    /// The level `rank` places from the best, within the levels kept contiguous, went from
    /// size `old` to `new`. `old == 0`: inserted, the levels from `rank` on moved one place
    /// deeper; `new == 0`: removed, the levels behind it moved one place up.
    Best {
        /// Places from the best (0 = the touch).
        rank: usize,
        /// Size before (0: the level is new).
        old: f64,
        /// Size after (0: the level is gone).
        new: f64,
    },
    /// A change deeper than the levels kept contiguous (their ranks and sizes are as they were).
    Deep,
}

/// How many levels next to the touch are scanned linearly before a binary search.
const NEAR_TOUCH: usize = 24;

/// Levels kept contiguous next to the touch unless the book asks for more.
pub(crate) const DEFAULT_NEAR_LEVELS: usize = 64;

impl Default for Ladder {
    fn default() -> Self {
        Self::with_near_levels(DEFAULT_NEAR_LEVELS)
    }
}

impl Ladder {
    pub(crate) fn with_near_levels(near_min: usize) -> Self {
        let near_min = near_min.max(1);
        Self {
            keys: Vec::with_capacity(3 * near_min + 1),
            sizes: Vec::with_capacity(3 * near_min + 1),
            far: FarLevels::default(),
            near_min,
            refill_scratch: Vec::new(),
            edits: Vec::new(),
            stamp: TopStamp::fresh(),
        }
    }

    /// `(ladder identity, changes)`: equal stamps mean the best `depth` levels are as they
    /// were, when `depth` is within the levels kept contiguous (None otherwise: not tracked).
    #[inline]
    pub(crate) fn top_stamp(&self, depth: usize) -> Option<(u64, u64)> {
        (depth <= self.near_min).then_some((self.stamp.ladder, self.stamp.changes))
    }

    /// Records a change at `rank` from the best.
    #[inline]
    fn touched(&mut self, rank: usize) {
        if rank < self.near_min {
            self.stamp.changes += 1;
        }
    }

    /// Keeps at least `depth` levels contiguous next to the touch (when the side has them).
    pub(crate) fn keep_contiguous(&mut self, depth: usize) {
        if depth > self.near_min {
            self.near_min = depth;
            self.refill();
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.keys.len() + self.far.len()
    }

    pub(crate) fn clear(&mut self) {
        self.stamp.changes += 1;
        self.keys.clear();
        self.sizes.clear();
        self.far.clear();
    }

    /// Whether `key` belongs to the far tier.
    #[inline]
    fn is_far(&self, key: i64) -> bool {
        !self.far.is_empty() && key < self.keys[0]
    }

    /// `Ok(index)` of `key` in the near tier, or `Err(index)` where it would be inserted.
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
        self.change(key, size) != LevelChange::Unchanged
    }

    /// Sets the absolute size at `key` (0 removes the level) and says what changed.
    #[inline]
    pub(crate) fn change(&mut self, key: i64, size: f64) -> LevelChange {
        if self.is_far(key) {
            return if self.set_far(key, size) {
                LevelChange::Deep
            } else {
                LevelChange::Unchanged
            };
        }
        match self.find(key) {
            Ok(index) => {
                let rank = self.keys.len() - 1 - index;
                let old = self.sizes[index];
                if size == 0.0 {
                    self.touched(rank);
                    self.keys.remove(index);
                    self.sizes.remove(index);
                    if self.keys.len() < self.near_min && !self.far.is_empty() {
                        self.refill();
                    }
                    self.near_change(rank, old, 0.0)
                } else if old == size {
                    LevelChange::Unchanged
                } else {
                    self.touched(rank);
                    self.sizes[index] = size;
                    self.near_change(rank, old, size)
                }
            }
            Err(index) => {
                if size == 0.0 {
                    return LevelChange::Unchanged;
                }
                let rank = self.keys.len() - index;
                self.touched(rank);
                if index == self.keys.len() {
                    self.keys.push(key);
                    self.sizes.push(size);
                } else {
                    self.keys.insert(index, key);
                    self.sizes.insert(index, size);
                }
                if self.keys.len() > 3 * self.near_min {
                    self.spill();
                }
                self.near_change(rank, 0.0, size)
            }
        }
    }

    /// Applies one side of a message: `(ticks, size)` levels (0 removes), the key of a level
    /// being its ticks, or its negated ticks when `negate` (an ask side). Levels sorted by price
    /// either way (the venue sends them so) are merged into the ladder in one pass; any other
    /// order is applied level by level. The result is the same either way: the levels, their
    /// sizes and the stamp's promise (the stamp may move fewer times).
    pub(crate) fn apply_levels(&mut self, levels: &[(i64, f64)], negate: bool) {
        let key = move |ticks: i64| if negate { -ticks } else { ticks };
        match key_order(levels, negate) {
            KeyOrder::Ascending => {
                self.merge_ascending(levels.iter().map(|&(ticks, size)| (key(ticks), size)));
            }
            KeyOrder::Descending => {
                self.merge_ascending(levels.iter().rev().map(|&(ticks, size)| (key(ticks), size)));
            }
            KeyOrder::Unordered => {
                for &(ticks, size) in levels {
                    self.set(key(ticks), size);
                }
            }
        }
    }

    /// Applies updates whose keys are strictly ascending. One walk up the near tier finds every
    /// level (resized on the spot); inserts and deletes are collected and then applied in one
    /// sweep that moves each level at most once. Levels below the near tier go to the far tier
    /// as in [`Self::change`]; the tiers are rebalanced once at the end.
    fn merge_ascending(&mut self, updates: impl Iterator<Item = (i64, f64)>) {
        let len = self.keys.len();
        // Keys below the worst near level belong to the far tier (while it holds any level).
        let far_below = match self.keys.first() {
            Some(&worst_near) if !self.far.is_empty() => worst_near,
            _ => i64::MIN,
        };
        let mut edits = std::mem::take(&mut self.edits);
        edits.clear();
        let mut top_changed = false;
        let mut cursor = 0;
        for (key, size) in updates {
            if key < far_below {
                // Nobody is told what changed here, so the old size is not asked for.
                if size == 0.0 {
                    self.far.remove(key);
                } else {
                    self.far.insert(key, size);
                }
                continue;
            }
            cursor = seek(&self.keys, cursor, key);
            if cursor < len && self.keys[cursor] == key {
                // The level `len - 1 - cursor` places from the best.
                let in_top = cursor + self.near_min >= len;
                if size == 0.0 {
                    edits.push(Edit {
                        index: cursor,
                        key,
                        size,
                    });
                    top_changed |= in_top;
                } else if self.sizes[cursor] != size {
                    self.sizes[cursor] = size;
                    top_changed |= in_top;
                }
                cursor += 1;
            } else if size != 0.0 {
                // A new level `len - cursor` places from the best.
                edits.push(Edit {
                    index: cursor,
                    key,
                    size,
                });
                top_changed |= cursor + self.near_min > len;
            }
        }
        if top_changed {
            self.stamp.changes += 1;
        }
        match edits.as_slice() {
            [] => {}
            // One insert or delete: one move of the levels above it.
            &[Edit { index, key, size }] => {
                if size == 0.0 {
                    self.keys.remove(index);
                    self.sizes.remove(index);
                } else {
                    self.keys.insert(index, key);
                    self.sizes.insert(index, size);
                }
            }
            _ => self.apply_edits(&edits),
        }
        self.edits = edits;
        if self.keys.len() > 3 * self.near_min {
            self.spill();
        } else if self.keys.len() < self.near_min && !self.far.is_empty() {
            self.refill();
        }
    }

    /// Applies inserts and deletes at indices of the near tier as it was, in index order (an
    /// insert before a delete at the same index: the new level sits just below the deleted
    /// one). The untouched runs of levels between edits each shift by the inserts less the
    /// deletes before them: runs shifting down (toward index 0) are moved first, lowest first,
    /// then runs shifting up, highest first, so that no run is overwritten before it moves.
    /// The new levels are written last.
    fn apply_edits(&mut self, edits: &[Edit]) {
        let len = self.keys.len();
        let inserts = edits.iter().filter(|edit| edit.size != 0.0).count();
        let deletes = edits.len() - inserts;
        let new_len = len + inserts - deletes;
        if new_len > len {
            self.keys.resize(new_len, 0);
            self.sizes.resize(new_len, 0.0);
        }
        // Run `j` (0..=edits.len()) spans the levels from the edit before it (or 0) to the edit
        // after it (or `len`); shift `j` is where it goes.
        let run = |j: usize| -> (usize, usize) {
            let start = if j == 0 {
                0
            } else {
                let before = edits[j - 1];
                before.index + usize::from(before.size == 0.0)
            };
            let end = edits.get(j).map_or(len, |edit| edit.index);
            (start, end.max(start))
        };
        let mut shift: isize = 0;
        // Down-moving runs, lowest first.
        for j in 0..=edits.len() {
            if j > 0 {
                shift += if edits[j - 1].size == 0.0 { -1 } else { 1 };
            }
            if shift < 0 {
                let (start, end) = run(j);
                if start < end {
                    let to = start.wrapping_add_signed(shift);
                    self.keys.copy_within(start..end, to);
                    self.sizes.copy_within(start..end, to);
                }
            }
        }
        // Up-moving runs, highest first (`shift` is now the last run's).
        for j in (0..=edits.len()).rev() {
            if shift > 0 {
                let (start, end) = run(j);
                if start < end {
                    let to = start.wrapping_add_signed(shift);
                    self.keys.copy_within(start..end, to);
                    self.sizes.copy_within(start..end, to);
                }
            }
            if j > 0 {
                shift -= if edits[j - 1].size == 0.0 { -1 } else { 1 };
            }
        }
        // The new levels: an insert lands at its index moved by the edits before it.
        let mut shift: isize = 0;
        for edit in edits {
            if edit.size == 0.0 {
                shift -= 1;
            } else {
                let at = edit.index.wrapping_add_signed(shift);
                self.keys[at] = edit.key;
                self.sizes[at] = edit.size;
                shift += 1;
            }
        }
        self.keys.truncate(new_len);
        self.sizes.truncate(new_len);
    }

    /// A change at `rank`: [`LevelChange::Best`] within the levels kept contiguous.
    #[inline]
    fn near_change(&self, rank: usize, old: f64, new: f64) -> LevelChange {
        if rank < self.near_min {
            LevelChange::Best { rank, old, new }
        } else {
            LevelChange::Deep
        }
    }

    #[cold]
    fn set_far(&mut self, key: i64, size: f64) -> bool {
        if size == 0.0 {
            self.far.remove(key).is_some()
        } else {
            self.far.insert(key, size) != Some(size)
        }
    }

    /// Moves the worst near levels to the far tier, leaving `2 × near_min`.
    #[cold]
    fn spill(&mut self) {
        let count = self.keys.len() - 2 * self.near_min;
        for (key, size) in self.keys.drain(..count).zip(self.sizes.drain(..count)) {
            self.far.insert(key, size);
        }
    }

    /// Brings the best far levels into the near tier, up to `2 × near_min` near levels.
    #[cold]
    fn refill(&mut self) {
        let wanted = (2 * self.near_min).saturating_sub(self.keys.len());
        if wanted == 0 || self.far.is_empty() || self.refill_by_probing(wanted) {
            return;
        }
        let wanted = (2 * self.near_min).saturating_sub(self.keys.len());
        let mut best = std::mem::take(&mut self.refill_scratch);
        best.clear();
        best.extend(self.far.iter());
        // The `wanted` highest keys, ascending, at the end.
        if best.len() > wanted {
            let cut = best.len() - wanted;
            best.select_nth_unstable_by_key(cut, |(key, _)| *key);
            best.drain(..cut);
        }
        best.sort_unstable_by_key(|(key, _)| *key);
        for (key, _) in &best {
            self.far.remove(*key);
        }
        self.keys.splice(0..0, best.iter().map(|(key, _)| *key));
        self.sizes.splice(0..0, best.iter().map(|(_, size)| *size));
        self.refill_scratch = best;
    }

    /// The refill of a book whose levels are dense next to the touch (every tick or most of
    /// them): the best far levels are then the keys just below the worst near key, and probing
    /// those keys one by one finds them in a few hundred instructions, where reading the whole
    /// far tier (thousands of levels) costs a hundred thousand. Moves every far level from the
    /// worst near key down to where the probes stop (`wanted` found, or `4 × wanted` keys
    /// probed), so every far key left stays below every near key. Returns whether the near tier
    /// now holds at least `min(near_min, len)` levels; if not, [`Self::refill`] goes on with
    /// the full read.
    fn refill_by_probing(&mut self, wanted: usize) -> bool {
        let Some(&worst_near) = self.keys.first() else {
            return false;
        };
        let mut found = std::mem::take(&mut self.refill_scratch);
        found.clear();
        let mut key = worst_near;
        for _ in 0..4 * wanted {
            let Some(next) = key.checked_sub(1) else {
                break;
            };
            key = next;
            if let Some(size) = self.far.remove(key) {
                found.push((key, size));
                if found.len() == wanted || self.far.is_empty() {
                    break;
                }
            }
        }
        // Found best first; the near tier keeps its keys ascending.
        self.keys
            .splice(0..0, found.iter().rev().map(|(key, _)| *key));
        self.sizes
            .splice(0..0, found.iter().rev().map(|(_, size)| *size));
        self.refill_scratch = found;
        self.keys.len() >= self.near_min.min(self.len())
    }

    /// The far tier from its best level outward (sorted on demand: for readers that walk deep).
    fn far_from_best(&self) -> Vec<(i64, f64)> {
        let mut levels: Vec<(i64, f64)> = self.far.iter().collect();
        levels.sort_unstable_by_key(|(key, _)| std::cmp::Reverse(*key));
        levels
    }

    /// Replaces every level. `levels` may be in any order; duplicates keep the last size.
    pub(crate) fn replace(&mut self, levels: impl Iterator<Item = (i64, f64)>) {
        self.clear();
        for (key, size) in levels {
            if size == 0.0 {
                self.far.remove(key);
            } else {
                self.far.insert(key, size);
            }
        }
        self.refill();
        self.stamp.changes += 1;
    }

    #[inline]
    pub(crate) fn best(&self) -> Option<(i64, f64)> {
        let last = self.keys.len().checked_sub(1)?;
        Some((self.keys[last], self.sizes[last]))
    }

    #[inline]
    pub(crate) fn size_at(&self, key: i64) -> f64 {
        if self.is_far(key) {
            return self.far.get(key).unwrap_or(0.0);
        }
        match self.find(key) {
            Ok(index) => self.sizes[index],
            Err(_) => 0.0,
        }
    }

    /// Sizes from the best outward (the far tier sorted only if the walk reaches it).
    #[inline]
    fn sizes_from_best(&self) -> impl Iterator<Item = f64> + '_ {
        let mut far: Option<std::vec::IntoIter<(i64, f64)>> = None;
        self.sizes
            .iter()
            .rev()
            .copied()
            .chain(std::iter::from_fn(move || {
                far.get_or_insert_with(|| self.far_from_best().into_iter())
                    .next()
                    .map(|(_, size)| size)
            }))
    }

    /// Summed size of the best `depth` levels, added from the best outward.
    #[inline]
    pub(crate) fn top_size(&self, depth: usize) -> f64 {
        // + 0.0: an empty sum of floats is -0.0 in Rust.
        self.sizes_from_best().take(depth).sum::<f64>() + 0.0
    }

    /// Summed sizes of the best `depths[i]` levels for every i, in one pass from the best
    /// outward. `depths` must be ascending.
    #[inline]
    pub(crate) fn top_sizes(&self, depths: &[usize], out: &mut [f64]) {
        let mut total = 0.0;
        let mut taken = 0;
        let mut levels = self.sizes_from_best();
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
        self.iter_from_best()
            .take_while(|(key, _)| *key >= min_key)
            .map(|(_, size)| size)
            .sum::<f64>()
            + 0.0
    }

    /// The best `depth` levels: the contiguous near part as (keys, sizes) slices, best last,
    /// and the requested levels beyond it, best first (sorted from the far tier: empty, with no
    /// work, whenever `depth` is within the contiguous levels).
    #[inline]
    pub(crate) fn top(&self, depth: usize) -> (&[i64], &[f64], Vec<(i64, f64)>) {
        let start = self.keys.len().saturating_sub(depth);
        let beyond = depth.saturating_sub(self.keys.len()).min(self.far.len());
        let far = if beyond == 0 {
            Vec::new()
        } else {
            let mut far = self.far_from_best();
            far.truncate(beyond);
            far
        };
        (&self.keys[start..], &self.sizes[start..], far)
    }

    /// The level `rank` places from the best (0 = best), as (key, size).
    #[inline]
    pub(crate) fn at_rank(&self, rank: usize) -> Option<(i64, f64)> {
        match self.keys.len().checked_sub(rank + 1) {
            Some(index) => Some((self.keys[index], self.sizes[index])),
            None => self.far_from_best().get(rank - self.keys.len()).copied(),
        }
    }

    /// Sizes of the best `depth` levels, best first.
    #[inline]
    pub(crate) fn top_sizes_iter(&self, depth: usize) -> impl Iterator<Item = f64> + '_ {
        self.sizes_from_best().take(depth)
    }

    /// Levels from the best outward, as (key, size).
    pub(crate) fn iter_from_best(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.keys
            .iter()
            .copied()
            .zip(self.sizes.iter().copied())
            .rev()
            .chain(std::iter::once(()).flat_map(move |()| self.far_from_best()))
    }

    /// Checks the ladder's own invariants (strictly ascending keys, positive finite sizes, far
    /// keys below near keys, the near tier as full as promised).
    #[cfg(test)]
    pub(crate) fn is_well_formed(&self) -> bool {
        let keys: Vec<i64> = self.iter_from_best().map(|(key, _)| key).collect();
        keys.windows(2).all(|pair| pair[0] > pair[1])
            && self
                .iter_from_best()
                .all(|(_, size)| size.is_finite() && size > 0.0)
            && self.keys.len() == self.sizes.len()
            && self.keys.len() >= self.near_min.min(self.len())
            && self
                .far
                .iter()
                .map(|(key, _)| key)
                .max()
                .is_none_or(|worst_far| self.keys.first().is_some_and(|near| worst_far < *near))
    }
}

/// The order of `levels` by key (ticks, or negated ticks when `negate`).
fn key_order(levels: &[(i64, f64)], negate: bool) -> KeyOrder {
    let ascending_ticks = levels.windows(2).all(|pair| pair[0].0 < pair[1].0);
    let order = if ascending_ticks {
        KeyOrder::Ascending
    } else if levels.windows(2).all(|pair| pair[0].0 > pair[1].0) {
        KeyOrder::Descending
    } else {
        return KeyOrder::Unordered;
    };
    match (order, negate) {
        (KeyOrder::Ascending, true) => KeyOrder::Descending,
        (KeyOrder::Descending, true) => KeyOrder::Ascending,
        _ => order,
    }
}

/// The first index from `from` on whose key is at least `key` (`keys.len()` if none): steps
/// of 1, 2, 4, ... from `from`, then a binary search in the last step (the levels of one
/// message usually sit a few places apart).
#[inline]
fn seek(keys: &[i64], from: usize, key: i64) -> usize {
    let mut low = from;
    let mut step = 1;
    let mut high = from;
    while high < keys.len() && keys[high] < key {
        low = high + 1;
        high += step;
        step *= 2;
    }
    let high = high.min(keys.len());
    low + keys[low..high].partition_point(|here| *here < key)
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
    fn top_stamp_moves_with_the_best_levels_only() {
        let mut ladder = Ladder::with_near_levels(3);
        for key in 1..=20 {
            ladder.set(key, 1.0);
        }
        let stamp = ladder.top_stamp(3);
        assert!(ladder.set(5, 2.0), "a deep level changes");
        assert_eq!(ladder.top_stamp(3), stamp, "the best 3 levels did not");
        assert!(ladder.set(19, 2.0));
        assert_ne!(ladder.top_stamp(3), stamp, "the second best level changed");
        let stamp = ladder.top_stamp(3);
        assert!(ladder.set(21, 1.0), "a new best level");
        assert_ne!(ladder.top_stamp(3), stamp);
        let stamp = ladder.top_stamp(3);
        ladder.replace([(1, 1.0)].into_iter());
        assert_ne!(ladder.top_stamp(3), stamp, "a replaced side is a change");
        assert_eq!(
            ladder.top_stamp(4),
            None,
            "deeper than kept contiguous: not tracked"
        );
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// A side of a message merged in one pass leaves the ladder as applying its levels one
        /// by one does (every key and size bit for bit, the tiers well formed), whatever the
        /// order the levels come in: ascending, descending, or as drawn (repeated prices
        /// included, which take the level-by-level path). Near tiers of one to four levels put
        /// most updates beyond them, so far updates, spills and refills all happen.
        #[test]
        fn one_pass_merge_agrees_with_level_by_level(
            initial in proptest::collection::vec((1i64..80, 1u8..4), 0..150),
            messages in proptest::collection::vec(
                (proptest::collection::vec((1i64..80, 0u8..4), 0..40), 0u8..3),
                1..6,
            ),
            near in 1usize..5,
            negate: bool,
        ) {
            use std::collections::BTreeMap;
            let key = |ticks: i64| if negate { -ticks } else { ticks };
            let mut merged = Ladder::with_near_levels(near);
            let mut reference = Ladder::with_near_levels(near);
            for &(ticks, size) in &initial {
                merged.set(key(ticks), f64::from(size) / 4.0);
                reference.set(key(ticks), f64::from(size) / 4.0);
            }
            for (drawn, order) in messages {
                let mut levels: Vec<(i64, f64)> =
                    drawn.iter().map(|&(ticks, size)| (ticks, f64::from(size) / 4.0)).collect();
                if order < 2 {
                    // One level a price (the last drawn), sorted.
                    let unique: BTreeMap<i64, f64> = levels.iter().copied().collect();
                    levels = unique.into_iter().collect();
                    if order == 1 {
                        levels.reverse();
                    }
                }
                let top_before: Vec<(i64, f64)> = merged.iter_from_best().take(near).collect();
                let stamp_before = merged.top_stamp(near);
                merged.apply_levels(&levels, negate);
                for &(ticks, size) in &levels {
                    reference.set(key(ticks), size);
                }
                proptest::prop_assert!(merged.is_well_formed());
                let bits = |ladder: &Ladder| -> Vec<(i64, u64)> {
                    ladder.iter_from_best().map(|(key, size)| (key, size.to_bits())).collect()
                };
                proptest::prop_assert_eq!(bits(&merged), bits(&reference));
                proptest::prop_assert_eq!(merged.len(), reference.len());
                let top_after: Vec<(i64, f64)> = merged.iter_from_best().take(near).collect();
                if top_after != top_before {
                    proptest::prop_assert_ne!(merged.top_stamp(near), stamp_before);
                }
                for depth in [0, 1, near, near + 3] {
                    let (keys, sizes, far) = merged.top(depth);
                    let mut view: Vec<(i64, f64)> =
                        keys.iter().copied().zip(sizes.iter().copied()).rev().collect();
                    view.extend(far);
                    let expected: Vec<(i64, f64)> = reference.iter_from_best().take(depth).collect();
                    proptest::prop_assert_eq!(view, expected);
                    if depth <= near {
                        proptest::prop_assert_eq!(keys.len(), depth.min(merged.len()));
                    }
                }
            }
        }

        /// With a near tier of two levels every operation crosses the tiers: spills, refills and
        /// far updates all happen, and every read agrees with a plain map model.
        #[test]
        fn two_tiers_agree_with_a_map(
            operations in proptest::collection::vec((0i64..60, 0u8..4), 1..400),
            near in 1usize..4,
            depth in 0usize..20,
        ) {
            use std::collections::BTreeMap;
            let mut ladder = Ladder::with_near_levels(near);
            let mut model = BTreeMap::new();
            for (key, size) in operations {
                let size = f64::from(size);
                let before = model.get(&key).copied().unwrap_or(0.0);
                let top_before: Vec<(i64, f64)> = ladder.iter_from_best().take(near).collect();
                let stamp_before = ladder.top_stamp(near);
                let changed = ladder.set(key, size);
                if size == 0.0 { model.remove(&key); } else { model.insert(key, size); }
                proptest::prop_assert_eq!(changed, before != size);
                proptest::prop_assert!(ladder.is_well_formed());
                // An unchanged stamp promises unchanged best `near` levels.
                let top_after: Vec<(i64, f64)> = ladder.iter_from_best().take(near).collect();
                proptest::prop_assert!(stamp_before.is_some());
                if ladder.top_stamp(near) == stamp_before {
                    proptest::prop_assert_eq!(top_after, top_before);
                }
            }
            proptest::prop_assert_eq!(ladder.top_stamp(near + 1), None);
            proptest::prop_assert_ne!(ladder.clone().top_stamp(near), ladder.top_stamp(near));
            let from_best: Vec<(i64, f64)> = model.iter().rev().map(|(k, s)| (*k, *s)).collect();
            proptest::prop_assert_eq!(ladder.iter_from_best().collect::<Vec<_>>(), from_best.clone());
            proptest::prop_assert_eq!(ladder.len(), model.len());
            proptest::prop_assert_eq!(ladder.best(), from_best.first().copied());
            for rank in 0..=from_best.len() {
                proptest::prop_assert_eq!(ladder.at_rank(rank), from_best.get(rank).copied());
            }
            for key in 0..60 {
                proptest::prop_assert_eq!(ladder.size_at(key), model.get(&key).copied().unwrap_or(0.0));
            }
            let top: f64 = from_best.iter().take(depth).map(|(_, s)| s).sum();
            proptest::prop_assert_eq!(ladder.top_size(depth), top);
            let (keys, sizes, far) = ladder.top(depth);
            proptest::prop_assert_eq!(keys.len() + far.len(), depth.min(model.len()));
            let mut view: Vec<(i64, f64)> =
                keys.iter().copied().zip(sizes.iter().copied()).rev().collect();
            view.extend(far);
            proptest::prop_assert_eq!(view, from_best.iter().take(depth).copied().collect::<Vec<_>>());
            let mut replaced = Ladder::with_near_levels(near);
            replaced.replace(from_best.iter().copied());
            proptest::prop_assert!(replaced.is_well_formed());
            proptest::prop_assert_eq!(replaced.iter_from_best().collect::<Vec<_>>(), from_best);
        }
    }
}

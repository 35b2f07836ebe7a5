//! The far tier's levels: sizes by key in an open-addressing table made for tick keys. A book's
//! far levels are updated about twice as often as its near ones (on the recorded BTCUSDT
//! stream, 43 of a depth message's 68 levels land beyond the near tier), and every update is one
//! lookup here. Keys are small dense integers that no adversary chooses, so one multiplication
//! spreads them (Fibonacci hashing: neighbouring ticks land far apart); slots are probed
//! linearly with the table at most half full, and a removal shifts the levels behind it back
//! instead of leaving a marker, so a lookup never walks past removed levels.

/// Levels by key, in no order. Every stored size is positive: size 0 marks an empty slot.
#[derive(Debug, Clone)]
pub(crate) struct FarLevels {
    /// (key, size) slots; the length is 0 or a power of two.
    slots: Vec<(i64, f64)>,
    len: usize,
    /// 64 less log2 of the slot count: the home slot is the hash's top bits.
    shift: u32,
}

impl Default for FarLevels {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            shift: 64,
        }
    }
}

/// Slots of a table's first allocation.
const FIRST_SLOTS: usize = 64;

impl FarLevels {
    /// How many levels are stored.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no level is stored.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot where `key`'s probe starts (the table must have slots).
    #[inline]
    fn home(&self, key: i64) -> usize {
        #[allow(clippy::cast_sign_loss)] // the bits are what is hashed
        let bits = key as u64;
        #[allow(clippy::cast_possible_truncation)] // at most log2(slots) bits are left
        let home = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        home
    }

    /// The slot holding `key`, if stored.
    #[inline]
    fn find(&self, key: i64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut index = self.home(key);
        loop {
            let (here, size) = self.slots[index];
            if size == 0.0 {
                return None;
            }
            if here == key {
                return Some(index);
            }
            index = (index + 1) & mask;
        }
    }

    /// The size at `key`, if stored.
    #[inline]
    pub(crate) fn get(&self, key: i64) -> Option<f64> {
        self.find(key).map(|index| self.slots[index].1)
    }

    /// Stores `size` (positive) at `key`; returns the size it replaced.
    #[inline]
    pub(crate) fn insert(&mut self, key: i64, size: f64) -> Option<f64> {
        debug_assert!(size > 0.0, "a stored level has a positive size");
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut index = self.home(key);
        loop {
            let slot = &mut self.slots[index];
            if slot.1 == 0.0 {
                *slot = (key, size);
                self.len += 1;
                return None;
            }
            if slot.0 == key {
                return Some(std::mem::replace(&mut slot.1, size));
            }
            index = (index + 1) & mask;
        }
    }

    /// Removes the level at `key`; returns its size if it was stored.
    #[inline]
    pub(crate) fn remove(&mut self, key: i64) -> Option<f64> {
        let found = self.find(key)?;
        let size = self.slots[found].1;
        // Levels further along the probe run move back into the hole when their own probe
        // passes it, so that every stored level stays reachable from its home slot.
        let mask = self.slots.len() - 1;
        let mut hole = found;
        let mut index = found;
        loop {
            index = (index + 1) & mask;
            let (here, here_size) = self.slots[index];
            if here_size == 0.0 {
                break;
            }
            let home = self.home(here);
            if index.wrapping_sub(home) & mask >= index.wrapping_sub(hole) & mask {
                self.slots[hole] = (here, here_size);
                hole = index;
            }
        }
        self.slots[hole] = (0, 0.0);
        self.len -= 1;
        Some(size)
    }

    /// Removes every level (the slots are kept).
    pub(crate) fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill((0, 0.0));
            self.len = 0;
        }
    }

    /// The stored levels as (key, size), in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.slots.iter().copied().filter(|(_, size)| *size != 0.0)
    }

    /// Doubles the slots (or makes the first ones) and stores every level again.
    #[cold]
    fn grow(&mut self) {
        let slots = (2 * self.slots.len()).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![(0, 0.0); slots]);
        self.shift = 64 - slots.trailing_zeros();
        self.len = 0;
        for (key, size) in old {
            if size != 0.0 {
                self.insert(key, size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any run of inserts and removes leaves the table holding what a map holds, and every
        /// answer along the way (old sizes, lookups, the count) is the map's. Keys come from a
        /// narrow band (long probe runs, removals that shift levels back across the wrap of the
        /// slots) or spread wide.
        #[test]
        fn agrees_with_a_map(
            operations in proptest::collection::vec((0i64..300, 0u8..4), 1..600),
            spread in proptest::prop_oneof![proptest::strategy::Just(1i64), 1i64..1_000_000],
        ) {
            let mut table = FarLevels::default();
            let mut model: HashMap<i64, f64> = HashMap::new();
            for (key, size) in operations {
                let key = key * spread - 150 * spread;
                let size = f64::from(size);
                if size == 0.0 {
                    proptest::prop_assert_eq!(table.remove(key), model.remove(&key));
                } else {
                    proptest::prop_assert_eq!(table.insert(key, size), model.insert(key, size));
                }
                proptest::prop_assert_eq!(table.len(), model.len());
                proptest::prop_assert_eq!(table.get(key), model.get(&key).copied());
            }
            for (key, size) in &model {
                proptest::prop_assert_eq!(table.get(*key), Some(*size));
            }
            let mut stored: Vec<(i64, f64)> = table.iter().collect();
            stored.sort_by_key(|(key, _)| *key);
            let mut expected: Vec<(i64, f64)> = model.into_iter().collect();
            expected.sort_by_key(|(key, _)| *key);
            proptest::prop_assert_eq!(stored, expected);
            table.clear();
            proptest::prop_assert!(table.is_empty());
            proptest::prop_assert_eq!(table.iter().count(), 0);
        }
    }
}

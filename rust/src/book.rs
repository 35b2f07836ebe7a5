//! The L2 order book of one instrument and the venue rules that keep it in sync.
//!
//! Prices are integer ticks on the instrument's [`PriceGrid`]; sizes are validated floats.
//! Sequencing is part of the book: with [`Sequencing::Binance`] diffs carry `U`/`u`/`pu` and
//! are bridged to a REST snapshot exactly as the venue's "manage a local order book" procedure
//! says; with [`Sequencing::Bybit`] snapshots reset the book and deltas must continue `u` by one.
//! An update that does not follow its predecessor is never applied: the book turns
//! [`BookStatus::NeedsResync`] and is not trusted until it gets a new snapshot.

mod far_levels;
mod ladder;

use std::collections::VecDeque;

use ladder::Ladder;
pub use ladder::LevelChange;

use crate::error::{CoreError, CoreResult};
use crate::price::PriceGrid;
use crate::side::Side;

/// A price level: ticks on the book's grid and size.
pub type Level = (i64, f64);

/// A side's best levels, borrowed from the book. The levels next to the touch are contiguous
/// (sizes and prices stored best last); a view deeper than the book keeps contiguous (see
/// [`OrderBook::keep_contiguous_levels`]) continues into the book's far tier.
#[derive(Debug, Clone)]
pub struct LevelsView<'a> {
    keys: &'a [i64],
    sizes: &'a [f64],
    beyond: Vec<Level>,
    negated: bool,
}

impl<'a> LevelsView<'a> {
    /// How many levels the view holds.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len() + self.beyond.len()
    }

    /// Whether the view is empty.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the whole view is contiguous (nothing past [`Self::near_sizes_best_last`]).
    #[inline]
    #[must_use]
    pub fn is_contiguous(&self) -> bool {
        self.beyond.is_empty()
    }

    /// Prices in ticks of the contiguous part of the view, best level last, as stored: negated
    /// for asks (see [`Self::ticks_negated`]).
    #[inline]
    #[must_use]
    pub fn near_keys_best_last(&self) -> &'a [i64] {
        self.keys
    }

    /// Whether [`Self::near_keys_best_last`] holds negated ticks (an ask side).
    #[inline]
    #[must_use]
    pub fn ticks_negated(&self) -> bool {
        self.negated
    }

    /// Sizes of the contiguous part of the view, best level last.
    #[inline]
    #[must_use]
    pub fn near_sizes_best_last(&self) -> &'a [f64] {
        self.sizes
    }

    /// Sizes of the levels past the contiguous part, best first (empty unless the view is deeper
    /// than the book keeps contiguous).
    #[inline]
    #[must_use]
    pub fn far_sizes_best_first(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.beyond.iter().map(|(_, size)| *size)
    }

    /// The level `rank` places from the best, as (ticks, size).
    ///
    /// # Panics
    /// When `rank` is not below [`Self::len`].
    #[inline]
    #[must_use]
    pub fn level(&self, rank: usize) -> Level {
        let (key, size) = if rank < self.keys.len() {
            let index = self.keys.len() - 1 - rank;
            (self.keys[index], self.sizes[index])
        } else {
            self.beyond[rank - self.keys.len()]
        };
        (if self.negated { -key } else { key }, size)
    }
}

/// Which venue's sequencing rules the book enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequencing {
    /// No sequence checks: every update is applied (simulations, hand-built books).
    Unsequenced,
    /// Binance USDⓈ-M: REST snapshot `lastUpdateId`, then diffs with `U`, `u`, `pu`.
    Binance,
    /// Bybit v5: `snapshot` messages reset the book, `delta`s continue `u` by one; `u == 1`
    /// means the venue restarted and also resets.
    Bybit,
}

/// Whether the book can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    /// No snapshot yet; Binance diffs are buffered for bridging.
    AwaitingSnapshot,
    /// In sync with the venue.
    Live,
    /// A gap was seen; the book is not trusted until a new snapshot.
    NeedsResync,
}

/// What happened to one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Applied to the book.
    Applied,
    /// Kept to be bridged to the next snapshot (Binance, before a snapshot or after a gap).
    Buffered,
    /// Older than the book; ignored.
    Stale,
    /// Does not follow its predecessor: not applied, and the book now needs a resync.
    Gap,
    /// Not applied because the book waits for a snapshot (Bybit after a gap).
    Dropped,
}

/// A Binance USDⓈ-M `depthUpdate`, levels already on the book's grid.
#[derive(Debug, Clone, Copy)]
pub struct BinanceDiff<'a> {
    /// `U`: first update id in the event.
    pub first_update_id: u64,
    /// `u`: final update id in the event.
    pub last_update_id: u64,
    /// `pu`: final update id of the previous event (USDⓈ-M futures always send it).
    pub prev_last_update_id: u64,
    /// `b`: absolute bid sizes, 0 removes.
    pub bids: &'a [Level],
    /// `a`: absolute ask sizes, 0 removes.
    pub asks: &'a [Level],
    /// `E`, the exchange event time in nanoseconds, if known.
    pub exchange_time_ns: Option<i64>,
    /// When we received it, in nanoseconds, if known.
    pub receive_time_ns: Option<i64>,
}

#[derive(Debug, Clone)]
struct BufferedDiff {
    first_update_id: u64,
    last_update_id: u64,
    prev_last_update_id: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
    exchange_time_ns: Option<i64>,
    receive_time_ns: Option<i64>,
}

impl BufferedDiff {
    fn borrow(&self) -> BinanceDiff<'_> {
        BinanceDiff {
            first_update_id: self.first_update_id,
            last_update_id: self.last_update_id,
            prev_last_update_id: self.prev_last_update_id,
            bids: &self.bids,
            asks: &self.asks,
            exchange_time_ns: self.exchange_time_ns,
            receive_time_ns: self.receive_time_ns,
        }
    }
}

/// At most this many Binance diffs wait for a snapshot; older ones are dropped first (the
/// snapshot bridging then tells whether they were needed).
pub const MAX_BUFFERED_DIFFS: usize = 10_000;

/// What a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOutcome {
    /// Buffered diffs applied on top of it.
    pub replayed: usize,
    /// Buffered diffs dropped as older than it.
    pub dropped: usize,
    /// The book's status afterwards.
    pub status: BookStatus,
}

/// The L2 book of one instrument.
#[derive(Debug, Clone)]
pub struct OrderBook {
    symbol: String,
    grid: PriceGrid,
    sequencing: Sequencing,
    bids: Ladder,
    asks: Ladder,
    status: BookStatus,
    /// Binance: snapshot id or `u` of the last applied diff. Bybit: `u` of the last message.
    last_update_id: Option<u64>,
    /// Binance: whether a diff has bridged the current snapshot.
    bridged: bool,
    buffer: VecDeque<BufferedDiff>,
    last_gap: Option<String>,
    update_count: u64,
    level_update_count: u64,
    exchange_time_ns: Option<i64>,
    receive_time_ns: Option<i64>,
}

impl OrderBook {
    /// An empty book. Unsequenced books are live at once; the others wait for a snapshot.
    #[must_use]
    pub fn new(symbol: impl Into<String>, grid: PriceGrid, sequencing: Sequencing) -> Self {
        Self {
            symbol: symbol.into(),
            grid,
            sequencing,
            bids: Ladder::default(),
            asks: Ladder::default(),
            status: if sequencing == Sequencing::Unsequenced {
                BookStatus::Live
            } else {
                BookStatus::AwaitingSnapshot
            },
            last_update_id: None,
            bridged: false,
            buffer: VecDeque::new(),
            last_gap: None,
            update_count: 0,
            level_update_count: 0,
            exchange_time_ns: None,
            receive_time_ns: None,
        }
    }

    // ---- identity and state -------------------------------------------------------------

    /// The instrument.
    #[must_use]
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The price grid.
    #[must_use]
    pub fn grid(&self) -> &PriceGrid {
        &self.grid
    }

    /// The sequencing rules in force.
    #[must_use]
    pub fn sequencing(&self) -> Sequencing {
        self.sequencing
    }

    /// Whether the book can be trusted.
    #[must_use]
    pub fn status(&self) -> BookStatus {
        self.status
    }

    /// Binance: the snapshot id or last applied `u`; Bybit: the last `u`.
    #[must_use]
    pub fn last_update_id(&self) -> Option<u64> {
        self.last_update_id
    }

    /// Why the book last needed a resync.
    #[must_use]
    pub fn last_gap(&self) -> Option<&str> {
        self.last_gap.as_deref()
    }

    /// Diffs waiting for a snapshot.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Messages (snapshots, diffs, single-level updates) applied.
    #[must_use]
    pub fn update_count(&self) -> u64 {
        self.update_count
    }

    /// Price levels set or removed.
    #[must_use]
    pub fn level_update_count(&self) -> u64 {
        self.level_update_count
    }

    /// Exchange time of the last applied message, in nanoseconds.
    #[must_use]
    pub fn exchange_time_ns(&self) -> Option<i64> {
        self.exchange_time_ns
    }

    /// Receive time of the last applied message, in nanoseconds.
    #[must_use]
    pub fn receive_time_ns(&self) -> Option<i64> {
        self.receive_time_ns
    }

    /// Marks the book untrusted (e.g. after a reconnect): it needs a new snapshot.
    pub fn invalidate(&mut self, reason: &str) {
        if self.sequencing != Sequencing::Unsequenced {
            self.status = BookStatus::NeedsResync;
            self.last_gap = Some(reason.to_owned());
            self.bridged = false;
        }
    }

    // ---- updates --------------------------------------------------------------------------

    #[inline]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    #[inline]
    fn key(side: Side, ticks: i64) -> i64 {
        match side {
            Side::Buy => ticks,
            Side::Sell => -ticks,
        }
    }

    /// Sets one level's absolute size (0 removes) without any sequence check. The size must
    /// already be validated (finite, not negative). Returns whether the book changed.
    #[inline]
    pub fn set_level(&mut self, side: Side, ticks: i64, size: f64) -> bool {
        self.update_count += 1;
        self.level_update_count += 1;
        let key = Self::key(side, ticks);
        self.ladder_mut(side).set(key, size)
    }

    /// [`Self::set_level`], saying what changed: readers that keep sums over a side's best
    /// levels (the feature engine's depth sums) update them from it instead of reading again.
    #[inline]
    pub fn change_level(&mut self, side: Side, ticks: i64, size: f64) -> LevelChange {
        self.update_count += 1;
        self.level_update_count += 1;
        let key = Self::key(side, ticks);
        self.ladder_mut(side).change(key, size)
    }

    fn apply_sides(&mut self, bids: &[Level], asks: &[Level]) {
        self.bids.apply_levels(bids, false);
        self.asks.apply_levels(asks, true);
        self.update_count += 1;
        self.level_update_count += (bids.len() + asks.len()) as u64;
    }

    fn stamp(&mut self, exchange_time_ns: Option<i64>, receive_time_ns: Option<i64>) {
        if exchange_time_ns.is_some() {
            self.exchange_time_ns = exchange_time_ns;
        }
        if receive_time_ns.is_some() {
            self.receive_time_ns = receive_time_ns;
        }
    }

    /// Applies levels with no sequence check (an unsequenced feed or a simulator).
    pub fn apply_levels(
        &mut self,
        bids: &[Level],
        asks: &[Level],
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) {
        self.apply_sides(bids, asks);
        self.stamp(exchange_time_ns, receive_time_ns);
    }

    /// Replaces the whole book with a snapshot. With Binance sequencing, `last_update_id` is the
    /// REST `lastUpdateId` and the buffered diffs are bridged onto it; with Bybit, it is `u`.
    pub fn apply_snapshot(
        &mut self,
        last_update_id: Option<u64>,
        bids: &[Level],
        asks: &[Level],
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> CoreResult<SnapshotOutcome> {
        if self.sequencing != Sequencing::Unsequenced && last_update_id.is_none() {
            return Err(CoreError::Malformed(format!(
                "{}: a snapshot for a {:?}-sequenced book needs its update id",
                self.symbol, self.sequencing
            )));
        }
        self.bids
            .replace(bids.iter().map(|&(ticks, size)| (ticks, size)));
        self.asks
            .replace(asks.iter().map(|&(ticks, size)| (-ticks, size)));
        self.update_count += 1;
        self.level_update_count += (bids.len() + asks.len()) as u64;
        self.stamp(exchange_time_ns, receive_time_ns);
        self.last_update_id = last_update_id;
        self.bridged = false;
        self.status = BookStatus::Live;
        let mut outcome = SnapshotOutcome {
            replayed: 0,
            dropped: 0,
            status: BookStatus::Live,
        };
        if self.sequencing == Sequencing::Binance {
            while let Some(diff) = self.buffer.pop_front() {
                match self.sequence_binance(&diff.borrow()) {
                    ApplyOutcome::Applied => outcome.replayed += 1,
                    ApplyOutcome::Stale => outcome.dropped += 1,
                    ApplyOutcome::Gap => {
                        // The snapshot is older than the buffered stream can bridge: keep the
                        // diffs from here on for the next snapshot.
                        self.buffer.push_front(diff);
                        break;
                    }
                    ApplyOutcome::Buffered | ApplyOutcome::Dropped => {
                        unreachable!("book is live here")
                    }
                }
            }
        }
        outcome.status = self.status;
        Ok(outcome)
    }

    /// Applies a Binance USDⓈ-M diff under the venue's rules.
    pub fn apply_binance_diff(&mut self, diff: &BinanceDiff<'_>) -> CoreResult<ApplyOutcome> {
        if self.sequencing != Sequencing::Binance {
            return Err(self.wrong_sequencing("a Binance diff"));
        }
        let outcome = self.sequence_binance(diff);
        if matches!(outcome, ApplyOutcome::Buffered | ApplyOutcome::Gap) {
            if self.buffer.len() == MAX_BUFFERED_DIFFS {
                self.buffer.pop_front();
            }
            self.buffer.push_back(BufferedDiff {
                first_update_id: diff.first_update_id,
                last_update_id: diff.last_update_id,
                prev_last_update_id: diff.prev_last_update_id,
                bids: diff.bids.to_vec(),
                asks: diff.asks.to_vec(),
                exchange_time_ns: diff.exchange_time_ns,
                receive_time_ns: diff.receive_time_ns,
            });
        }
        Ok(outcome)
    }

    fn sequence_binance(&mut self, diff: &BinanceDiff<'_>) -> ApplyOutcome {
        if self.status != BookStatus::Live {
            return ApplyOutcome::Buffered;
        }
        let last = self.last_update_id.unwrap_or(0);
        let follows = if self.bridged {
            diff.prev_last_update_id == last
        } else {
            if diff.last_update_id < last {
                return ApplyOutcome::Stale;
            }
            // The venue's rule, `U <= lastUpdateId <= u`, or the diff that starts right after
            // the snapshot (its `pu` is the snapshot's id): nothing can be missing in between.
            diff.first_update_id <= last || diff.prev_last_update_id == last
        };
        if !follows {
            let detail = if self.bridged {
                format!(
                    "update U={} u={} has pu={} but the previous update ended at u={last}",
                    diff.first_update_id, diff.last_update_id, diff.prev_last_update_id
                )
            } else {
                format!(
                    "first update after snapshot lastUpdateId={last} starts at U={} with pu={} (must be <= {last} <= u={}, or pu={last})",
                    diff.first_update_id, diff.prev_last_update_id, diff.last_update_id
                )
            };
            self.status = BookStatus::NeedsResync;
            self.bridged = false;
            self.last_gap = Some(detail);
            return ApplyOutcome::Gap;
        }
        self.apply_sides(diff.bids, diff.asks);
        self.stamp(diff.exchange_time_ns, diff.receive_time_ns);
        self.last_update_id = Some(diff.last_update_id);
        self.bridged = true;
        ApplyOutcome::Applied
    }

    /// Applies a Bybit v5 `orderbook` message: a snapshot (or `u == 1`) replaces the book; a
    /// delta must carry the next `u`.
    pub fn apply_bybit(
        &mut self,
        is_snapshot: bool,
        update_id: u64,
        bids: &[Level],
        asks: &[Level],
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> CoreResult<ApplyOutcome> {
        if self.sequencing != Sequencing::Bybit {
            return Err(self.wrong_sequencing("a Bybit message"));
        }
        if is_snapshot || update_id == 1 {
            self.apply_snapshot(
                Some(update_id),
                bids,
                asks,
                exchange_time_ns,
                receive_time_ns,
            )?;
            return Ok(ApplyOutcome::Applied);
        }
        if self.status != BookStatus::Live {
            return Ok(ApplyOutcome::Dropped);
        }
        let last = self.last_update_id.unwrap_or(0);
        if update_id <= last {
            return Ok(ApplyOutcome::Stale);
        }
        if update_id != last + 1 {
            self.status = BookStatus::NeedsResync;
            self.last_gap = Some(format!("delta u={update_id} does not follow u={last}"));
            return Ok(ApplyOutcome::Gap);
        }
        self.apply_sides(bids, asks);
        self.stamp(exchange_time_ns, receive_time_ns);
        self.last_update_id = Some(update_id);
        Ok(ApplyOutcome::Applied)
    }

    fn wrong_sequencing(&self, what: &str) -> CoreError {
        CoreError::Malformed(format!(
            "{}: {what} was given to a book with {:?} sequencing",
            self.symbol, self.sequencing
        ))
    }

    // ---- reads ----------------------------------------------------------------------------

    /// Best bid (ticks, size).
    #[inline]
    #[must_use]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    /// Best ask (ticks, size).
    #[inline]
    #[must_use]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best().map(|(key, size)| (-key, size))
    }

    /// Best bid price.
    #[inline]
    #[must_use]
    pub fn best_bid_price(&self) -> Option<f64> {
        self.best_bid().map(|(ticks, _)| self.grid.price(ticks))
    }

    /// Best ask price.
    #[inline]
    #[must_use]
    pub fn best_ask_price(&self) -> Option<f64> {
        self.best_ask().map(|(ticks, _)| self.grid.price(ticks))
    }

    /// Mid price, when both sides have levels.
    #[must_use]
    pub fn mid(&self) -> Option<f64> {
        let (bid, _) = self.best_bid()?;
        let (ask, _) = self.best_ask()?;
        Some(self.grid.price(bid + ask) / 2.0)
    }

    /// Spread in ticks, when both sides have levels (negative when crossed).
    #[must_use]
    pub fn spread_ticks(&self) -> Option<i64> {
        Some(self.best_ask()?.0 - self.best_bid()?.0)
    }

    /// Spread as a price difference.
    #[must_use]
    pub fn spread(&self) -> Option<f64> {
        self.spread_ticks().map(|ticks| self.grid.price(ticks))
    }

    /// Microprice: the touch prices weighted by the opposite side's size,
    /// `(bid × ask_size + ask × bid_size) / (bid_size + ask_size)`.
    #[must_use]
    pub fn microprice(&self) -> Option<f64> {
        let (bid, bid_size) = self.best_bid()?;
        let (ask, ask_size) = self.best_ask()?;
        let (bid, ask) = (self.grid.price(bid), self.grid.price(ask));
        Some((bid * ask_size + ask * bid_size) / (bid_size + ask_size))
    }

    /// Whether the best bid is at or above the best ask.
    #[must_use]
    pub fn is_crossed(&self) -> bool {
        matches!(self.spread_ticks(), Some(spread) if spread <= 0)
    }

    /// Number of levels on a side.
    #[must_use]
    pub fn level_count(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }

    /// Size resting at a price.
    #[must_use]
    pub fn size_at(&self, side: Side, ticks: i64) -> f64 {
        match side {
            Side::Buy => self.bids.size_at(ticks),
            Side::Sell => self.asks.size_at(-ticks),
        }
    }

    /// A side's best `depth` levels as a view (for feature computation without copies).
    #[inline]
    #[must_use]
    pub fn top_levels(&self, side: Side, depth: usize) -> LevelsView<'_> {
        let (keys, sizes, beyond) = match side {
            Side::Buy => self.bids.top(depth),
            Side::Sell => self.asks.top(depth),
        };
        LevelsView {
            keys,
            sizes,
            beyond,
            negated: side == Side::Sell,
        }
    }

    /// A stamp of the side's best `depth` levels: two equal stamps taken from the same book (or
    /// from any books: every book, and every clone, stamps differently) mean those levels did
    /// not change in between. None when `depth` is deeper than the book keeps contiguous (then
    /// changes are not tracked; see [`Self::keep_contiguous_levels`]).
    #[inline]
    #[must_use]
    pub fn top_stamp(&self, side: Side, depth: usize) -> Option<(u64, u64)> {
        match side {
            Side::Buy => self.bids.top_stamp(depth),
            Side::Sell => self.asks.top_stamp(depth),
        }
    }

    /// Keeps at least `depth` levels a side contiguous next to the touch (64 by default), so
    /// that [`Self::top_levels`] up to that depth is a plain slice. Readers that watch deeper
    /// levels (a feature engine with `depths = [5, 200]`) ask for it once.
    pub fn keep_contiguous_levels(&mut self, depth: usize) {
        self.bids.keep_contiguous(depth);
        self.asks.keep_contiguous(depth);
    }

    /// The level `rank` places from the best (0 = the touch), as (ticks, size).
    #[inline]
    #[must_use]
    pub fn level_at_rank(&self, side: Side, rank: usize) -> Option<Level> {
        match side {
            Side::Buy => self.bids.at_rank(rank),
            Side::Sell => self.asks.at_rank(rank).map(|(key, size)| (-key, size)),
        }
    }

    /// Sizes of a side's best `depth` levels, best first.
    #[inline]
    pub fn top_level_sizes(&self, side: Side, depth: usize) -> impl Iterator<Item = f64> + '_ {
        match side {
            Side::Buy => self.bids.top_sizes_iter(depth),
            Side::Sell => self.asks.top_sizes_iter(depth),
        }
    }

    /// Summed size of the best `depth` levels of a side.
    #[inline]
    #[must_use]
    pub fn top_size(&self, side: Side, depth: usize) -> f64 {
        match side {
            Side::Buy => self.bids.top_size(depth),
            Side::Sell => self.asks.top_size(depth),
        }
    }

    /// Summed sizes of the best `depths[i]` levels of a side, in one pass (`depths` ascending).
    #[inline]
    pub fn top_sizes(&self, side: Side, depths: &[usize], out: &mut [f64]) {
        match side {
            Side::Buy => self.bids.top_sizes(depths, out),
            Side::Sell => self.asks.top_sizes(depths, out),
        }
    }

    /// Summed size of a side's levels within `bps` basis points of the mid (inclusive); 0 when
    /// either side is empty.
    #[must_use]
    pub fn size_within_bps(&self, side: Side, bps: f64) -> f64 {
        let Some(mid) = self.mid() else { return 0.0 };
        match side {
            Side::Buy => {
                let floor = self.grid.ticks_at_or_above(mid * (1.0 - bps / 10_000.0));
                self.bids.size_down_to(floor)
            }
            Side::Sell => {
                let ceiling = self.grid.ticks_at_or_below(mid * (1.0 + bps / 10_000.0));
                self.asks.size_down_to(-ceiling)
            }
        }
    }

    /// A side's levels from the best outward, as (ticks, size).
    #[must_use]
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter_from_best()),
            Side::Sell => Box::new(self.asks.iter_from_best().map(|(key, size)| (-key, size))),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_well_formed(&self) -> bool {
        self.bids.is_well_formed() && self.asks.is_well_formed()
    }
}

#[cfg(test)]
mod tests;

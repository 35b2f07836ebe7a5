//! Batch paths for replay and research: a whole stream of level updates applied in one call,
//! with the book's watched values read after every update.

use crate::book::OrderBook;
use crate::error::CoreResult;
use crate::price::check_size;
use crate::side::Side;

/// The values read after each update: best bid and ask prices (NaN for an empty side) and, for
/// each watched depth, the summed bid and ask size of that many best levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    depths: Vec<usize>,
}

impl Watch {
    /// Watches the given depths, read in ascending order (duplicates removed).
    #[must_use]
    pub fn new(depths: &[usize]) -> Self {
        let mut depths = depths.to_vec();
        depths.sort_unstable();
        depths.dedup();
        Self { depths }
    }

    /// The watched depths, ascending.
    #[must_use]
    pub fn depths(&self) -> &[usize] {
        &self.depths
    }

    /// Values per read: 2 + 2 × depths.
    #[must_use]
    pub fn width(&self) -> usize {
        2 + 2 * self.depths.len()
    }

    /// Rewrites only `side`'s values in `out` (an update on one side leaves the other's as
    /// they were, so they need not be summed again).
    #[inline]
    pub fn read_side(&self, book: &OrderBook, side: Side, out: &mut [f64]) {
        let count = self.depths.len();
        let (best, offset) = match side {
            Side::Buy => (book.best_bid_price(), 0),
            Side::Sell => (book.best_ask_price(), 1),
        };
        out[offset] = best.unwrap_or(f64::NAN);
        let mut sizes = [0.0_f64; 8];
        if count <= 8 {
            book.top_sizes(side, &self.depths, &mut sizes[..count]);
            for (i, size) in sizes[..count].iter().enumerate() {
                out[2 + offset + 2 * i] = *size;
            }
        } else {
            for (i, depth) in self.depths.iter().enumerate() {
                out[2 + offset + 2 * i] = book.top_size(side, *depth);
            }
        }
    }

    /// Writes `[best_bid, best_ask, bid_top[d0], ask_top[d0], bid_top[d1], ...]` into `out`.
    #[inline]
    pub fn read(&self, book: &OrderBook, out: &mut [f64]) {
        out[0] = book.best_bid_price().unwrap_or(f64::NAN);
        out[1] = book.best_ask_price().unwrap_or(f64::NAN);
        let count = self.depths.len();
        let mut bid_sizes = [0.0_f64; 8];
        let mut ask_sizes = [0.0_f64; 8];
        if count <= 8 {
            book.top_sizes(Side::Buy, &self.depths, &mut bid_sizes[..count]);
            book.top_sizes(Side::Sell, &self.depths, &mut ask_sizes[..count]);
            for i in 0..count {
                out[2 + 2 * i] = bid_sizes[i];
                out[3 + 2 * i] = ask_sizes[i];
            }
        } else {
            for (i, depth) in self.depths.iter().enumerate() {
                out[2 + 2 * i] = book.top_size(Side::Buy, *depth);
                out[3 + 2 * i] = book.top_size(Side::Sell, *depth);
            }
        }
    }
}

/// Where a batch entry's price comes from.
#[derive(Debug, Clone, Copy)]
pub enum BatchPrices<'a> {
    /// Float prices, checked against the grid.
    Prices(&'a [f64]),
    /// Prices already in ticks.
    Ticks(&'a [i64]),
}

/// Applies `sides[i]` (true for bids), price and size `i` for every `i`, with no sequence
/// check, and reads `watch` after each into row `i` of `out` (`len × watch.width()`). The
/// whole batch is validated first: if any entry is invalid nothing is applied.
///
/// # Panics
/// When the arrays do not all have one entry per update (`out`: `width` per update).
pub fn apply_levels(
    book: &mut OrderBook,
    is_bid: &[bool],
    prices: BatchPrices<'_>,
    sizes: &[f64],
    watch: &Watch,
    out: &mut [f64],
) -> CoreResult<()> {
    let count = is_bid.len();
    let width = watch.width();
    let field = |index: usize| move || format!("updates[{index}]");
    // Ticks given are used as they are; float prices are converted once, up front.
    let converted: Vec<i64>;
    let ticks: &[i64] = match prices {
        BatchPrices::Prices(prices) => {
            let mut ticks = Vec::with_capacity(count);
            for (index, price) in prices.iter().enumerate() {
                ticks.push(book.grid().ticks_of_f64(*price, &field(index))?);
            }
            converted = ticks;
            &converted
        }
        BatchPrices::Ticks(given) => {
            if let Some(index) = given.iter().position(|tick| *tick <= 0) {
                return Err(crate::CoreError::InvalidPrice {
                    value: format!("{} ticks", given[index]),
                    field: field(index)(),
                });
            }
            given
        }
    };
    for (index, size) in sizes.iter().enumerate() {
        check_size(*size, &field(index))?;
    }
    assert!(
        ticks.len() == count && sizes.len() == count && out.len() == count * width,
        "batch arrays must have one entry per update"
    );
    let mut previous = vec![0.0; width];
    watch.read(book, &mut previous);
    for (index, row) in out.chunks_exact_mut(width).enumerate() {
        let side = if is_bid[index] { Side::Buy } else { Side::Sell };
        book.set_level(side, ticks[index], sizes[index] + 0.0);
        row.copy_from_slice(&previous);
        watch.read_side(book, side, row);
        previous.copy_from_slice(row);
    }
    Ok(())
}

/// Public trades to merge into a batch by time.
#[derive(Debug, Clone, Copy)]
pub struct BatchTrades<'a> {
    /// Exchange times, nanoseconds, not decreasing.
    pub times_ns: &'a [i64],
    /// Prices.
    pub prices: &'a [f64],
    /// Sizes.
    pub sizes: &'a [f64],
    /// Whether the aggressor bought.
    pub aggressor_bought: &'a [bool],
}

/// Names of the feature columns [`run_features`] writes, in order; `imbalance_<depth>` columns
/// follow `spread_bps`. `time_ns` is written as a float (callers wanting exact nanoseconds take
/// them from their input).
#[must_use]
pub fn feature_column_names(depths: &[usize]) -> Vec<String> {
    let mut names: Vec<String> = [
        "time_ns",
        "ready",
        "mid",
        "microprice",
        "weighted_mid",
        "spread_bps",
    ]
    .iter()
    .map(|name| (*name).to_owned())
    .collect();
    names.extend(depths.iter().map(|depth| format!("imbalance_{depth}")));
    names.extend(
        [
            "ofi",
            "deep_ofi",
            "ofi_normalized",
            "deep_ofi_normalized",
            "voi",
            "voi_normalized",
            "trade_imbalance",
            "trade_count",
            "vwap",
            "basis_bps",
            "volatility",
            "volatility_ewma",
            "prediction_bps",
            "hit_rate",
            "skew",
        ]
        .iter()
        .map(|name| (*name).to_owned()),
    );
    names
}

/// Rows of features buffered before they are copied into their columns.
const FEATURE_BLOCK_ROWS: usize = 256;

/// Values in a buffered row: the head, one slot per possible imbalance depth, the tail.
const ROW_SLOTS: usize = 6 + crate::features::MAX_DEPTHS + 15;

/// One row with the imbalances at fixed slots (a fixed-size row is written without bounds
/// checks; the unused imbalance slots are skipped when the block is copied out).
#[inline]
fn feature_row(features: &crate::features::Features) -> [f64; ROW_SLOTS] {
    let imbalances = features.imbalances;
    [
        features.time_ns as f64,
        f64::from(u8::from(features.ready)),
        features.mid,
        features.microprice,
        features.weighted_mid,
        features.spread_bps,
        imbalances[0],
        imbalances[1],
        imbalances[2],
        imbalances[3],
        features.ofi,
        features.deep_ofi,
        features.ofi_normalized,
        features.deep_ofi_normalized,
        features.voi,
        features.voi_normalized,
        features.trade_imbalance,
        features.trade_count as f64,
        features.vwap,
        features.basis_bps,
        features.volatility,
        features.volatility_ewma,
        features.prediction_bps,
        features.hit_rate,
        features.skew,
    ]
}

/// Replays level updates (no sequence check) and trades through `book`, `tape` and `engine`,
/// updating the features after every update that ends a message (`message_ends[i]`, or every
/// update when `None`). Trades with a time at or before the message's time reach the tape
/// first. Writes one row of [`feature_column_names`] per message into `out`, one vector per
/// column (`out[c][r]`), and returns the number of rows. Everything is validated before
/// anything is applied.
///
/// # Panics
/// When the update arrays differ in length, or `out` is shorter than rows × columns.
#[allow(clippy::too_many_arguments)]
pub fn run_features(
    book: &mut OrderBook,
    tape: &mut crate::trades::TradeTape,
    engine: &mut crate::features::FeatureEngine,
    times_ns: &[i64],
    is_bid: &[bool],
    prices: BatchPrices<'_>,
    sizes: &[f64],
    message_ends: Option<&[bool]>,
    trades: Option<BatchTrades<'_>>,
    out: &mut Vec<Vec<f64>>,
) -> CoreResult<usize> {
    let count = is_bid.len();
    book.keep_contiguous_levels(engine.levels_read());
    let field = |index: usize| move || format!("updates[{index}]");
    let mut ticks = Vec::with_capacity(count);
    match prices {
        BatchPrices::Prices(prices) => {
            for (index, price) in prices.iter().enumerate() {
                ticks.push(book.grid().ticks_of_f64(*price, &field(index))?);
            }
        }
        BatchPrices::Ticks(given) => ticks.extend_from_slice(given),
    }
    for (index, size) in sizes.iter().enumerate() {
        check_size(*size, &field(index))?;
    }
    if let Some(trades) = trades {
        for index in 0..trades.times_ns.len() {
            let (price, size) = (trades.prices[index], trades.sizes[index]);
            if !(price.is_finite() && price > 0.0 && size.is_finite() && size > 0.0) {
                return Err(crate::CoreError::InvalidSize {
                    value: format!("price {price}, size {size}"),
                    field: format!("trades[{index}]"),
                });
            }
        }
    }
    assert!(
        times_ns.len() == count
            && ticks.len() == count
            && sizes.len() == count
            && message_ends.is_none_or(|ends| ends.len() == count),
        "batch arrays must have one entry per update"
    );
    let depth_count = engine.config().depths.len();
    let width = feature_column_names(&engine.config().depths).len();
    let rows = message_ends.map_or(count, |ends| ends.iter().filter(|end| **end).count());
    out.clear();
    out.extend((0..width).map(|_| Vec::with_capacity(rows)));
    // Rows go to a small column-major block (a few rows of each column, together 50 kB) whose
    // columns are appended to the output's when full: writing each row straight into 20-odd
    // columns megabytes apart thrashes the cache and the TLB, and a row-major block would have
    // to be gathered value by value. The columns are only appended to (never zero-filled first).
    let mut block = vec![[0.0; FEATURE_BLOCK_ROWS]; ROW_SLOTS];
    let mut in_block = 0;
    // Column c's slot in a row: past the used imbalances, skip the unused ones.
    let slot = |column: usize| {
        if column < 6 + depth_count {
            column
        } else {
            column + crate::features::MAX_DEPTHS - depth_count
        }
    };
    let flush = |block: &[[f64; FEATURE_BLOCK_ROWS]], rows: usize, out: &mut [Vec<f64>]| {
        for (column, target) in out.iter_mut().enumerate() {
            let slot = slot(column).min(ROW_SLOTS - 1);
            target.extend_from_slice(&block[slot][..rows]);
        }
    };
    let mut next_trade = 0;
    // The engine is told every change, so it keeps its reads without the book's stamps.
    let replay = engine.begin_replay(book);
    for index in 0..count {
        let side = if is_bid[index] { Side::Buy } else { Side::Sell };
        let change = book.change_level(side, ticks[index], sizes[index] + 0.0);
        if replay {
            engine.note_level_change(book, side, change);
        }
        if message_ends.is_some_and(|ends| !ends[index]) {
            continue;
        }
        let now = times_ns[index];
        if let Some(trades) = trades {
            while next_trade < trades.times_ns.len() && trades.times_ns[next_trade] <= now {
                tape.push(crate::trades::Trade {
                    price: trades.prices[next_trade],
                    size: trades.sizes[next_trade],
                    aggressor: if trades.aggressor_bought[next_trade] {
                        Side::Buy
                    } else {
                        Side::Sell
                    },
                    exchange_time_ns: trades.times_ns[next_trade],
                    trade_id: None,
                });
                next_trade += 1;
            }
        }
        if replay {
            engine.update_replayed(book, Some(tape), now);
        } else {
            engine.update(book, Some(tape), now);
        }
        let row = in_block % FEATURE_BLOCK_ROWS;
        for (column, value) in block.iter_mut().zip(feature_row(engine.features())) {
            column[row] = value;
        }
        in_block = row + 1;
        if in_block == FEATURE_BLOCK_ROWS {
            flush(&block, FEATURE_BLOCK_ROWS, out);
            in_block = 0;
        }
    }
    flush(&block, in_block, out);
    if replay {
        engine.end_replay(book);
    }
    Ok(rows)
}

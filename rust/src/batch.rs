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

/// Pushes `trades` from index `next` on to `tape` while their time is at or before `now`;
/// returns the index of the first trade not pushed.
fn push_trades(
    tape: &mut crate::trades::TradeTape,
    trades: BatchTrades<'_>,
    mut next: usize,
    now: i64,
) -> usize {
    while next < trades.times_ns.len() && trades.times_ns[next] <= now {
        tape.push(crate::trades::Trade {
            price: trades.prices[next],
            size: trades.sizes[next],
            aggressor: if trades.aggressor_bought[next] {
                Side::Buy
            } else {
                Side::Sell
            },
            exchange_time_ns: trades.times_ns[next],
            trade_id: None,
        });
        next += 1;
    }
    next
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
            next_trade = push_trades(tape, trades, next_trade, now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Sequencing;
    use crate::features::{FeatureConfig, FeatureEngine, Horizon};
    use crate::price::PriceGrid;
    use crate::trades::{Trade, TradeTape};

    fn book() -> OrderBook {
        let mut book = OrderBook::new(
            "TEST",
            PriceGrid::from_text("0.1").expect("a valid tick"),
            Sequencing::Unsequenced,
        );
        for i in 0..150 {
            book.set_level(Side::Buy, 10_000 - i, 0.001 * (1 + (i * 37) % 5000) as f64);
            book.set_level(Side::Sell, 10_001 + i, 0.001 * (1 + (i * 53) % 5000) as f64);
        }
        book
    }

    /// One row of [`feature_row`]'s columns from the engine's features, as `run_features`
    /// writes them.
    fn row(engine: &FeatureEngine) -> Vec<f64> {
        let depth_count = engine.config().depths.len();
        let full = feature_row(engine.features());
        let mut row = full[..6 + depth_count].to_vec();
        row.extend_from_slice(&full[6 + crate::features::MAX_DEPTHS..]);
        row
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The replay (the engine told every change, its reads kept by them) writes the rows
        /// the per-tick path computes from the book after each message, bit for bit, and leaves
        /// the engine where the per-tick path leaves it: the two go on agreeing afterwards.
        #[test]
        fn replay_rows_match_the_per_tick_path(
            updates in proptest::collection::vec((proptest::bool::ANY, 0u64..1_000, 0u64..8, 0u64..4), 1..600),
            config_index in 0usize..4,
            seed in 0u64..1_000,
        ) {
            let config = match config_index {
                0 => FeatureConfig { depths: vec![5, 50], tick_window: 20, ..FeatureConfig::default() },
                1 => FeatureConfig { depths: vec![1, 3, 20], tick_window: 7, ofi_levels: 10, ..FeatureConfig::default() },
                2 => FeatureConfig { depths: vec![2, 80], tick_window: 30, level_decay: 0.1, ofi_levels: 3, ..FeatureConfig::default() },
                _ => FeatureConfig { depths: vec![4], tick_window: 5, horizon: Horizon::Millis(2.5), ..FeatureConfig::default() },
            };
            let mut replay_book = book();
            let mut replay_tape = TradeTape::new(64);
            let mut replay = FeatureEngine::new(config.clone()).unwrap();
            let mut tick_book = replay_book.clone();
            let mut tick_tape = TradeTape::new(64);
            let mut per_tick = FeatureEngine::new(config).unwrap();
            // A few ticks before the replay: the replay starts from reads kept by stamps.
            for time_ns in 0..3 {
                replay.update(&replay_book, Some(&replay_tape), time_ns);
                per_tick.update(&tick_book, Some(&tick_tape), time_ns);
            }
            let (mut is_bid, mut ticks, mut sizes, mut ends, mut times) = (vec![], vec![], vec![], vec![], vec![]);
            let mut state = seed;
            // The touch as the stream moves it, so that updates land near it.
            let mut tracking = tick_book.clone();
            let (mut bid, mut ask) = (10_000_i64, 10_001_i64);
            for (index, (buy, distance, size, messages)) in updates.iter().enumerate() {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                // Mostly near the touch, sometimes deep; a tenth of the sizes remove the level.
                let distance = if distance % 5 == 0 { 1 + distance % 200 } else { 1 + distance % 12 } as i64;
                let tick = if *buy { (bid + 2 - distance).min(ask - 1) } else { (ask - 2 + distance).max(bid + 1) };
                let size = if *size == 0 { 0.0 } else { 0.001 * (1 + (state >> 33) % 5000) as f64 };
                is_bid.push(*buy);
                ticks.push(tick);
                sizes.push(size);
                ends.push(*messages != 0 || index + 1 == updates.len());
                times.push(10 + index as i64 * 400_000);
                tracking.set_level(if *buy { Side::Buy } else { Side::Sell }, tick, size);
                if let (Some(b), Some(a)) = (tracking.best_bid(), tracking.best_ask()) {
                    (bid, ask) = (b.0, a.0);
                }
            }
            let trade_times: Vec<i64> = (0..updates.len() as i64 / 3).map(|i| 5 + i * 1_200_000).collect();
            let trade_prices: Vec<f64> = trade_times.iter().map(|t| 1000.0 + (t % 7) as f64 / 10.0).collect();
            let trade_sizes: Vec<f64> = trade_times.iter().map(|t| 0.5 + (t % 5) as f64).collect();
            let trade_buys: Vec<bool> = trade_times.iter().map(|t| t % 3 == 0).collect();
            let mut out = Vec::new();
            let rows = run_features(
                &mut replay_book,
                &mut replay_tape,
                &mut replay,
                &times,
                &is_bid,
                BatchPrices::Ticks(&ticks),
                &sizes,
                Some(&ends),
                Some(BatchTrades {
                    times_ns: &trade_times,
                    prices: &trade_prices,
                    sizes: &trade_sizes,
                    aggressor_bought: &trade_buys,
                }),
                &mut out,
            )
            .unwrap();
            let mut row_index = 0;
            let mut next_trade = 0;
            for index in 0..is_bid.len() {
                let side = if is_bid[index] { Side::Buy } else { Side::Sell };
                tick_book.set_level(side, ticks[index], sizes[index]);
                if !ends[index] {
                    continue;
                }
                while next_trade < trade_times.len() && trade_times[next_trade] <= times[index] {
                    tick_tape.push(Trade {
                        price: trade_prices[next_trade],
                        size: trade_sizes[next_trade],
                        aggressor: if trade_buys[next_trade] { Side::Buy } else { Side::Sell },
                        exchange_time_ns: trade_times[next_trade],
                        trade_id: None,
                    });
                    next_trade += 1;
                }
                per_tick.update(&tick_book, Some(&tick_tape), times[index]);
                let expected = row(&per_tick);
                for (column, value) in expected.iter().enumerate() {
                    proptest::prop_assert_eq!(
                        out[column][row_index].to_bits(),
                        value.to_bits(),
                        "row {}, column {}: {} vs {}", row_index, column, out[column][row_index], value
                    );
                }
                row_index += 1;
            }
            proptest::prop_assert_eq!(rows, row_index);
            proptest::prop_assert_eq!(replay.features(), per_tick.features());
            // After the replay both engines read the book by its stamps again.
            for step in 0..40_i64 {
                let side = if step % 2 == 0 { Side::Buy } else { Side::Sell };
                let (b, a) = (tick_book.best_bid().unwrap().0, tick_book.best_ask().unwrap().0);
                let tick = if side == Side::Buy { b - step % 7 } else { a + step % 7 };
                let size = if step % 5 == 0 { 0.0 } else { 0.25 * step as f64 };
                replay_book.set_level(side, tick, size);
                tick_book.set_level(side, tick, size);
                let time_ns = 1_000_000_000 + step * 1_000_000;
                replay.update(&replay_book, Some(&replay_tape), time_ns);
                per_tick.update(&tick_book.clone(), Some(&tick_tape), time_ns);
                proptest::prop_assert_eq!(replay.features(), per_tick.features(), "step {}", step);
            }
        }
    }
}

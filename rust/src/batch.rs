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
    let mut ticks = Vec::with_capacity(count);
    match prices {
        BatchPrices::Prices(prices) => {
            for (index, price) in prices.iter().enumerate() {
                ticks.push(book.grid().ticks_of_f64(*price, &field(index))?);
            }
        }
        BatchPrices::Ticks(given) => {
            for (index, tick) in given.iter().enumerate() {
                if *tick <= 0 {
                    return Err(crate::CoreError::InvalidPrice {
                        value: format!("{tick} ticks"),
                        field: field(index)(),
                    });
                }
            }
            ticks.extend_from_slice(given);
        }
    }
    for (index, size) in sizes.iter().enumerate() {
        check_size(*size, &field(index))?;
    }
    assert!(
        ticks.len() == count && sizes.len() == count && out.len() == count * width,
        "batch arrays must have one entry per update"
    );
    for (index, row) in out.chunks_exact_mut(width).enumerate() {
        let side = if is_bid[index] { Side::Buy } else { Side::Sell };
        book.set_level(side, ticks[index], sizes[index] + 0.0);
        watch.read(book, row);
    }
    Ok(())
}

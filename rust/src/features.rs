//! The feature engine: the market signals the quote generator uses, updated from a symbol's
//! book and trade tape on every tick.
//!
//! Definitions and sources are in `docs/features.md` (and `shared/reference/models.md`). Every
//! window is the last `tick_window` ticks (engine updates). Work per tick is proportional to the
//! levels read (the watched depths) plus the new trades; after construction nothing allocates.
//! No feature is ever NaN or infinite: undefined values take documented neutral values.

// The per-tick path is tuned by instruction counts (callgrind): left to its heuristics, LLVM
// splits it into calls that cost more than their bodies; `#[inline(always)]` keeps it whole.
#![allow(clippy::inline_always)]

use crate::book::{LevelChange, OrderBook};
use crate::error::{CoreError, CoreResult};
use crate::price::PriceGrid;
use crate::side::Side;
use crate::trades::TradeTape;

/// At most this many imbalance depths.
pub const MAX_DEPTHS: usize = 4;
/// At most this many levels in the multi-level order-flow imbalance.
pub const MAX_OFI_LEVELS: usize = 10;
/// Regressors of the mid-change model: intercept, one imbalance per depth, and seven more.
pub const MAX_REGRESSORS: usize = 1 + MAX_DEPTHS + 7;

/// How much each signal contributes to the skew (the origin project's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewWeights {
    /// Imbalance at the first depth.
    pub imbalance: f64,
    /// Imbalance at the last (deepest) depth.
    pub deep_imbalance: f64,
    /// Trade-flow imbalance.
    pub trade_imbalance: f64,
    /// Volume order imbalance, normalised by depth and squashed by `tanh`.
    pub voi: f64,
    /// Multi-level order-flow imbalance, normalised by depth and squashed by `tanh`.
    pub deep_ofi: f64,
    /// The mid-change prediction over `prediction_scale_bps`, squashed by `tanh`.
    pub prediction: f64,
}

impl Default for SkewWeights {
    fn default() -> Self {
        Self {
            imbalance: 0.25,
            deep_imbalance: 0.10,
            trade_imbalance: 0.30,
            voi: 0.10,
            deep_ofi: 0.10,
            prediction: 0.15,
        }
    }
}

/// The prediction horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Horizon {
    /// This many ticks ahead.
    Updates(usize),
    /// The first tick at least this many milliseconds ahead.
    Millis(f64),
}

/// Parameters of a [`FeatureEngine`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// Depths (levels per side) of the order-book imbalances, ascending, 1 to 4 of them.
    pub depths: Vec<usize>,
    /// Level weights `exp(-level_decay × i)` in the imbalances; 0 weighs levels equally.
    pub level_decay: f64,
    /// Ticks in every rolling window; the engine is ready once it has seen this many.
    pub tick_window: usize,
    /// Levels per side in the multi-level order-flow imbalance.
    pub ofi_levels: usize,
    /// Half-life of the EWMA volatility, in seconds.
    pub volatility_half_life_s: f64,
    /// How far ahead the mid change is predicted.
    pub horizon: Horizon,
    /// Forgetting factor of the exponentially weighted ridge regression, in (0, 1].
    pub forgetting: f64,
    /// The prediction (in bps) that counts as a full-strength signal in the skew.
    pub prediction_scale_bps: f64,
    /// Skew weights.
    pub weights: SkewWeights,
    /// Signals smaller than this in absolute value do not move the skew.
    pub dead_band: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            depths: vec![5, 50],
            level_decay: 0.0,
            tick_window: 100,
            ofi_levels: 5,
            volatility_half_life_s: 30.0,
            horizon: Horizon::Updates(10),
            forgetting: 0.999,
            prediction_scale_bps: 1.0,
            weights: SkewWeights::default(),
            dead_band: 0.2,
        }
    }
}

fn invalid(message: String) -> CoreError {
    CoreError::InvalidParameter(message)
}

impl FeatureConfig {
    /// Checks every parameter's range.
    pub fn validate(&self) -> CoreResult<()> {
        if self.depths.is_empty() || self.depths.len() > MAX_DEPTHS {
            return Err(invalid(format!(
                "depths must list 1 to {MAX_DEPTHS} depths, got {:?}",
                self.depths
            )));
        }
        if self.depths.contains(&0) || self.depths.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(invalid(format!(
                "depths must be positive and strictly ascending, got {:?}",
                self.depths
            )));
        }
        if !(self.level_decay.is_finite() && self.level_decay >= 0.0) {
            return Err(invalid(format!(
                "level_decay must be finite and >= 0, got {}",
                self.level_decay
            )));
        }
        if self.tick_window < 2 {
            return Err(invalid(format!(
                "tick_window must be at least 2, got {}",
                self.tick_window
            )));
        }
        if self.ofi_levels == 0 || self.ofi_levels > MAX_OFI_LEVELS {
            return Err(invalid(format!(
                "ofi_levels must be 1 to {MAX_OFI_LEVELS}, got {}",
                self.ofi_levels
            )));
        }
        if !(self.volatility_half_life_s.is_finite() && self.volatility_half_life_s > 0.0) {
            return Err(invalid(format!(
                "volatility_half_life_s must be positive, got {}",
                self.volatility_half_life_s
            )));
        }
        match self.horizon {
            Horizon::Updates(0) => {
                return Err(invalid("horizon_updates must be at least 1".to_owned()))
            }
            Horizon::Millis(ms) if !(ms.is_finite() && ms > 0.0) => {
                return Err(invalid(format!("horizon_ms must be positive, got {ms}")));
            }
            _ => {}
        }
        if !(self.forgetting > 0.0 && self.forgetting <= 1.0) {
            return Err(invalid(format!(
                "forgetting must be in (0, 1], got {}",
                self.forgetting
            )));
        }
        if !(self.prediction_scale_bps.is_finite() && self.prediction_scale_bps > 0.0) {
            return Err(invalid(format!(
                "prediction_scale_bps must be positive, got {}",
                self.prediction_scale_bps
            )));
        }
        if !(self.dead_band >= 0.0 && self.dead_band < 1.0) {
            return Err(invalid(format!(
                "dead_band must be in [0, 1), got {}",
                self.dead_band
            )));
        }
        let weights = self.weights;
        for (name, weight) in [
            ("imbalance", weights.imbalance),
            ("deep_imbalance", weights.deep_imbalance),
            ("trade_imbalance", weights.trade_imbalance),
            ("voi", weights.voi),
            ("deep_ofi", weights.deep_ofi),
            ("prediction", weights.prediction),
        ] {
            if !weight.is_finite() {
                return Err(invalid(format!(
                    "weights.{name} must be finite, got {weight}"
                )));
            }
        }
        Ok(())
    }
}

/// The features at one tick. Neutral values when undefined: prices 0 before the first
/// two-sided book, imbalances and flows 0, VWAP = mid and basis 0 with no trades, volatility 0
/// with fewer than two returns, hit rate 0.5 with nothing scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Features {
    /// Whether `tick_window` ticks have been seen.
    pub ready: bool,
    /// Ticks seen.
    pub tick_count: u64,
    /// Time of the tick, nanoseconds.
    pub time_ns: i64,
    /// `(a + b) / 2`.
    pub mid: f64,
    /// `(a·Vb + b·Va) / (Vb + Va)` (Stoikov's weighted form).
    pub microprice: f64,
    /// The microprice over the first depth: each side's VWAP weighted by the other side's size.
    pub weighted_mid: f64,
    /// `(a − b) / mid × 10⁴`.
    pub spread_bps: f64,
    /// Order-book imbalance at each depth, in [−1, 1].
    pub imbalances: [f64; MAX_DEPTHS],
    /// How many entries of `imbalances` are used.
    pub depth_count: usize,
    /// Order-flow imbalance at the touch (Cont–Kukanov–Stoikov), summed over the window.
    pub ofi: f64,
    /// Multi-level order-flow imbalance over `ofi_levels` levels, summed over the window.
    pub deep_ofi: f64,
    /// `ofi` over the window's mean touch depth `(Vb + Va) / 2`.
    pub ofi_normalized: f64,
    /// `deep_ofi` over the window's mean depth of `ofi_levels` levels, `Σ (Vb_i + Va_i) / 2`.
    pub deep_ofi_normalized: f64,
    /// Volume order imbalance (Shen), summed over the window.
    pub voi: f64,
    /// `voi` over the window's mean touch depth.
    pub voi_normalized: f64,
    /// `(buy − sell) / (buy + sell)` volume of the window's trades, in [−1, 1].
    pub trade_imbalance: f64,
    /// Trades in the window.
    pub trade_count: u64,
    /// Volume-weighted price of the window's trades.
    pub vwap: f64,
    /// `(vwap − mid) / mid × 10⁴`.
    pub basis_bps: f64,
    /// Standard deviation of the window's log mid returns, scaled to one second.
    pub volatility: f64,
    /// EWMA of squared log mid returns per second (half-life `volatility_half_life_s`), square root.
    pub volatility_ewma: f64,
    /// Predicted mid change over the horizon, in bps.
    pub prediction_bps: f64,
    /// Share of scored predictions whose sign matched the realised mid change.
    pub hit_rate: f64,
    /// Predictions scored so far (made before their outcome was known).
    pub predictions_scored: u64,
    /// Combined skew in [−1, 1]: positive leans to buying.
    pub skew: f64,
}

impl Features {
    /// The used imbalances, one per depth.
    #[must_use]
    pub fn imbalances(&self) -> &[f64] {
        &self.imbalances[..self.depth_count]
    }
}

/// What one tick contributes to the rolling windows, one value per [`Flow`] (counts are exact
/// integers in floats). Kept in one array so the window's sums move with a few vector
/// operations.
/// 16-byte aligned, for the vector operations.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(16))]
struct TickRecord([f64; Flow::COUNT]);

/// The values a tick adds to the windows.
#[derive(Debug, Clone, Copy)]
enum Flow {
    Ofi,
    DeepOfi,
    Voi,
    TouchDepth,
    DeepDepth,
    /// 1 when the tick has a return (every tick after the first).
    HasReturn,
    /// 1 when the mid moved this tick (an exact count, so a still window has volatility 0).
    Moved,
    LogReturn,
    LogReturnSq,
    DtS,
    BuyVolume,
    SellVolume,
    Notional,
    Trades,
}

impl Flow {
    const COUNT: usize = 14;
}

impl std::ops::Index<Flow> for TickRecord {
    type Output = f64;

    #[inline]
    fn index(&self, flow: Flow) -> &f64 {
        &self.0[flow as usize]
    }
}

impl std::ops::IndexMut<Flow> for TickRecord {
    #[inline]
    fn index_mut(&mut self, flow: Flow) -> &mut f64 {
        &mut self.0[flow as usize]
    }
}

impl TickRecord {
    /// `self − leaving + entering`, value by value (the leaving record first).
    #[inline]
    fn roll(&mut self, leaving: &Self, entering: &Self) {
        for ((sum, old), new) in self.0.iter_mut().zip(&leaving.0).zip(&entering.0) {
            *sum = (*sum - old) + new;
        }
    }

    #[inline]
    fn add(&mut self, entering: &Self) {
        for (sum, new) in self.0.iter_mut().zip(&entering.0) {
            *sum += new;
        }
    }
}

/// One side's best levels at the previous tick.
#[derive(Debug, Clone, Copy)]
struct SideLevels {
    ticks: [i64; MAX_OFI_LEVELS],
    sizes: [f64; MAX_OFI_LEVELS],
    count: usize,
}

impl SideLevels {
    const EMPTY: Self = Self {
        ticks: [0; MAX_OFI_LEVELS],
        sizes: [0.0; MAX_OFI_LEVELS],
        count: 0,
    };

    fn read(book: &OrderBook, side: Side, levels: usize) -> Self {
        let view = book.top_levels(side, levels);
        let mut out = Self::EMPTY;
        out.count = view.len();
        for rank in 0..out.count {
            let (ticks, size) = view.level(rank);
            out.ticks[rank] = ticks;
            out.sizes[rank] = size;
        }
        out
    }
}

/// A running sum that carries its rounding error alongside (Knuth's two-sum, Neumaier's
/// compensation): `value()` is the exact sum of everything added, rounded once, unless that
/// exact sum lies within about 1e-28 (relative to the largest partial sum) of a rounding
/// boundary. So a sum kept up to date by additions and subtractions and the same sum read
/// afresh come out the same, bit for bit, whatever the order of the terms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CompensatedSum {
    sum: f64,
    error: f64,
}

impl CompensatedSum {
    const ZERO: Self = Self {
        sum: 0.0,
        error: 0.0,
    };

    #[inline]
    fn add(&mut self, x: f64) {
        let sum = self.sum + x;
        let x_part = sum - self.sum;
        let sum_part = sum - x_part;
        self.error += (self.sum - sum_part) + (x - x_part);
        self.sum = sum;
    }

    #[inline]
    fn value(self) -> f64 {
        self.sum + self.error
    }
}

/// Changes a side's depth sums take from the applied updates before they are read afresh (the
/// compensated sums do not drift, but a fresh read every so often keeps that beyond doubt).
const DEPTH_SUMS_READ_EVERY: u32 = 32;

/// What the engine reads from one side of the book, kept while the side's best levels (as far
/// as the engine reads) do not change: the book's stamp of them says when they did.
#[derive(Debug, Clone, Copy)]
struct SideRead {
    /// The book's stamp of the levels the weighted mid and the OFI levels were read at (None:
    /// not tracked, read again every tick).
    stamp: Option<(u64, u64)>,
    /// The book's stamp the depth sums are current for.
    sums_stamp: Option<(u64, u64)>,
    /// In a replay (see [`FeatureEngine::begin_replay`]): whether the weighted-mid sums and
    /// the OFI levels, and the depth sums, are as the book is now. The changes the replay tells
    /// the engine keep these up to date, in place of the stamps.
    top_current: bool,
    sums_current: bool,
    /// Updates applied to the depth sums since they were read afresh.
    sums_changes: u32,
    /// Summed sizes of the best `depths[k]` levels, with their rounding error (unweighted only).
    depth_sums: [CompensatedSum; MAX_DEPTHS],
    /// Summed (level-weighted) sizes of the best `depths[k]` levels.
    depth_sizes: [f64; MAX_DEPTHS],
    /// Size of the best `depths[0]` levels, and their ticks weighted by size (weighted mid).
    vwap_size: f64,
    vwap_ticks: f64,
    /// The best `ofi_levels` levels as read now (`levels[current]`) and at the read before
    /// (`levels[current ^ 1]`): a read writes the other slot and flips `current`, so the
    /// previous levels are never copied.
    levels: [SideLevels; 2],
    current: usize,
    /// Summed size of the current best `ofi_levels` levels.
    levels_size: f64,
}

impl SideRead {
    const EMPTY: Self = Self {
        stamp: None,
        sums_stamp: None,
        top_current: false,
        sums_current: false,
        sums_changes: 0,
        depth_sums: [CompensatedSum::ZERO; MAX_DEPTHS],
        depth_sizes: [0.0; MAX_DEPTHS],
        vwap_size: 0.0,
        vwap_ticks: 0.0,
        levels: [SideLevels::EMPTY; 2],
        current: 0,
        levels_size: 0.0,
    };

    /// The best `ofi_levels` levels as last read.
    #[inline]
    fn levels(&self) -> &SideLevels {
        &self.levels[self.current & 1]
    }

    /// The levels before the last read.
    #[inline]
    fn previous_levels(&self) -> &SideLevels {
        &self.levels[(self.current ^ 1) & 1]
    }
}

/// Σ values, with eight accumulators (the order differs from a plain left-to-right sum only
/// in the last bits). The lanes are combined pairwise as four two-wide vectors would be, so the
/// loop compiles to vector adds.
#[inline]
fn sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, value) in lanes.iter_mut().zip(chunk) {
            *lane += value;
        }
    }
    let mut rest = 0.0;
    for value in chunks.remainder() {
        rest += value;
    }
    let low = [lanes[0] + lanes[4], lanes[1] + lanes[5]];
    let high = [lanes[2] + lanes[6], lanes[3] + lanes[7]];
    let pair = [low[0] + high[0], low[1] + high[1]];
    (pair[0] + pair[1]) + rest
}

/// Summed sizes of a side's best `depths[k]` levels for every k, from the contiguous levels
/// `sizes` (best last) and then `far` (best first): one compensated sum from the best outward,
/// taken as it passes each depth.
#[inline]
fn compensated_depth_sums(
    depths: &[usize],
    sizes: &[f64],
    far: impl Iterator<Item = f64>,
    out: &mut [CompensatedSum; MAX_DEPTHS],
) {
    let mut total = CompensatedSum::ZERO;
    let mut levels = sizes.iter().rev().copied().chain(far);
    let mut taken = 0;
    for (slot, depth) in out.iter_mut().zip(depths) {
        while taken < *depth {
            let Some(size) = levels.next() else { break };
            total.add(size);
            taken += 1;
        }
        *slot = total;
    }
}

/// Σ values × weights, with four accumulators.
#[inline]
fn dot(values: &[f64], weights: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let chunks = values.chunks_exact(4);
    let weight_chunks = weights.chunks_exact(4);
    let rest: f64 = chunks
        .remainder()
        .iter()
        .zip(weight_chunks.remainder())
        .map(|(v, w)| v * w)
        .sum();
    for (chunk, weight) in chunks.zip(weight_chunks) {
        for ((lane, value), w) in lanes.iter_mut().zip(chunk).zip(weight) {
            *lane += value * w;
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + rest
}

/// Cont–Kukanov–Stoikov order-flow contribution of one level pair between two ticks.
/// Bid prices and ask prices are compared in ticks (exact).
#[inline]
#[must_use]
pub fn ofi_event(
    bid: (i64, f64),
    prev_bid: (i64, f64),
    ask: (i64, f64),
    prev_ask: (i64, f64),
) -> f64 {
    let mut e = 0.0;
    if bid.0 >= prev_bid.0 {
        e += bid.1;
    }
    if bid.0 <= prev_bid.0 {
        e -= prev_bid.1;
    }
    if ask.0 <= prev_ask.0 {
        e -= ask.1;
    }
    if ask.0 >= prev_ask.0 {
        e += prev_ask.1;
    }
    e
}

/// Shen's volume order imbalance between two ticks at the touch.
#[inline]
#[must_use]
pub fn voi_event(
    bid: (i64, f64),
    prev_bid: (i64, f64),
    ask: (i64, f64),
    prev_ask: (i64, f64),
) -> f64 {
    let delta_bid = match bid.0.cmp(&prev_bid.0) {
        std::cmp::Ordering::Less => 0.0,
        std::cmp::Ordering::Equal => bid.1 - prev_bid.1,
        std::cmp::Ordering::Greater => bid.1,
    };
    let delta_ask = match ask.0.cmp(&prev_ask.0) {
        std::cmp::Ordering::Less => ask.1,
        std::cmp::Ordering::Equal => ask.1 - prev_ask.1,
        std::cmp::Ordering::Greater => 0.0,
    };
    delta_bid - delta_ask
}

/// `2^(j/32)` for `j = 0..32`, correctly rounded.
#[allow(clippy::unreadable_literal, clippy::excessive_precision)]
const EXP2_32NDS: [f64; 32] = [
    1.0,
    1.0218971486541166,
    1.0442737824274138,
    1.0671404006768237,
    1.0905077326652577,
    1.1143867425958924,
    1.1387886347566916,
    1.1637248587775775,
    1.189207115002721,
    1.215247359980469,
    1.241857812073484,
    1.2690509571917332,
    1.2968395546510096,
    1.3252366431597413,
    1.3542555469368927,
    1.383909881963832,
    std::f64::consts::SQRT_2,
    1.4451808069770467,
    1.4768261459394993,
    1.5091644275934228,
    1.5422108254079407,
    1.5759808451078865,
    1.6104903319492543,
    1.645755478153965,
    1.681792830507429,
    1.718619298122478,
    1.7562521603732995,
    1.7947090750031072,
    1.8340080864093424,
    1.8741676341103,
    1.9152065613971474,
    1.9571441241754002,
];

/// `tanh(x)`: `1 − 2 / (e^{2|x|} + 1)` with the sign of `x`, the exponential from a 32-entry
/// table and a degree-6 polynomial (half the instructions of the C library's `tanh`, which
/// goes through `expm1`). Within a few units in the last place of `f64::tanh` (tested); below
/// `|x| = 0.25` the subtraction would lose digits, so that range is left to `f64::tanh`.
#[inline]
#[must_use]
#[allow(clippy::many_single_char_names)] // the formula's own names: x, y, k, r, q, e
pub fn squash(x: f64) -> f64 {
    /// 1.5 × 2^52: adding and subtracting it rounds to an integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    /// 32 / ln 2, and ln 2 / 32 split so that `k × HI` is exact for `k < 2^20`.
    #[allow(clippy::unreadable_literal, clippy::excessive_precision)]
    const INV_LN2_32: f64 = 46.16624130844683;
    #[allow(clippy::unreadable_literal, clippy::excessive_precision)]
    const LN2_32_HI: f64 = 0.021660849390173098;
    #[allow(clippy::unreadable_literal, clippy::excessive_precision)]
    const LN2_32_LO: f64 = 2.325192846878874e-12;
    let magnitude = x.abs();
    // One comparison, false for NaN too.
    let in_range = magnitude >= 0.25;
    if !in_range {
        return x.tanh();
    }
    if magnitude > 19.5 {
        // tanh rounds to ±1 from |x| ≈ 19.06 on.
        return 1.0_f64.copysign(x);
    }
    let y = 2.0 * magnitude;
    // `k` (11 to 1,800) lands in the low bits of `shifted`: read from there, not converted.
    let shifted = y * INV_LN2_32 + ROUND;
    let k_float = shifted - ROUND;
    let k = shifted.to_bits() - ROUND.to_bits();
    let r = (y - k_float * LN2_32_HI) - k_float * LN2_32_LO; // |r| ≤ ln 2 / 64
                                                             // e^r − 1 to degree 6 (the next term is below 4e-18 relative).
    let q = r
        * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let base = EXP2_32NDS[(k & 31) as usize];
    let power = f64::from_bits(((k >> 5) + 1023) << 52);
    let e = (base + base * q) * power;
    (1.0 - 2.0 / (e + 1.0)).copysign(x)
}

/// `sign(s) · max(0, |s| − band) / (1 − band)`: zero inside the band, continuous outside.
#[inline]
#[must_use]
pub fn dead_band(signal: f64, band: f64) -> f64 {
    let excess = (signal.abs() - band).max(0.0) / (1.0 - band);
    excess.copysign(signal)
}

/// Exponentially weighted ridge regression, refitted every few ticks: the "rolling ridge" of
/// the mid-change model. Fixed size, no allocation.
///
/// It keeps `A = Σ λ^(t−s) x_s x_sᵀ` and `b = Σ λ^(t−s) x_s y_s` (stored multiplied by `1/λ^t`,
/// so that forgetting costs nothing per tick) and solves `(A + ridge·I) w = b` by Cholesky every
/// `REFIT_EVERY` ticks. Unused regressors stay zero. Only the solve reads `A` and `b`, so the
/// outcomes learnt between two solves wait in a buffer and go in together just before it (a
/// rank-k update): each sum still takes its terms one outcome at a time, oldest first, exactly
/// the additions a rank-one update per outcome would make.
#[derive(Debug, Clone)]
struct RidgeModel {
    size: usize,
    weights: [f64; MAX_REGRESSORS],
    /// `A / λ^t`, lower triangle (all the Cholesky solve reads; what lies above the diagonal
    /// is never read).
    moments: [[f64; MAX_REGRESSORS]; MAX_REGRESSORS],
    targets: [f64; MAX_REGRESSORS],
    /// `1 / λ^t`: what the stored sums are multiplied by.
    scale: f64,
    inverse_forgetting: f64,
    ridge: f64,
    /// Outcomes learnt since they were last added to the sums, oldest first.
    outcomes: [LearntOutcome; REFIT_EVERY],
    outcome_count: usize,
    since_refit: usize,
}

/// One outcome waiting to be added to the sums: the prediction's regressors, the realised
/// change and `1/λ^t` as of when it was learnt.
#[derive(Debug, Clone, Copy)]
struct LearntOutcome {
    regressors: [f64; MAX_REGRESSORS],
    /// `scale` twice and `realised` twice: each read as one vector by the sums.
    scale: [f64; 2],
    realised: [f64; 2],
}

impl LearntOutcome {
    const ZERO: Self = Self {
        regressors: [0.0; MAX_REGRESSORS],
        scale: [0.0; 2],
        realised: [0.0; 2],
    };
}

/// Ridge penalty of the mid-change model (features are of order 1, targets in bps).
const RIDGE_PENALTY: f64 = 1.0;
/// Ticks between refits of the mid-change model.
const REFIT_EVERY: usize = 32;

impl RidgeModel {
    fn new(size: usize, forgetting: f64) -> Self {
        Self {
            size: size.min(MAX_REGRESSORS),
            weights: [0.0; MAX_REGRESSORS],
            moments: [[0.0; MAX_REGRESSORS]; MAX_REGRESSORS],
            targets: [0.0; MAX_REGRESSORS],
            scale: 1.0,
            inverse_forgetting: 1.0 / forgetting,
            ridge: RIDGE_PENALTY,
            outcomes: [LearntOutcome::ZERO; REFIT_EVERY],
            outcome_count: 0,
            since_refit: 0,
        }
    }

    #[inline]
    fn predict(&self, x: &[f64; MAX_REGRESSORS]) -> f64 {
        self.weights.iter().zip(x).map(|(w, x)| w * x).sum()
    }

    /// Learns that the prediction made from `x` saw the mid change by `y`.
    #[inline(always)]
    fn learn(&mut self, x: &[f64; MAX_REGRESSORS], y: f64) {
        self.scale *= self.inverse_forgetting;
        // A refit or a rescale empties the buffer before it can overflow.
        let slot = &mut self.outcomes[self.outcome_count % REFIT_EVERY];
        slot.regressors = *x;
        slot.scale = [self.scale; 2];
        slot.realised = [y; 2];
        self.outcome_count += 1;
        if self.scale > 1e100 {
            self.add_outcomes();
            self.rescale();
        }
        self.since_refit += 1;
        if self.since_refit >= REFIT_EVERY {
            self.since_refit = 0;
            self.add_outcomes();
            self.refit();
        }
    }

    /// Adds the buffered outcomes to the sums, oldest first: `b += (x·s)·y` and, row by row of
    /// the lower triangle, `A[i][j] += (x_i·s)·x_j`, the terms of each sum in the order
    /// the outcomes were learnt.
    fn add_outcomes(&mut self) {
        let outcomes = &self.outcomes[..self.outcome_count.min(REFIT_EVERY)];
        self.outcome_count = 0;
        if self.size > 10 {
            add_to_targets::<6>(&mut self.targets, outcomes);
        } else {
            add_to_targets::<5>(&mut self.targets, outcomes);
        }
        // Each row's columns up to the diagonal, taken two at a time (a row of even index also
        // fills the entry just above the diagonal, never read): the row's sums stay in
        // registers while the outcomes stream past.
        for (i, row) in self.moments[..self.size].iter_mut().enumerate() {
            match i / 2 {
                0 => add_to_row::<1>(row, i, outcomes),
                1 => add_to_row::<2>(row, i, outcomes),
                2 => add_to_row::<3>(row, i, outcomes),
                3 => add_to_row::<4>(row, i, outcomes),
                4 => add_to_row::<5>(row, i, outcomes),
                _ => add_to_row::<6>(row, i, outcomes),
            }
        }
    }

    fn rescale(&mut self) {
        let factor = 1.0 / self.scale;
        for row in &mut self.moments {
            for moment in row.iter_mut() {
                *moment *= factor;
            }
        }
        for target in &mut self.targets {
            *target *= factor;
        }
        self.scale = 1.0;
    }

    /// Solves `(A + ridge·I) w = b` by Cholesky (`A` is symmetric positive semi-definite, so
    /// the ridge makes the system positive definite); keeps the weights if the solve fails.
    fn refit(&mut self) {
        let penalty = self.ridge * self.scale;
        // One solve per model size, each with its loops unrolled (the size is 1 + depths + 7).
        let solution = match self.size {
            9 => cholesky_solve::<9>(&self.moments, &self.targets, penalty),
            10 => cholesky_solve::<10>(&self.moments, &self.targets, penalty),
            11 => cholesky_solve::<11>(&self.moments, &self.targets, penalty),
            12 => cholesky_solve::<12>(&self.moments, &self.targets, penalty),
            size => cholesky_solve_any(size, &self.moments, &self.targets, penalty),
        };
        if let Some(solution) = solution {
            self.weights = solution;
        }
    }
}

/// `(moments + penalty·I) w = targets` over the first `N` regressors by Cholesky, from the
/// lower triangle of `moments`; None when a pivot is not positive or the solution not finite.
/// Every sum is taken left to right, as in [`cholesky_solve_any`] (same result, bit for bit).
#[inline(never)]
fn cholesky_solve<const N: usize>(
    moments: &[[f64; MAX_REGRESSORS]; MAX_REGRESSORS],
    targets: &[f64; MAX_REGRESSORS],
    penalty: f64,
) -> Option<[f64; MAX_REGRESSORS]> {
    cholesky_solve_sized(N, moments, targets, penalty)
}

/// [`cholesky_solve`] for any size up to [`MAX_REGRESSORS`].
fn cholesky_solve_any(
    n: usize,
    moments: &[[f64; MAX_REGRESSORS]; MAX_REGRESSORS],
    targets: &[f64; MAX_REGRESSORS],
    penalty: f64,
) -> Option<[f64; MAX_REGRESSORS]> {
    cholesky_solve_sized(n.min(MAX_REGRESSORS), moments, targets, penalty)
}

/// The solve of both: inlined into each, so that [`cholesky_solve`]'s loops run to a constant.
#[inline(always)] // the fixed-size solve needs `n` known to unroll
#[allow(clippy::inline_always, clippy::needless_range_loop)] // the triangular solves read best with indices
fn cholesky_solve_sized(
    n: usize,
    moments: &[[f64; MAX_REGRESSORS]; MAX_REGRESSORS],
    targets: &[f64; MAX_REGRESSORS],
    penalty: f64,
) -> Option<[f64; MAX_REGRESSORS]> {
    let mut lower = [[0.0; MAX_REGRESSORS]; MAX_REGRESSORS];
    for i in 0..n {
        for j in 0..i {
            // `+ 0.0`: a zero moment comes out +0, as the diagonal's `+ penalty` would.
            let mut value = moments[i][j] + 0.0;
            for k in 0..j {
                value -= lower[i][k] * lower[j][k];
            }
            lower[i][j] = value / lower[j][j];
        }
        let mut value = moments[i][i] + penalty;
        for k in 0..i {
            value -= lower[i][k] * lower[i][k];
        }
        if !(value > 0.0 && value.is_finite()) {
            return None;
        }
        lower[i][i] = value.sqrt();
    }
    let mut solution = [0.0; MAX_REGRESSORS];
    for i in 0..n {
        let mut value = targets[i];
        for k in 0..i {
            value -= lower[i][k] * solution[k];
        }
        solution[i] = value / lower[i][i];
    }
    for i in (0..n).rev() {
        let mut value = solution[i];
        for k in i + 1..n {
            value -= lower[k][i] * solution[k];
        }
        solution[i] = value / lower[i][i];
    }
    solution.iter().all(|w| w.is_finite()).then_some(solution)
}

/// Adds `outcomes` to the first `2 × PAIRS` targets (the rest stay 0: their regressors are
/// 0), each target's terms in the outcomes' order.
#[inline(always)]
fn add_to_targets<const PAIRS: usize>(
    targets: &mut [f64; MAX_REGRESSORS],
    outcomes: &[LearntOutcome],
) {
    let mut sums = [[0.0; 2]; PAIRS];
    for (pair, sum) in sums.iter_mut().enumerate() {
        *sum = [targets[2 * pair], targets[2 * pair + 1]];
    }
    for outcome in outcomes {
        let x = &outcome.regressors;
        let (scale, realised) = (outcome.scale, outcome.realised);
        for (pair, sum) in sums.iter_mut().enumerate() {
            sum[0] += x[2 * pair] * scale[0] * realised[0];
            sum[1] += x[2 * pair + 1] * scale[1] * realised[1];
        }
    }
    for (pair, sum) in sums.iter().enumerate() {
        targets[2 * pair] = sum[0];
        targets[2 * pair + 1] = sum[1];
    }
}

/// Adds `outcomes` to row `i` of the moments, columns `0..2 × PAIRS`, each entry's terms in the
/// outcomes' order.
#[inline(always)]
fn add_to_row<const PAIRS: usize>(
    row: &mut [f64; MAX_REGRESSORS],
    i: usize,
    outcomes: &[LearntOutcome],
) {
    let mut sums = [[0.0; 2]; PAIRS];
    for (pair, sum) in sums.iter_mut().enumerate() {
        *sum = [row[2 * pair], row[2 * pair + 1]];
    }
    for outcome in outcomes {
        let x = &outcome.regressors;
        let weighted = x[i] * outcome.scale[0];
        for (pair, sum) in sums.iter_mut().enumerate() {
            sum[0] += weighted * x[2 * pair];
            sum[1] += weighted * x[2 * pair + 1];
        }
    }
    for (pair, sum) in sums.iter().enumerate() {
        row[2 * pair] = sum[0];
        row[2 * pair + 1] = sum[1];
    }
}

/// A prediction waiting for its outcome.
#[derive(Debug, Clone, Copy)]
struct PendingPrediction {
    tick: u64,
    time_ns: i64,
    mid: f64,
    prediction_bps: f64,
    regressors: [f64; MAX_REGRESSORS],
}

/// The feature engine of one symbol.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    config: FeatureConfig,
    /// `exp(-level_decay × rank)` for ranks deepest..0 (best last, like the book's slices).
    level_weights_best_last: Vec<f64>,
    /// The window's records in a ring: `window[window_oldest]` is the oldest once it is full.
    window: Vec<TickRecord>,
    window_oldest: usize,
    sums: TickRecord,
    ticks_since_resum: usize,
    /// Whether each side was read again this tick (then its levels at the previous tick are
    /// its read's previous levels; otherwise they are its current ones).
    bid_refreshed: bool,
    ask_refreshed: bool,
    previous_mid: f64,
    previous_time_ns: Option<i64>,
    pending_return: f64,
    pending_dt_s: f64,
    ewma_variance: Option<f64>,
    /// The last EWMA step's interval and its weight `1 − exp(−ln 2 · dt / half-life)` (steps
    /// are often equally spaced: the weight is not computed again for the same interval).
    ewma_alpha: (f64, f64),
    /// `|x|` below which `tanh(x)` is surely inside the dead band (the skew's squashed signals
    /// are then 0 without computing `tanh`).
    tanh_dead_limit: f64,
    /// Levels a side the engine reads (its deepest depth or OFI level).
    levels_read: usize,
    /// The touch last priced, `(bid ticks, ask ticks, tick size)`, and its bid, ask and mid.
    touch: ((i64, i64, f64), (f64, f64, f64)),
    /// Levels a side the weighted mid and the OFI read (`depths[0]` or `ofi_levels`).
    top_levels_read: usize,
    /// What was read from each side, kept while the side's best levels do not change.
    bid_read: SideRead,
    ask_read: SideRead,
    /// The tape's trade count at the last tick (None before the first tick, whose trades are
    /// not counted: they arrived before the engine's first tick, like its order flow).
    trades_seen: Option<u64>,
    predictor: Predictor,
    features: Features,
}

/// The mid-change model with what it needs between ticks: the predictions waiting for their
/// outcome, the hit count and the lagged regressors.
#[derive(Debug, Clone)]
struct Predictor {
    horizon: Horizon,
    model: RidgeModel,
    pending: PendingPredictions,
    hits: u64,
    lagged_ofi_normalized: f64,
    lagged_imbalance: f64,
}

/// Pending predictions kept at most (a millisecond horizon on a very fast feed).
const MAX_PENDING_PREDICTIONS: usize = 65_536;

/// The predictions waiting for their outcome, oldest first, in a ring whose length is a power
/// of two: a prediction is written once, where it waits, and read there when it matures.
#[derive(Debug, Clone)]
struct PendingPredictions {
    ring: Vec<PendingPrediction>,
    oldest: usize,
    count: usize,
}

impl PendingPredictions {
    const EMPTY_SLOT: PendingPrediction = PendingPrediction {
        tick: 0,
        time_ns: 0,
        mid: 0.0,
        prediction_bps: 0.0,
        regressors: [0.0; MAX_REGRESSORS],
    };

    /// Room for `capacity` predictions before the ring grows.
    fn with_capacity(capacity: usize) -> Self {
        let length = capacity
            .clamp(1, MAX_PENDING_PREDICTIONS)
            .next_power_of_two();
        Self {
            ring: vec![Self::EMPTY_SLOT; length],
            oldest: 0,
            count: 0,
        }
    }

    #[inline]
    fn oldest(&self) -> Option<&PendingPrediction> {
        if self.count == 0 {
            return None;
        }
        // `oldest` is always within the ring.
        self.ring.get(self.oldest)
    }

    #[inline]
    fn drop_oldest(&mut self) {
        if self.count > 0 {
            self.oldest = (self.oldest + 1) & (self.ring.len() - 1);
            self.count -= 1;
        }
    }

    /// The slot of a new newest prediction (the ring doubles when full, up to
    /// [`MAX_PENDING_PREDICTIONS`]; beyond that the oldest is dropped unscored).
    #[inline]
    fn push(&mut self) -> &mut PendingPrediction {
        if self.count == self.ring.len() {
            if self.ring.len() < MAX_PENDING_PREDICTIONS {
                self.grow();
            } else {
                self.drop_oldest();
            }
        }
        let mask = self.ring.len() - 1;
        let slot = (self.oldest + self.count) & mask;
        self.count += 1;
        &mut self.ring[slot]
    }

    #[cold]
    fn grow(&mut self) {
        let mut ring = Vec::with_capacity(2 * self.ring.len());
        ring.extend_from_slice(&self.ring[self.oldest..]);
        ring.extend_from_slice(&self.ring[..self.oldest]);
        ring.resize(2 * self.ring.len(), Self::EMPTY_SLOT);
        self.ring = ring;
        self.oldest = 0;
    }
}

impl FeatureEngine {
    /// An engine with the given parameters.
    pub fn new(config: FeatureConfig) -> CoreResult<Self> {
        config.validate()?;
        let deepest = config.depths.last().copied().unwrap_or(1);
        let level_weights_best_last = (0..deepest)
            .rev()
            .map(|rank| (-config.level_decay * rank as f64).exp())
            .collect();
        let regressors = 1 + config.depths.len() + 7;
        let pending_capacity = match config.horizon {
            Horizon::Updates(ticks) => ticks.saturating_add(1),
            Horizon::Millis(_) => 1024,
        };
        Ok(Self {
            level_weights_best_last,
            window: Vec::with_capacity(config.tick_window),
            window_oldest: 0,
            sums: TickRecord::default(),
            ticks_since_resum: 0,
            bid_refreshed: false,
            ask_refreshed: false,
            previous_mid: 0.0,
            previous_time_ns: None,
            pending_return: 0.0,
            pending_dt_s: 0.0,
            ewma_variance: None,
            ewma_alpha: (f64::NAN, f64::NAN),
            tanh_dead_limit: tanh_dead_limit(config.dead_band),
            levels_read: levels_read(&config),
            touch: ((0, 0, f64::NAN), (0.0, 0.0, 0.0)),
            top_levels_read: config.depths[0].max(config.ofi_levels),
            bid_read: SideRead::EMPTY,
            ask_read: SideRead::EMPTY,
            trades_seen: None,
            predictor: Predictor {
                horizon: config.horizon,
                model: RidgeModel::new(regressors, config.forgetting),
                pending: PendingPredictions::with_capacity(pending_capacity),
                hits: 0,
                lagged_ofi_normalized: 0.0,
                lagged_imbalance: 0.0,
            },
            features: Features {
                depth_count: config.depths.len(),
                hit_rate: 0.5,
                ..Features::default()
            },
            config,
        })
    }

    /// The parameters.
    #[must_use]
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// How many levels a side the engine reads from the book (its deepest depth or OFI level).
    #[must_use]
    pub fn levels_read(&self) -> usize {
        self.levels_read
    }

    /// The features as of the last tick.
    #[must_use]
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Changes the skew weights and dead band (hot reload); windows are kept.
    pub fn set_skew(&mut self, weights: SkewWeights, dead_band: f64) -> CoreResult<()> {
        let mut config = self.config.clone();
        config.weights = weights;
        config.dead_band = dead_band;
        config.validate()?;
        self.config = config;
        self.tanh_dead_limit = tanh_dead_limit(dead_band);
        self.features.skew = skew(&self.config, self.tanh_dead_limit, &self.features);
        Ok(())
    }

    /// Starts again from nothing (e.g. after a book resync), keeping the parameters and the
    /// place on the trade tape (trades already counted are not counted again).
    pub fn reset(&mut self) {
        if let Ok(mut fresh) = Self::new(self.config.clone()) {
            fresh.trades_seen = self.trades_seen;
            *self = fresh;
        }
    }

    /// Reads `side` again unless the book's stamp says its best levels are as last read (the
    /// depth sums and the rest separately: either can have been kept up to date).
    #[inline]
    fn refresh_side(&mut self, book: &OrderBook, side: Side) {
        let stamp = book.top_stamp(side, self.levels_read);
        let (read, refreshed) = match side {
            Side::Buy => (&self.bid_read, &mut self.bid_refreshed),
            Side::Sell => (&self.ask_read, &mut self.ask_refreshed),
        };
        *refreshed = stamp.is_none() || stamp != read.stamp;
        let sums_stale = stamp.is_none() || stamp != read.sums_stamp;
        if *refreshed {
            self.read_top(book, side, stamp);
        }
        if sums_stale {
            self.read_depth_sums(book, side, stamp);
        }
    }

    /// [`Self::refresh_side`] in a replay: reads `side` again where the changes told say it
    /// moved.
    #[inline]
    fn refresh_side_replayed(&mut self, book: &OrderBook, side: Side) {
        let (read, refreshed) = match side {
            Side::Buy => (&mut self.bid_read, &mut self.bid_refreshed),
            Side::Sell => (&mut self.ask_read, &mut self.ask_refreshed),
        };
        *refreshed = !read.top_current;
        let sums_stale = !read.sums_current;
        read.top_current = true;
        read.sums_current = true;
        if *refreshed {
            self.read_top(book, side, None);
        }
        if sums_stale {
            self.read_depth_sums(book, side, None);
        }
    }

    /// Starts a replay of updates to `book` in which the engine is told every change applied
    /// to it ([`Self::note_level_change`]) and updated with [`Self::update_replayed`]: a side's
    /// reads are then kept while the changes told leave them as they were (no stamp to take or
    /// compare), and its depth sums are brought up to date from the changes. Until
    /// [`Self::end_replay`], nothing else may change the book. Returns false, and starts
    /// nothing, when the book does not keep every level the engine reads contiguous (see
    /// [`OrderBook::keep_contiguous_levels`]): changes deeper than that are not told apart,
    /// so [`Self::update`] is the way then.
    pub(crate) fn begin_replay(&mut self, book: &OrderBook) -> bool {
        let stamps = [Side::Buy, Side::Sell].map(|side| book.top_stamp(side, self.levels_read));
        if stamps.contains(&None) {
            return false;
        }
        for (side, stamp) in [Side::Buy, Side::Sell].into_iter().zip(stamps) {
            let read = self.side_read_mut(side);
            read.top_current = stamp == read.stamp;
            read.sums_current = stamp == read.sums_stamp;
        }
        true
    }

    /// Ends a replay: the reads that are as the book is now take the book's stamp, so that
    /// [`Self::update`] keeps them; the others will be read again.
    pub(crate) fn end_replay(&mut self, book: &OrderBook) {
        for side in [Side::Buy, Side::Sell] {
            let stamp = book.top_stamp(side, self.levels_read);
            let read = self.side_read_mut(side);
            read.stamp = if read.top_current { stamp } else { None };
            read.sums_stamp = if read.sums_current { stamp } else { None };
            read.top_current = false;
            read.sums_current = false;
        }
    }

    #[inline]
    fn side_read_mut(&mut self, side: Side) -> &mut SideRead {
        match side {
            Side::Buy => &mut self.bid_read,
            Side::Sell => &mut self.ask_read,
        }
    }

    /// Tells the engine, in a replay, of one change just applied to `book` on `side`
    /// (`change`, from [`OrderBook::change_level`]). A change deeper than every level the
    /// engine reads leaves its reads as they are; one within the weighted mid's and the OFI's
    /// levels marks them to be read again; the unweighted depth sums take it in place (a
    /// resize adds the difference to each sum it falls in, an insert also takes out the level
    /// it pushed past each depth, a removal brings in the level behind it), at most
    /// `DEPTH_SUMS_READ_EVERY` times before a fresh read.
    #[inline]
    pub(crate) fn note_level_change(&mut self, book: &OrderBook, side: Side, change: LevelChange) {
        let LevelChange::Best { rank, old, new } = change else {
            // Nothing within the levels kept contiguous (all the engine reads) moved.
            return;
        };
        let (top_levels_read, level_decay) = (self.top_levels_read, self.config.level_decay);
        let depths = &self.config.depths;
        let read = match side {
            Side::Buy => &mut self.bid_read,
            Side::Sell => &mut self.ask_read,
        };
        if rank < top_levels_read {
            read.top_current = false;
        }
        if rank >= depths[depths.len() - 1] || !read.sums_current {
            return;
        }
        if level_decay != 0.0 || read.sums_changes >= DEPTH_SUMS_READ_EVERY {
            read.sums_current = false;
            return;
        }
        read.sums_changes += 1;
        for (k, depth) in depths.iter().enumerate() {
            if rank >= *depth {
                continue;
            }
            let sum = &mut read.depth_sums[k];
            if old == 0.0 {
                // Inserted: the level that was `depth`th from the best left the sum.
                sum.add(new);
                if let Some((_, size)) = book.level_at_rank(side, *depth) {
                    sum.add(-size);
                }
            } else if new == 0.0 {
                // Removed: the level that was just past the sum moved into it.
                sum.add(-old);
                if let Some((_, size)) = book.level_at_rank(side, depth - 1) {
                    sum.add(size);
                }
            } else {
                sum.add(new);
                sum.add(-old);
            }
            read.depth_sizes[k] = sum.value();
        }
    }

    /// Reads `side`'s weighted-mid sums and best OFI levels afresh.
    #[inline(never)]
    fn read_top(&mut self, book: &OrderBook, side: Side, stamp: Option<(u64, u64)>) {
        let read = match side {
            Side::Buy => &mut self.bid_read,
            Side::Sell => &mut self.ask_read,
        };
        read.stamp = stamp;
        let config = &self.config;
        let depths = &config.depths;
        let next = (read.current ^ 1) & 1;
        let view = book.top_levels(side, self.top_levels_read);
        if view.is_contiguous() {
            // The common case: every level read is in two slices, best last.
            let keys = view.near_keys_best_last();
            let sizes = view.near_sizes_best_last();
            let count = keys.len().min(sizes.len());
            let (keys, sizes) = (&keys[..count], &sizes[..count]);
            let sign: i64 = if view.ticks_negated() { -1 } else { 1 };
            // Best first: rank r is index count − 1 − r.
            let mut vwap = (0.0, 0.0);
            for index in (count - depths[0].min(count)..count).rev() {
                let size = sizes[index];
                vwap.0 += size;
                vwap.1 += (sign * keys[index]) as f64 * size;
            }
            (read.vwap_size, read.vwap_ticks) = vwap;
            let levels = &mut read.levels[next];
            let level_count = config.ofi_levels.min(count).min(MAX_OFI_LEVELS);
            let mut levels_size = 0.0;
            for rank in 0..level_count {
                let index = count - 1 - rank;
                levels.ticks[rank] = sign * keys[index];
                levels.sizes[rank] = sizes[index];
                levels_size += sizes[index];
            }
            levels.count = level_count;
            read.levels_size = levels_size;
        } else {
            (read.vwap_size, read.vwap_ticks) = side_vwap(book, side, depths[0]);
            let levels = SideLevels::read(book, side, config.ofi_levels);
            read.levels_size = levels.sizes[..levels.count].iter().sum::<f64>();
            read.levels[next] = levels;
        }
        read.current = next;
    }

    /// Reads `side`'s depth sums afresh.
    #[inline(never)]
    fn read_depth_sums(&mut self, book: &OrderBook, side: Side, stamp: Option<(u64, u64)>) {
        let read = match side {
            Side::Buy => &mut self.bid_read,
            Side::Sell => &mut self.ask_read,
        };
        read.sums_stamp = stamp;
        read.sums_changes = 0;
        let config = &self.config;
        let deep = book.top_levels(side, config.depths[config.depths.len() - 1]);
        if config.level_decay == 0.0 {
            compensated_depth_sums(
                &config.depths,
                deep.near_sizes_best_last(),
                deep.far_sizes_best_first(),
                &mut read.depth_sums,
            );
            for (size, sum) in read.depth_sizes.iter_mut().zip(&read.depth_sums) {
                *size = sum.value();
            }
        } else {
            read.depth_sizes = depth_sizes(
                config,
                &self.level_weights_best_last,
                deep.near_sizes_best_last(),
                deep.far_sizes_best_first(),
            );
        }
    }

    /// Updates every feature from `book` and the trades `tape` received since the last tick.
    /// Returns false (and changes nothing) when the book has an empty side.
    pub fn update(&mut self, book: &OrderBook, tape: Option<&TradeTape>, time_ns: i64) -> bool {
        self.tick::<false>(book, tape, time_ns)
    }

    /// [`Self::update`] in a replay (see [`Self::begin_replay`]).
    #[inline(never)]
    pub(crate) fn update_replayed(
        &mut self,
        book: &OrderBook,
        tape: Option<&TradeTape>,
        time_ns: i64,
    ) -> bool {
        self.tick::<true>(book, tape, time_ns)
    }

    /// The update, reading the book's sides by their stamps or (`REPLAY`) as a replay's
    /// changes say.
    #[inline(always)]
    fn tick<const REPLAY: bool>(
        &mut self,
        book: &OrderBook,
        tape: Option<&TradeTape>,
        time_ns: i64,
    ) -> bool {
        let (Some(best_bid), Some(best_ask)) = (book.best_bid(), book.best_ask()) else {
            return false;
        };
        let grid = book.grid();
        // The touch's prices (three divisions) only when its ticks moved.
        let touch = (best_bid.0, best_ask.0, grid.tick_size());
        if touch != self.touch.0 {
            let mid = grid.price(best_bid.0 + best_ask.0) / 2.0;
            self.touch = (touch, (grid.price(best_bid.0), grid.price(best_ask.0), mid));
        }
        let (bid_price, ask_price, mid) = self.touch.1;
        if REPLAY {
            self.refresh_side_replayed(book, Side::Buy);
            self.refresh_side_replayed(book, Side::Sell);
        } else {
            self.refresh_side(book, Side::Buy);
            self.refresh_side(book, Side::Sell);
        }
        let record = self.tick_record(best_bid, best_ask, mid, tape, time_ns);
        self.push_record(record);

        // Written in place: the snapshot is a few hundred bytes, not worth copying twice a tick.
        let features = &mut self.features;
        features.tick_count += 1;
        features.time_ns = time_ns;
        features.mid = mid;
        features.microprice =
            (bid_price * best_ask.1 + ask_price * best_bid.1) / (best_bid.1 + best_ask.1);
        features.spread_bps = (ask_price - bid_price) / mid * 1e4;
        features.weighted_mid = weighted_mid(&self.bid_read, &self.ask_read, grid, mid);
        imbalances(
            &self.bid_read,
            &self.ask_read,
            self.config.depths.len(),
            &mut features.imbalances,
        );
        let sums = &self.sums;
        let ticks = self.window.len() as f64;
        features.ofi = sums[Flow::Ofi];
        features.deep_ofi = sums[Flow::DeepOfi];
        features.voi = sums[Flow::Voi];
        let mean_touch = sums[Flow::TouchDepth] / ticks;
        let mean_deep = sums[Flow::DeepDepth] / ticks;
        features.ofi_normalized = ratio_or_zero(sums[Flow::Ofi], mean_touch);
        features.voi_normalized = ratio_or_zero(sums[Flow::Voi], mean_touch);
        features.deep_ofi_normalized = ratio_or_zero(sums[Flow::DeepOfi], mean_deep);
        let (buy_volume, sell_volume) = (sums[Flow::BuyVolume], sums[Flow::SellVolume]);
        let volume = buy_volume + sell_volume;
        features.trade_imbalance = ratio_or_zero(buy_volume - sell_volume, volume).clamp(-1.0, 1.0);
        // Through i64: one conversion instruction (the count is a small exact integer).
        features.trade_count = sums[Flow::Trades].max(0.0) as i64 as u64;
        features.vwap = if volume > 0.0 {
            sums[Flow::Notional] / volume
        } else {
            mid
        };
        features.basis_bps = (features.vwap - mid) / mid * 1e4;
        features.volatility = window_volatility(sums);
        features.volatility_ewma = self.ewma_variance.map_or(0.0, f64::sqrt);
        features.ready = features.tick_count >= self.config.tick_window as u64;

        self.predictor.predict(features);
        sanitize(features);
        features.skew = skew(&self.config, self.tanh_dead_limit, features);
        true
    }

    /// What this tick adds to the windows: order flow since the previous tick, the mid
    /// return, and the trades that reached the tape since then.
    #[inline(always)]
    fn tick_record(
        &mut self,
        best_bid: (i64, f64),
        best_ask: (i64, f64),
        mid: f64,
        tape: Option<&TradeTape>,
        time_ns: i64,
    ) -> TickRecord {
        // Order flow between the previous tick and this one.
        let bids = self.bid_read.levels();
        let asks = self.ask_read.levels();
        let mut record = TickRecord::default();
        record[Flow::TouchDepth] = (best_bid.1 + best_ask.1) / 2.0;
        record[Flow::DeepDepth] = (self.bid_read.levels_size + self.ask_read.levels_size) / 2.0;
        let first_tick = self.previous_time_ns.is_none();
        // Neither side's best levels changed (most ticks of a replay that tells the engine each
        // update): every level pair's flow is `x − x`, exactly 0, and is not computed.
        let still = !(self.bid_refreshed || self.ask_refreshed);
        if !first_tick && !still {
            let pb = if self.bid_refreshed {
                self.bid_read.previous_levels()
            } else {
                bids
            };
            let pa = if self.ask_refreshed {
                self.ask_read.previous_levels()
            } else {
                asks
            };
            record[Flow::Ofi] = ofi_event(
                best_bid,
                (pb.ticks[0], pb.sizes[0]),
                best_ask,
                (pa.ticks[0], pa.sizes[0]),
            );
            record[Flow::Voi] = voi_event(
                best_bid,
                (pb.ticks[0], pb.sizes[0]),
                best_ask,
                (pa.ticks[0], pa.sizes[0]),
            );
            let shared = bids.count.min(asks.count).min(pb.count).min(pa.count);
            record[Flow::DeepOfi] = (0..shared)
                .map(|i| {
                    ofi_event(
                        (bids.ticks[i], bids.sizes[i]),
                        (pb.ticks[i], pb.sizes[i]),
                        (asks.ticks[i], asks.sizes[i]),
                        (pa.ticks[i], pa.sizes[i]),
                    )
                })
                .sum();
        }
        if !first_tick {
            let dt_s = (time_ns - self.previous_time_ns.unwrap_or(time_ns)).max(0) as f64 / 1e9;
            // An unchanged mid (most ticks) has a log return of exactly ln(1) = 0: no `ln`.
            let log_return = if mid == self.previous_mid {
                0.0
            } else {
                (mid / self.previous_mid).ln()
            };
            record[Flow::HasReturn] = 1.0;
            record[Flow::Moved] = f64::from(u8::from(log_return != 0.0));
            record[Flow::LogReturn] = log_return;
            record[Flow::LogReturnSq] = log_return * log_return;
            record[Flow::DtS] = dt_s;
            self.update_ewma(log_return, dt_s);
        }
        self.previous_mid = mid;
        self.previous_time_ns = Some(time_ns);

        // Trades that reached the tape since the last tick.
        if let Some(tape) = tape {
            let new = self
                .trades_seen
                .map_or(0, |seen| tape.total_count().saturating_sub(seen));
            let available = (new as usize).min(tape.len());
            for trade in tape.iter().rev().take(available) {
                match trade.aggressor {
                    Side::Buy => record[Flow::BuyVolume] += trade.size,
                    Side::Sell => record[Flow::SellVolume] += trade.size,
                }
                record[Flow::Notional] += trade.price * trade.size;
                record[Flow::Trades] += 1.0;
            }
            self.trades_seen = Some(tape.total_count());
        }
        record
    }

    #[inline(always)]
    fn update_ewma(&mut self, log_return: f64, dt_s: f64) {
        self.pending_return += log_return;
        self.pending_dt_s += dt_s;
        if self.pending_dt_s <= 0.0 {
            return;
        }
        let rate = self.pending_return * self.pending_return / self.pending_dt_s;
        if self.ewma_alpha.0 != self.pending_dt_s {
            let alpha = 1.0
                - (-std::f64::consts::LN_2 * self.pending_dt_s
                    / self.config.volatility_half_life_s)
                    .exp();
            self.ewma_alpha = (self.pending_dt_s, alpha);
        }
        let alpha = self.ewma_alpha.1;
        self.ewma_variance = Some(match self.ewma_variance {
            Some(variance) => (1.0 - alpha) * variance + alpha * rate,
            None => rate,
        });
        self.pending_return = 0.0;
        self.pending_dt_s = 0.0;
    }

    #[inline(always)]
    fn push_record(&mut self, record: TickRecord) {
        if self.window.len() == self.config.tick_window {
            let oldest = &mut self.window[self.window_oldest];
            self.sums.roll(oldest, &record);
            *oldest = record;
            self.window_oldest += 1;
            if self.window_oldest == self.window.len() {
                self.window_oldest = 0;
            }
        } else {
            self.window.push(record);
            self.sums.add(&record);
        }
        // Rolling sums drift by rounding; sum the window afresh once per window length.
        self.ticks_since_resum += 1;
        if self.ticks_since_resum >= self.config.tick_window {
            self.ticks_since_resum = 0;
            let mut sums = TickRecord::default();
            let (newer, older) = self.window.split_at(self.window_oldest);
            for record in older {
                sums.add(record);
            }
            for record in newer {
                sums.add(record);
            }
            self.sums = sums;
        }
    }
}

impl Predictor {
    #[inline(always)]
    fn predict(&mut self, features: &mut Features) {
        // Score and learn from every prediction whose horizon has passed.
        while let Some(oldest) = self.pending.oldest() {
            let due = match self.horizon {
                Horizon::Updates(ticks) => features.tick_count >= oldest.tick + ticks as u64,
                Horizon::Millis(ms) => (features.time_ns - oldest.time_ns) as f64 >= ms * 1e6,
            };
            if !due {
                break;
            }
            let realised_bps = (features.mid - oldest.mid) / oldest.mid * 1e4;
            if realised_bps != 0.0 && oldest.prediction_bps != 0.0 {
                features.predictions_scored += 1;
                if realised_bps.signum() == oldest.prediction_bps.signum() {
                    self.hits += 1;
                }
                features.hit_rate = self.hits as f64 / features.predictions_scored as f64;
            }
            self.model.learn(&oldest.regressors, realised_bps);
            self.pending.drop_oldest();
        }
        // The regressors: the intercept, one imbalance per depth, then the rest over the unused
        // imbalances (every place past the rest stays 0).
        let depths = features.depth_count.min(MAX_DEPTHS);
        let mut x = [0.0; MAX_REGRESSORS];
        x[0] = 1.0;
        x[1..=MAX_DEPTHS].copy_from_slice(&features.imbalances);
        let rest = [
            features.ofi_normalized,
            features.deep_ofi_normalized,
            features.voi_normalized,
            features.trade_imbalance,
            (features.microprice - features.mid) / features.mid * 1e4,
            self.lagged_ofi_normalized,
            self.lagged_imbalance,
        ];
        for (slot, value) in x[1 + depths..].iter_mut().zip(rest) {
            *slot = value;
        }
        let prediction = self.model.predict(&x);
        features.prediction_bps = if prediction.is_finite() {
            prediction
        } else {
            0.0
        };
        let pending = self.pending.push();
        pending.regressors = x;
        pending.tick = features.tick_count;
        pending.time_ns = features.time_ns;
        pending.mid = features.mid;
        pending.prediction_bps = features.prediction_bps;
        self.lagged_ofi_normalized = features.ofi_normalized;
        self.lagged_imbalance = features.imbalances[0];
    }
}

/// The skew from the features' signals (`tanh` is not evaluated for a signal surely inside the
/// dead band, `|x| < tanh_dead_limit`: its squashed value is then exactly a zero).
#[inline(always)]
fn skew(config: &FeatureConfig, tanh_dead_limit: f64, features: &Features) -> f64 {
    let weights = config.weights;
    let band = config.dead_band;
    let deepest = features.imbalances[features.depth_count - 1];
    let banded = |signal: f64| dead_band(signal, band);
    // tanh(x) with the dead band's zero (of x's sign) when |x| is surely inside it.
    let limit = tanh_dead_limit;
    let squashed = |x: f64| {
        if x.abs() < limit {
            0.0_f64.copysign(x)
        } else {
            squash(x)
        }
    };
    let signals = [
        (weights.imbalance, features.imbalances[0]),
        (weights.deep_imbalance, deepest),
        (weights.trade_imbalance, features.trade_imbalance),
        (weights.voi, squashed(features.voi_normalized)),
        (weights.deep_ofi, squashed(features.deep_ofi_normalized)),
        (
            weights.prediction,
            squashed(features.prediction_bps / config.prediction_scale_bps),
        ),
    ];
    let skew: f64 = signals
        .iter()
        .map(|(weight, signal)| weight * banded(*signal))
        .sum();
    if skew.is_finite() {
        skew.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Replaces anything non-finite (sizes near the float limit can overflow a sum) by its neutral
/// value: prices by the mid, everything else by 0.
#[inline(always)]
fn sanitize(features: &mut Features) {
    // A sum is finite only if every term is (a sum of finite values that overflows only sends
    // us down the careful path, which then changes nothing): one test for the common case.
    // Left out: the values that are finite by construction (the normalised flows and the trade
    // imbalance go through `ratio_or_zero`, the volatility and the prediction are checked where
    // they are computed, the hit rate is a count over a positive count).
    let probe = [
        features.mid,
        features.microprice,
        features.weighted_mid,
        features.vwap,
        features.spread_bps,
        features.ofi,
        features.deep_ofi,
        features.voi,
        features.basis_bps,
        features.volatility_ewma,
        features.imbalances[0],
        features.imbalances[1],
        features.imbalances[2],
        features.imbalances[3],
    ]
    .chunks_exact(2)
    .fold([0.0; 2], |probe, pair| {
        [probe[0] + pair[0], probe[1] + pair[1]]
    });
    if (probe[0] + probe[1]).is_finite() {
        return;
    }
    let finite_or = |value: f64, neutral: f64| if value.is_finite() { value } else { neutral };
    features.mid = finite_or(features.mid, 0.0);
    let mid = features.mid;
    features.microprice = finite_or(features.microprice, mid);
    features.weighted_mid = finite_or(features.weighted_mid, mid);
    features.vwap = finite_or(features.vwap, mid);
    for value in [
        &mut features.spread_bps,
        &mut features.ofi,
        &mut features.deep_ofi,
        &mut features.ofi_normalized,
        &mut features.deep_ofi_normalized,
        &mut features.voi,
        &mut features.voi_normalized,
        &mut features.trade_imbalance,
        &mut features.basis_bps,
        &mut features.volatility,
        &mut features.volatility_ewma,
        &mut features.prediction_bps,
    ] {
        *value = finite_or(*value, 0.0);
    }
    for value in &mut features.imbalances {
        *value = finite_or(*value, 0.0);
    }
    features.hit_rate = finite_or(features.hit_rate, 0.5);
}

/// `|x|` below which `tanh(x)` is inside the dead band `band` with a wide margin (a relative
/// 1e-9 under `atanh(band)`, far more than `tanh`'s rounding), so `dead_band(tanh(x), band)` is
/// exactly a zero of `x`'s sign there. 0 (nothing skipped) for no band.
fn tanh_dead_limit(band: f64) -> f64 {
    let limit = band.atanh() * (1.0 - 1e-9);
    if limit.is_finite() && limit > 0.0 {
        limit
    } else {
        0.0
    }
}

fn levels_read(config: &FeatureConfig) -> usize {
    let deepest = config.depths.iter().copied().max().unwrap_or(0);
    deepest.max(config.ofi_levels)
}

/// `numerator / denominator`, or 0 when the denominator is not positive or the ratio is not
/// finite (an infinite denominator gives a zero or a NaN ratio: 0 either way).
#[inline]
fn ratio_or_zero(numerator: f64, denominator: f64) -> f64 {
    let value = numerator / denominator;
    if denominator > 0.0 && value.is_finite() {
        value
    } else {
        0.0
    }
}

/// The sample standard deviation of the window's log returns, times `sqrt(n / Σ dt)`.
fn window_volatility(sums: &TickRecord) -> f64 {
    let (n, dt_s) = (sums[Flow::HasReturn], sums[Flow::DtS]);
    if n < 2.0 || dt_s <= 0.0 || sums[Flow::Moved] == 0.0 {
        return 0.0;
    }
    let (log_return, log_return_sq) = (sums[Flow::LogReturn], sums[Flow::LogReturnSq]);
    let variance = ((log_return_sq - log_return * log_return / n) / (n - 1.0)).max(0.0);
    let per_second = variance * n / dt_s;
    if per_second.is_finite() {
        per_second.sqrt()
    } else {
        0.0
    }
}

/// One side's summed (level-weighted) sizes at every configured depth, from its best
/// `deepest` levels: `sizes` (contiguous, best last) then `far` (best first).
fn depth_sizes(
    config: &FeatureConfig,
    level_weights_best_last: &[f64],
    sizes: &[f64],
    far: impl ExactSizeIterator<Item = f64>,
) -> [f64; MAX_DEPTHS] {
    let depths = &config.depths;
    let mut sizes_out = [0.0; MAX_DEPTHS];
    let view_len = sizes.len() + far.len();
    let weights = &level_weights_best_last[level_weights_best_last.len() - view_len..];
    let near_weights = &weights[weights.len() - sizes.len()..];
    // Depth d is the last min(d, len) entries: sum the shallowest first, then extend.
    let mut total = 0.0;
    let mut end = sizes.len();
    let mut far = far;
    let mut far_taken = 0;
    for (slot, depth) in sizes_out.iter_mut().zip(depths) {
        let start = sizes.len().saturating_sub(*depth);
        if start < end {
            total += if config.level_decay == 0.0 {
                sum(&sizes[start..end])
            } else {
                dot(&sizes[start..end], &near_weights[start..end])
            };
            end = start;
        }
        // Past the contiguous levels (a book that keeps fewer than `deepest`): the rest
        // one level at a time, weights continuing outward.
        while sizes.len() + far_taken < *depth {
            let Some(size) = far.next() else { break };
            let rank = sizes.len() + far_taken;
            let weight = weights[weights.len() - 1 - rank];
            total += if config.level_decay == 0.0 {
                size
            } else {
                size * weight
            };
            far_taken += 1;
        }
        *slot = total;
    }
    sizes_out
}

/// The imbalance at each of the first `depth_count` depths, from both sides' reads.
fn imbalances(bids: &SideRead, asks: &SideRead, depth_count: usize, out: &mut [f64; MAX_DEPTHS]) {
    let (bids, asks) = (&bids.depth_sizes, &asks.depth_sizes);
    for (k, slot) in out.iter_mut().enumerate().take(depth_count) {
        let total = bids[k] + asks[k];
        *slot = if total > 0.0 {
            (bids[k] - asks[k]) / total
        } else {
            0.0
        };
    }
}

/// A side's summed size over its best `depth` levels and their size-weighted ticks.
fn side_vwap(book: &OrderBook, side: Side, depth: usize) -> (f64, f64) {
    let view = book.top_levels(side, depth);
    let mut size = 0.0;
    let mut weighted_ticks = 0.0;
    for rank in 0..view.len() {
        let (ticks, level_size) = view.level(rank);
        size += level_size;
        weighted_ticks += ticks as f64 * level_size;
    }
    (size, weighted_ticks)
}

/// Each side's VWAP over the best `depths[0]` levels, weighted by the other side's size.
fn weighted_mid(bids: &SideRead, asks: &SideRead, grid: &PriceGrid, mid: f64) -> f64 {
    // Size-weighted average ticks per side; one conversion to price at the end.
    let (bid_size, bid_ticks) = (bids.vwap_size, bids.vwap_ticks);
    let (ask_size, ask_ticks) = (asks.vwap_size, asks.vwap_ticks);
    if bid_size > 0.0 && ask_size > 0.0 {
        let bid_vwap = bid_ticks / bid_size;
        let ask_vwap = ask_ticks / ask_size;
        (bid_vwap * ask_size + ask_vwap * bid_size) / (bid_size + ask_size) * grid.tick_size()
    } else {
        mid
    }
}

#[cfg(test)]
mod tests;

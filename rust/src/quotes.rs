//! The quote generator: the bid and ask ladder of one symbol from the market inputs, by one of
//! three models, then fitted to the instrument's rules (tick and lot grids, minimum size and
//! notional), kept post-only safe and inside an optional price band.
//!
//! Formulas and sources: `docs/quoting.md` (and `shared/reference/models.md`).

use crate::error::{CoreError, CoreResult};
use crate::price::PriceGrid;

/// The venue's rules for one instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstrumentRules {
    /// Price grid (`PRICE_FILTER.tickSize`).
    pub price_grid: PriceGrid,
    /// Size grid (`LOT_SIZE.stepSize`).
    pub lot_grid: PriceGrid,
    /// Smallest order size (`LOT_SIZE.minQty`).
    pub min_size: f64,
    /// Smallest order notional, price × size (`MIN_NOTIONAL.notional`).
    pub min_notional: f64,
}

impl InstrumentRules {
    /// Rules from the tick size, lot step, minimum size and minimum notional.
    pub fn new(
        price_grid: PriceGrid,
        lot_grid: PriceGrid,
        min_size: f64,
        min_notional: f64,
    ) -> CoreResult<Self> {
        for (name, value) in [("min_size", min_size), ("min_notional", min_notional)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::InvalidParameter(format!(
                    "{name} must be finite and >= 0, got {value}"
                )));
            }
        }
        Ok(Self {
            price_grid,
            lot_grid,
            min_size,
            min_notional,
        })
    }

    /// The size rounded down to the lot grid (0 when below one lot).
    #[must_use]
    pub fn round_size_down(&self, size: f64) -> f64 {
        if !(size.is_finite() && size > 0.0) {
            return 0.0;
        }
        self.lot_grid.price(self.lot_grid.ticks_at_or_below(size))
    }
}

/// Which model places the quotes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuoteModel {
    /// The original bot's ladder.
    Ladder(LadderParams),
    /// Avellaneda–Stoikov (2008).
    AvellanedaStoikov(AvellanedaStoikovParams),
    /// Guéant–Lehalle–Fernandez-Tapia (2013) closed-form approximation.
    Glft(GlftParams),
}

/// Where the ladder is centred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// `(bid + ask) / 2`.
    Mid,
    /// The book's microprice.
    Microprice,
}

/// Parameters of the original bot's ladder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LadderParams {
    /// Base half-spread of the innermost level, in bps of the anchor (the seed's `bps`).
    pub bps: f64,
    /// Volatility widening: the half-spread is multiplied by `1 + vol_widening × σ_bps`, with
    /// `σ_bps` the volatility per √second in bps.
    pub vol_widening: f64,
    /// Where the ladder is centred.
    pub anchor: Anchor,
    /// Levels per side (the seed's `orders_per_side`).
    pub orders_per_side: usize,
    /// The outermost level sits this many half-spreads from the centre (the seed's
    /// `final_order_distance`); levels are spaced geometrically in between.
    pub final_order_distance: f64,
    /// Leverage: the notional budget is `balance × leverage`.
    pub leverage: f64,
    /// Share of the notional budget quoted on each side, split over its levels.
    pub size_fraction: f64,
    /// `c` in the inventory adjustment `skew' = clip(skew·(1 − |f|) − c·f)`, `f = sign(Δ)·√|Δ|`.
    pub inventory_adjustment: f64,
    /// A side stops quoting when the inventory ratio `Δ` reaches this on its side.
    pub inventory_limit: f64,
    /// How far the skew moves the centre, in half-spreads.
    pub skew_shift: f64,
}

impl Default for LadderParams {
    fn default() -> Self {
        Self {
            bps: 5.0,
            vol_widening: 0.0,
            anchor: Anchor::Mid,
            orders_per_side: 5,
            final_order_distance: 10.0,
            leverage: 1.0,
            size_fraction: 0.1,
            inventory_adjustment: 0.63,
            inventory_limit: 1.0,
            skew_shift: 0.5,
        }
    }
}

/// Parameters of Avellaneda–Stoikov.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvellanedaStoikovParams {
    /// Risk aversion γ.
    pub gamma: f64,
    /// Order-arrival decay κ (per unit of price distance).
    pub kappa: f64,
    /// Finite horizon `T` (same time unit as σ²); with `rolling`, the constant time left.
    pub horizon: f64,
    /// Continuous trading: `T − t` is always `horizon`.
    pub rolling: bool,
    /// Size of each quote.
    pub order_size: f64,
    /// Levels per side beyond the first, each `level_spacing_bps` further out.
    pub orders_per_side: usize,
    /// Spacing of further levels, bps of the mid.
    pub level_spacing_bps: f64,
    /// Inventory bound: a side stops when the position reaches it.
    pub max_inventory: f64,
}

/// Parameters of GLFT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlftParams {
    /// Risk aversion γ (ξ = γ, as in the original).
    pub gamma: f64,
    /// Order-arrival decay κ.
    pub kappa: f64,
    /// Order-arrival intensity scale A.
    pub arrival_rate: f64,
    /// Size of each quote.
    pub order_size: f64,
    /// Levels per side beyond the first, each `level_spacing_bps` further out.
    pub orders_per_side: usize,
    /// Spacing of further levels, bps of the mid.
    pub level_spacing_bps: f64,
    /// Inventory bound Q: a side stops when the position reaches it.
    pub max_inventory: f64,
}

/// The market and account inputs of one quote.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QuoteInputs {
    /// Best bid price (0 when unknown).
    pub best_bid: f64,
    /// Best ask price (0 when unknown).
    pub best_ask: f64,
    /// Mid price (required).
    pub mid: f64,
    /// Microprice (defaults to the mid when 0).
    pub microprice: f64,
    /// Position (signed, base units).
    pub inventory: f64,
    /// Volatility: per √second of log price for the ladder (as the feature engine reports it);
    /// in price units per √(time unit) for Avellaneda–Stoikov and GLFT.
    pub volatility: f64,
    /// Skew in [−1, 1] from the feature engine.
    pub skew: f64,
    /// Account balance in the quote currency (ladder sizing).
    pub balance: f64,
    /// Time left to the horizon (Avellaneda–Stoikov, finite horizon).
    pub time_left: f64,
    /// Reference price for the price band (0: no band).
    pub reference_price: f64,
}

/// One quote: price and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    /// Price on the tick grid.
    pub price: f64,
    /// Size on the lot grid.
    pub size: f64,
}

/// Both sides of a quote ladder, best first on each side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuoteLadder {
    /// Bids from the highest price down.
    pub bids: Vec<Quote>,
    /// Asks from the lowest price up.
    pub asks: Vec<Quote>,
    /// The model's centre (reservation price for AS and GLFT).
    pub reservation_price: f64,
    /// The model's half-spread at the innermost level, in price.
    pub half_spread: f64,
}

/// The quote generator of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteGenerator {
    model: QuoteModel,
    rules: InstrumentRules,
    /// Allowed distance of any quote from the reference price, as a fraction (0: no band).
    price_band: f64,
}

fn check_positive(name: &str, value: f64) -> CoreResult<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "{name} must be positive and finite, got {value}"
        )))
    }
}

/// The parameters Avellaneda–Stoikov and GLFT share.
fn check_inventory_model(
    gamma: f64,
    kappa: f64,
    order_size: f64,
    level_spacing_bps: f64,
    max_inventory: f64,
    orders_per_side: usize,
) -> CoreResult<()> {
    check_positive("gamma", gamma)?;
    check_positive("kappa", kappa)?;
    check_positive("order_size", order_size)?;
    check_non_negative("level_spacing_bps", level_spacing_bps)?;
    check_positive("max_inventory", max_inventory)?;
    check_levels(orders_per_side)
}

fn check_levels(orders_per_side: usize) -> CoreResult<()> {
    if (1..=100).contains(&orders_per_side) {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "orders_per_side must be 1 to 100, got {orders_per_side}"
        )))
    }
}

fn check_non_negative(name: &str, value: f64) -> CoreResult<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

impl QuoteModel {
    /// Checks every parameter's range.
    pub fn validate(&self) -> CoreResult<()> {
        match self {
            Self::Ladder(p) => {
                check_positive("bps", p.bps)?;
                check_non_negative("vol_widening", p.vol_widening)?;
                check_levels(p.orders_per_side)?;
                if !(p.final_order_distance.is_finite() && p.final_order_distance >= 1.0) {
                    return Err(CoreError::InvalidParameter(format!(
                        "final_order_distance must be >= 1 (in half-spreads), got {}",
                        p.final_order_distance
                    )));
                }
                check_positive("leverage", p.leverage)?;
                check_positive("size_fraction", p.size_fraction)?;
                check_non_negative("inventory_adjustment", p.inventory_adjustment)?;
                check_positive("inventory_limit", p.inventory_limit)?;
                check_non_negative("skew_shift", p.skew_shift)?;
            }
            Self::AvellanedaStoikov(p) => {
                check_non_negative("horizon", p.horizon)?;
                check_inventory_model(
                    p.gamma,
                    p.kappa,
                    p.order_size,
                    p.level_spacing_bps,
                    p.max_inventory,
                    p.orders_per_side,
                )?;
            }
            Self::Glft(p) => {
                check_positive("arrival_rate", p.arrival_rate)?;
                check_inventory_model(
                    p.gamma,
                    p.kappa,
                    p.order_size,
                    p.level_spacing_bps,
                    p.max_inventory,
                    p.orders_per_side,
                )?;
            }
        }
        Ok(())
    }
}

/// Avellaneda–Stoikov reservation price `r = S − q γ σ² (T − t)`.
#[must_use]
pub fn reservation_price(
    mid: f64,
    inventory: f64,
    gamma: f64,
    volatility: f64,
    time_left: f64,
) -> f64 {
    mid - inventory * gamma * volatility * volatility * time_left
}

/// Avellaneda–Stoikov total optimal spread `γ σ² (T − t) + (2/γ) ln(1 + γ/κ)`.
#[must_use]
pub fn optimal_spread(gamma: f64, kappa: f64, volatility: f64, time_left: f64) -> f64 {
    gamma * volatility * volatility * time_left + (2.0 / gamma) * (1.0 + gamma / kappa).ln()
}

/// GLFT half-spread and inventory skew per unit of inventory:
/// `c1 = (1/γ) ln(1 + γ/κ)`, `c2 = sqrt(γ/(2Aκ) · (1 + γ/κ)^(1 + κ/γ))`,
/// half-spread `c1 + σ c2 / 2`, skew `σ c2`.
#[must_use]
pub fn glft_half_spread_and_skew(
    gamma: f64,
    kappa: f64,
    arrival_rate: f64,
    volatility: f64,
) -> (f64, f64) {
    let c1 = (1.0 + gamma / kappa).ln() / gamma;
    let c2 = (gamma / (2.0 * arrival_rate * kappa)
        * (1.0 + gamma / kappa).powf(1.0 + kappa / gamma))
    .sqrt();
    (c1 + volatility * c2 / 2.0, volatility * c2)
}

/// The origin project's inventory adjustment of the skew: `f = sign(Δ)·√|Δ|`,
/// `skew' = clip(skew·(1 − |f|) − c·f, −1, 1)`.
#[must_use]
pub fn inventory_adjusted_skew(skew: f64, inventory_ratio: f64, adjustment: f64) -> f64 {
    let f = inventory_ratio.signum() * inventory_ratio.abs().sqrt();
    let f = if inventory_ratio == 0.0 {
        0.0
    } else {
        f.clamp(-1.0, 1.0)
    };
    (skew * (1.0 - f.abs()) - adjustment * f).clamp(-1.0, 1.0)
}

impl QuoteGenerator {
    /// A generator for one instrument; `price_band` is the allowed fractional distance of any
    /// quote from `QuoteInputs::reference_price` (0 for none).
    pub fn new(model: QuoteModel, rules: InstrumentRules, price_band: f64) -> CoreResult<Self> {
        model.validate()?;
        check_non_negative("price_band", price_band)?;
        Ok(Self {
            model,
            rules,
            price_band,
        })
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &QuoteModel {
        &self.model
    }

    /// The instrument rules.
    #[must_use]
    pub fn rules(&self) -> &InstrumentRules {
        &self.rules
    }

    /// The price band.
    #[must_use]
    pub fn price_band(&self) -> f64 {
        self.price_band
    }

    /// Replaces the model (a hot reload); nothing changes if it is invalid.
    pub fn set_model(&mut self, model: QuoteModel) -> CoreResult<()> {
        model.validate()?;
        self.model = model;
        Ok(())
    }

    /// The ladder for these inputs, fitted to the instrument's rules. An input that makes no
    /// sense (no mid, a NaN) gives an error, never a quote.
    pub fn quote(&self, inputs: &QuoteInputs) -> CoreResult<QuoteLadder> {
        let mut ladder = QuoteLadder::default();
        self.quote_into(inputs, &mut ladder)?;
        Ok(ladder)
    }

    /// [`Self::quote`] into `ladder`, reusing its lists (the per-tick path allocates nothing).
    /// On an error `ladder` is unchanged.
    pub fn quote_into(&self, inputs: &QuoteInputs, ladder: &mut QuoteLadder) -> CoreResult<()> {
        check_inputs(inputs)?;
        ladder.bids.clear();
        ladder.asks.clear();
        match &self.model {
            QuoteModel::Ladder(p) => {
                let shape = LadderShape::new(p, inputs);
                if shape.bids_open {
                    self.fit(
                        shape.side(-1.0, shape.bid_size),
                        true,
                        inputs,
                        &mut ladder.bids,
                    );
                }
                if shape.asks_open {
                    self.fit(
                        shape.side(1.0, shape.ask_size),
                        false,
                        inputs,
                        &mut ladder.asks,
                    );
                }
                ladder.reservation_price = shape.centre;
                ladder.half_spread = shape.half_spread;
            }
            QuoteModel::AvellanedaStoikov(p) => {
                let time_left = if p.rolling {
                    p.horizon
                } else {
                    inputs.time_left.min(p.horizon)
                };
                let r = reservation_price(
                    inputs.mid,
                    inputs.inventory,
                    p.gamma,
                    inputs.volatility,
                    time_left,
                );
                let half = optimal_spread(p.gamma, p.kappa, inputs.volatility, time_left) / 2.0;
                let levels = EvenLevels {
                    step: inputs.mid * p.level_spacing_bps / 1e4,
                    size: p.order_size,
                    levels: p.orders_per_side,
                };
                if inputs.inventory < p.max_inventory {
                    self.fit(levels.side(r - half, -1.0), true, inputs, &mut ladder.bids);
                }
                if inputs.inventory > -p.max_inventory {
                    self.fit(levels.side(r + half, 1.0), false, inputs, &mut ladder.asks);
                }
                ladder.reservation_price = r;
                ladder.half_spread = half;
            }
            QuoteModel::Glft(p) => {
                let (half, skew) =
                    glft_half_spread_and_skew(p.gamma, p.kappa, p.arrival_rate, inputs.volatility);
                let bid = inputs.mid - (half + skew * inputs.inventory);
                let ask = inputs.mid + (half - skew * inputs.inventory);
                let levels = EvenLevels {
                    step: inputs.mid * p.level_spacing_bps / 1e4,
                    size: p.order_size,
                    levels: p.orders_per_side,
                };
                if inputs.inventory < p.max_inventory {
                    self.fit(levels.side(bid, -1.0), true, inputs, &mut ladder.bids);
                }
                if inputs.inventory > -p.max_inventory {
                    self.fit(levels.side(ask, 1.0), false, inputs, &mut ladder.asks);
                }
                ladder.reservation_price = (bid + ask) / 2.0;
                ladder.half_spread = half;
            }
        }
        Ok(())
    }

    /// Rounds to the grids (bids down, asks up, sizes down), keeps post-only safety and the
    /// price band, drops what is below the minimum size or notional, and merges levels that
    /// round to one price. The result, appended to `out`, is strictly monotone, best first.
    fn fit(
        &self,
        raw: impl Iterator<Item = Quote>,
        is_bid: bool,
        inputs: &QuoteInputs,
        out: &mut Vec<Quote>,
    ) {
        let grid = &self.rules.price_grid;
        let tick_size = grid.tick_size();
        // Post-only: a bid never at or above the best ask, an ask never at or below the best
        // bid. The limit is the same for every level of the side.
        let post_only_limit = if is_bid && inputs.best_ask > 0.0 {
            Some(grid.ticks_at_or_above(inputs.best_ask) - 1)
        } else if !is_bid && inputs.best_bid > 0.0 {
            Some(grid.ticks_at_or_below(inputs.best_bid) + 1)
        } else {
            None
        };
        let banded = self.price_band > 0.0 && inputs.reference_price > 0.0;
        // The models give one size to every level of a side: round it to the lot grid once.
        let mut last_rounding: Option<(u64, f64)> = None;
        // Room for every level at once (the levels' iterators know their count as an upper bound).
        let (fewest, most) = raw.size_hint();
        out.reserve(most.unwrap_or(fewest));
        for quote in raw {
            if !(quote.price.is_finite()
                && quote.price > 0.0
                && quote.size.is_finite()
                && quote.size > 0.0)
            {
                continue;
            }
            let mut ticks = if is_bid {
                grid.ticks_at_or_below(quote.price)
            } else {
                grid.ticks_at_or_above(quote.price)
            };
            match post_only_limit {
                Some(limit) if is_bid => ticks = ticks.min(limit),
                Some(limit) => ticks = ticks.max(limit),
                None => {}
            }
            if ticks <= 0 {
                continue;
            }
            let price = grid.price(ticks);
            if banded && (price / inputs.reference_price - 1.0).abs() > self.price_band + 1e-12 {
                continue;
            }
            let size = match last_rounding {
                Some((raw_size, size)) if raw_size == quote.size.to_bits() => size,
                _ => {
                    let size = self.rules.round_size_down(quote.size);
                    last_rounding = Some((quote.size.to_bits(), size));
                    size
                }
            };
            if size <= 0.0 || size < self.rules.min_size || price * size < self.rules.min_notional {
                continue;
            }
            match out.last_mut() {
                Some(last) if (last.price - price).abs() < tick_size / 2.0 => {
                    last.size = self.rules.round_size_down(last.size + size);
                }
                Some(last) if (is_bid && price > last.price) || (!is_bid && price < last.price) => {
                    // Out of order after clamping (post-only pushed an inner level outward):
                    // keep the ladder monotone by dropping it.
                }
                _ => out.push(Quote { price, size }),
            }
        }
    }
}

/// Checks the inputs every model reads.
fn check_inputs(inputs: &QuoteInputs) -> CoreResult<()> {
    check_positive("mid", inputs.mid)?;
    for (name, value) in [
        ("best_bid", inputs.best_bid),
        ("best_ask", inputs.best_ask),
        ("microprice", inputs.microprice),
        ("balance", inputs.balance),
        ("time_left", inputs.time_left),
        ("reference_price", inputs.reference_price),
        ("volatility", inputs.volatility),
    ] {
        check_non_negative(name, value)?;
    }
    if !inputs.inventory.is_finite() {
        return Err(CoreError::InvalidParameter(format!(
            "inventory must be finite, got {}",
            inputs.inventory
        )));
    }
    if !inputs.skew.is_finite() {
        return Err(CoreError::InvalidParameter(format!(
            "skew must be finite, got {}",
            inputs.skew
        )));
    }
    Ok(())
}

/// Avellaneda–Stoikov and GLFT levels: `levels` quotes of one size, `step` apart from the
/// innermost.
struct EvenLevels {
    step: f64,
    size: f64,
    levels: usize,
}

impl EvenLevels {
    /// One side's raw quotes, from `start` outward (`direction` −1 for bids, +1 for asks).
    fn side(&self, start: f64, direction: f64) -> impl Iterator<Item = Quote> {
        let (step, size) = (self.step, self.size);
        (0..self.levels).map(move |level| Quote {
            price: start + direction * step * level as f64,
            size,
        })
    }
}

/// The original bot's ladder before the instrument's rules: centre, half-spread, geometric
/// spacing, sizes, and which sides quote at all.
struct LadderShape {
    centre: f64,
    half_spread: f64,
    /// Each level is this many times further from the centre than the one inside it.
    ratio: f64,
    levels: usize,
    bid_size: f64,
    ask_size: f64,
    bids_open: bool,
    asks_open: bool,
}

impl LadderShape {
    fn new(p: &LadderParams, inputs: &QuoteInputs) -> Self {
        let anchor = if p.anchor == Anchor::Microprice && inputs.microprice > 0.0 {
            inputs.microprice
        } else {
            inputs.mid
        };
        let volatility_bps = inputs.volatility * 1e4;
        let half_spread = anchor * p.bps / 1e4 * (1.0 + p.vol_widening * volatility_bps);
        let budget = inputs.balance * p.leverage;
        let inventory_ratio = if budget > 0.0 {
            inputs.inventory * inputs.mid / budget
        } else {
            0.0
        };
        let skew = inventory_adjusted_skew(
            inputs.skew.clamp(-1.0, 1.0),
            inventory_ratio,
            p.inventory_adjustment,
        );
        let centre = anchor + skew * p.skew_shift * half_spread;
        // Geometric spacing from 1 to final_order_distance half-spreads.
        let levels = p.orders_per_side;
        let ratio = if levels > 1 {
            p.final_order_distance.powf(1.0 / (levels - 1) as f64)
        } else {
            1.0
        };
        let side_size = budget * p.size_fraction / anchor / levels as f64;
        // Written as "not at the limit" so that a NaN ratio quotes both sides, as it always has.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let (bids_open, asks_open) = (
            !(inventory_ratio >= p.inventory_limit),
            !(inventory_ratio <= -p.inventory_limit),
        );
        Self {
            centre,
            half_spread,
            ratio,
            levels,
            bid_size: side_size * (1.0 + skew),
            ask_size: side_size * (1.0 - skew),
            bids_open,
            asks_open,
        }
    }

    /// One side's raw quotes from the innermost out (`direction` −1 for bids, +1 for asks).
    fn side(&self, direction: f64, size: f64) -> impl Iterator<Item = Quote> {
        let (centre, ratio) = (self.centre, self.ratio);
        (0..self.levels).scan(self.half_spread, move |distance, _| {
            let quote = Quote {
                price: centre + direction * *distance,
                size,
            };
            *distance *= ratio;
            Some(quote)
        })
    }
}

#[cfg(test)]
mod tests;

//! Quote models against their formulas, and the rules every ladder obeys.

use proptest::prelude::*;

use super::*;

fn rules() -> InstrumentRules {
    InstrumentRules::new(
        PriceGrid::from_text("0.1").unwrap(),
        PriceGrid::from_text("0.001").unwrap(),
        0.001,
        5.0,
    )
    .unwrap()
}

fn inputs(mid: f64) -> QuoteInputs {
    QuoteInputs {
        best_bid: mid - 0.05,
        best_ask: mid + 0.05,
        mid,
        microprice: mid,
        balance: 10_000.0,
        ..QuoteInputs::default()
    }
}

#[test]
fn avellaneda_stoikov_matches_the_paper() {
    // S = 100, q = 2, γ = 0.1, σ = 2, T − t = 0.5, κ = 1.5
    let r = reservation_price(100.0, 2.0, 0.1, 2.0, 0.5);
    assert!((r - (100.0 - 2.0 * 0.1 * 4.0 * 0.5)).abs() < 1e-12);
    let spread = optimal_spread(0.1, 1.5, 2.0, 0.5);
    assert!((spread - (0.1 * 4.0 * 0.5 + 20.0 * (1.0_f64 + 0.1 / 1.5).ln())).abs() < 1e-12);
    let model = QuoteModel::AvellanedaStoikov(AvellanedaStoikovParams {
        gamma: 0.1,
        kappa: 1.5,
        horizon: 1.0,
        rolling: false,
        order_size: 1.0,
        orders_per_side: 1,
        level_spacing_bps: 0.0,
        max_inventory: 10.0,
    });
    let generator = QuoteGenerator::new(model, rules(), 0.0).unwrap();
    let ladder = generator
        .quote(&QuoteInputs {
            best_bid: 0.0,
            best_ask: 0.0,
            inventory: 2.0,
            volatility: 2.0,
            time_left: 0.5,
            ..inputs(100.0)
        })
        .unwrap();
    assert!((ladder.reservation_price - r).abs() < 1e-12);
    let bid = r - spread / 2.0;
    let ask = r + spread / 2.0;
    assert_eq!(ladder.bids[0].price, (bid * 10.0).floor() / 10.0);
    assert_eq!(ladder.asks[0].price, (ask * 10.0).ceil() / 10.0);
}

#[test]
fn glft_matches_its_closed_form_and_bounds() {
    let (gamma, kappa, a, sigma) = (0.05, 1.2, 140.0, 2.0);
    let c1 = (1.0 / gamma) * (1.0_f64 + gamma / kappa).ln();
    let c2 =
        (gamma / (2.0 * a * kappa) * (1.0_f64 + gamma / kappa).powf(1.0 + kappa / gamma)).sqrt();
    let (half, skew) = glft_half_spread_and_skew(gamma, kappa, a, sigma);
    assert!((half - (c1 + sigma * c2 / 2.0)).abs() < 1e-12);
    assert!((skew - sigma * c2).abs() < 1e-12);
    let params = GlftParams {
        gamma,
        kappa,
        arrival_rate: a,
        order_size: 1.0,
        orders_per_side: 1,
        level_spacing_bps: 0.0,
        max_inventory: 3.0,
    };
    let generator = QuoteGenerator::new(QuoteModel::Glft(params), rules(), 0.0).unwrap();
    let at = |q: f64| {
        generator
            .quote(&QuoteInputs {
                best_bid: 0.0,
                best_ask: 0.0,
                inventory: q,
                volatility: sigma,
                ..inputs(100.0)
            })
            .unwrap()
    };
    let flat = at(0.0);
    assert_eq!(flat.bids[0].price, ((100.0 - half) * 10.0).floor() / 10.0);
    let long = at(3.0);
    assert!(long.bids.is_empty(), "no bids at the inventory bound");
    assert!(!long.asks.is_empty());
    assert!(at(-3.0).asks.is_empty());
}

#[test]
fn ladder_spacing_sizes_and_inventory() {
    let params = LadderParams {
        bps: 10.0,
        orders_per_side: 3,
        final_order_distance: 4.0,
        leverage: 2.0,
        size_fraction: 0.5,
        ..LadderParams::default()
    };
    let generator = QuoteGenerator::new(QuoteModel::Ladder(params), rules(), 0.0).unwrap();
    let ladder = generator.quote(&inputs(1000.0)).unwrap();
    // half-spread 1.0; distances 1, 2, 4 (geometric to 4 half-spreads)
    let bids: Vec<f64> = ladder.bids.iter().map(|q| q.price).collect();
    let asks: Vec<f64> = ladder.asks.iter().map(|q| q.price).collect();
    assert_eq!(bids, vec![999.0, 998.0, 996.0]);
    assert_eq!(asks, vec![1001.0, 1002.0, 1004.0]);
    // budget 10_000 × 2 × 0.5 / 1000 / 3 = 3.333 per level
    assert!(ladder.bids.iter().all(|q| q.size == 3.333));
    // Long at the limit: no bids; the inventory-adjusted skew is negative, so asks grow (× (1 − skew)).
    let long = generator
        .quote(&QuoteInputs {
            inventory: 20.0,
            ..inputs(1000.0)
        })
        .unwrap();
    assert!(long.bids.is_empty());
    assert!(long.asks[0].size > 3.333);
    assert!(long.asks[0].price < 1001.0, "the centre moves down to sell");
}

#[test]
fn inventory_adjustment_formula() {
    assert_eq!(inventory_adjusted_skew(0.5, 0.0, 0.63), 0.5);
    let f = 0.25_f64.sqrt();
    assert!(
        (inventory_adjusted_skew(0.5, 0.25, 0.63) - (0.5 * (1.0 - f) - 0.63 * f)).abs() < 1e-15
    );
    assert_eq!(inventory_adjusted_skew(1.0, -4.0, 0.63), 0.63);
}

#[test]
fn post_only_band_and_minimums() {
    let params = LadderParams {
        bps: 0.1,
        orders_per_side: 2,
        final_order_distance: 2.0,
        ..LadderParams::default()
    };
    let generator = QuoteGenerator::new(QuoteModel::Ladder(params), rules(), 0.001).unwrap();
    // A wide book: the quotes would sit inside it; the innermost stays off the touch.
    let quotes = generator
        .quote(&QuoteInputs {
            best_bid: 100.0,
            best_ask: 100.1,
            mid: 100.05,
            microprice: 100.05,
            balance: 100_000.0,
            reference_price: 100.05,
            ..QuoteInputs::default()
        })
        .unwrap();
    assert!(quotes.bids.iter().all(|q| q.price < 100.1));
    assert!(quotes.asks.iter().all(|q| q.price > 100.0));
    // Price band 0.1 %: nothing further than 0.1 % from the reference.
    let far = generator
        .quote(&QuoteInputs {
            reference_price: 90.0,
            ..inputs(100.0)
        })
        .unwrap();
    assert!(far.bids.is_empty() && far.asks.is_empty());
    // Minimum notional 5: a tiny balance quotes nothing.
    let tiny = generator
        .quote(&QuoteInputs {
            balance: 1.0,
            ..inputs(100.0)
        })
        .unwrap();
    assert!(tiny.bids.is_empty() && tiny.asks.is_empty());
    assert!(generator
        .quote(&QuoteInputs {
            mid: f64::NAN,
            ..inputs(100.0)
        })
        .is_err());
    assert!(generator
        .quote(&QuoteInputs {
            skew: f64::INFINITY,
            ..inputs(100.0)
        })
        .is_err());
}

#[test]
fn post_only_clamps_a_quote_that_would_take() {
    // A short inventory pulls the Avellaneda–Stoikov reservation price 4 above the mid
    // (r = S − qγσ²T = 100.05 + 10·0.1·4·1), so the raw bid (~103.2) sits above the best ask: it
    // must come back to one tick under the ask, and the ask stays above the bid.
    let model = QuoteModel::AvellanedaStoikov(AvellanedaStoikovParams {
        gamma: 0.1,
        kappa: 1.5,
        horizon: 1.0,
        rolling: true,
        order_size: 1.0,
        orders_per_side: 1,
        level_spacing_bps: 0.0,
        max_inventory: 100.0,
    });
    let generator = QuoteGenerator::new(model, rules(), 0.0).unwrap();
    let ladder = generator
        .quote(&QuoteInputs {
            best_bid: 100.0,
            best_ask: 100.1,
            mid: 100.05,
            microprice: 100.05,
            inventory: -10.0,
            volatility: 2.0,
            ..QuoteInputs::default()
        })
        .unwrap();
    assert!(
        ladder.reservation_price - 0.5 * optimal_spread(0.1, 1.5, 2.0, 1.0) > 100.1,
        "the raw bid would take"
    );
    assert_eq!(ladder.bids[0].price, 100.0);
    assert!(ladder.asks[0].price > 100.0);
    // The mirror case: a long inventory pushes the raw ask under the best bid.
    let ladder = generator
        .quote(&QuoteInputs {
            best_bid: 100.0,
            best_ask: 100.1,
            mid: 100.05,
            microprice: 100.05,
            inventory: 10.0,
            volatility: 2.0,
            ..QuoteInputs::default()
        })
        .unwrap();
    assert_eq!(ladder.asks[0].price, 100.1);
    assert!(ladder.bids[0].price < 100.1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any ladder: on the grids, monotone, never crossing the book, within budget.
    #[test]
    fn every_ladder_obeys_the_rules(
        mid in 10.0_f64..100_000.0,
        spread_ticks in 1_i64..50,
        bps in 0.1_f64..100.0,
        levels in 1_usize..10,
        distance in 1.0_f64..20.0,
        skew in -1.0_f64..1.0,
        inventory in -5.0_f64..5.0,
        volatility in 0.0_f64..0.01,
        balance in 0.0_f64..1_000_000.0,
    ) {
        let rules = rules();
        let best_bid = (mid * 10.0).floor() / 10.0;
        let best_ask = best_bid + spread_ticks as f64 / 10.0;
        let mid = (best_bid + best_ask) / 2.0;
        let params = LadderParams { bps, orders_per_side: levels, final_order_distance: distance, vol_widening: 1.0, leverage: 3.0, ..LadderParams::default() };
        let generator = QuoteGenerator::new(QuoteModel::Ladder(params), rules, 0.0).unwrap();
        let ladder = generator.quote(&QuoteInputs { best_bid, best_ask, mid, microprice: mid, inventory, volatility, skew, balance, ..QuoteInputs::default() }).unwrap();
        let grid = rules.price_grid;
        let budget = balance * 3.0 * 0.1 / mid * 2.0 + 1e-9;
        for (side, quotes) in [(true, &ladder.bids), (false, &ladder.asks)] {
            for pair in quotes.windows(2) {
                if side { prop_assert!(pair[0].price > pair[1].price); } else { prop_assert!(pair[0].price < pair[1].price); }
            }
            let total: f64 = quotes.iter().map(|q| q.size).sum();
            prop_assert!(total <= budget, "size {} over budget {}", total, budget);
            for quote in quotes {
                let ticks = grid.ticks_at_or_below(quote.price);
                prop_assert_eq!(grid.price(ticks), quote.price, "price on the tick grid");
                let lots = rules.lot_grid.ticks_at_or_below(quote.size);
                prop_assert_eq!(rules.lot_grid.price(lots), quote.size, "size on the lot grid");
                prop_assert!(quote.price * quote.size >= 5.0);
                if side { prop_assert!(quote.price < best_ask); } else { prop_assert!(quote.price > best_bid); }
            }
        }
    }
}

/// The quote generator as it was before the quote was fitted in one pass without the raw
/// lists (the post-only limit and the size rounding worked out per level): the reference that
/// [`QuoteGenerator::quote`] must match bit for bit.
struct ReferenceGenerator<'a>(&'a QuoteGenerator);

impl std::ops::Deref for ReferenceGenerator<'_> {
    type Target = QuoteGenerator;
    fn deref(&self) -> &QuoteGenerator {
        self.0
    }
}

impl ReferenceGenerator<'_> {
    fn quote(&self, inputs: &QuoteInputs) -> CoreResult<QuoteLadder> {
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
        let (raw_bids, raw_asks, reservation, half_spread) = match &self.model {
            QuoteModel::Ladder(p) => Self::ladder(p, inputs),
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
                let (bids, asks) = Self::bounded_levels(
                    r - half,
                    r + half,
                    inputs.mid,
                    p.order_size,
                    p.orders_per_side,
                    p.level_spacing_bps,
                    inputs.inventory,
                    p.max_inventory,
                );
                (bids, asks, r, half)
            }
            QuoteModel::Glft(p) => {
                let (half, skew) =
                    glft_half_spread_and_skew(p.gamma, p.kappa, p.arrival_rate, inputs.volatility);
                let bid = inputs.mid - (half + skew * inputs.inventory);
                let ask = inputs.mid + (half - skew * inputs.inventory);
                let (bids, asks) = Self::bounded_levels(
                    bid,
                    ask,
                    inputs.mid,
                    p.order_size,
                    p.orders_per_side,
                    p.level_spacing_bps,
                    inputs.inventory,
                    p.max_inventory,
                );
                (bids, asks, (bid + ask) / 2.0, half)
            }
        };
        Ok(QuoteLadder {
            bids: self.fit(&raw_bids, true, inputs),
            asks: self.fit(&raw_asks, false, inputs),
            reservation_price: reservation,
            half_spread,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn bounded_levels(
        bid: f64,
        ask: f64,
        mid: f64,
        size: f64,
        levels: usize,
        spacing_bps: f64,
        inventory: f64,
        max_inventory: f64,
    ) -> (Vec<Quote>, Vec<Quote>) {
        let step = mid * spacing_bps / 1e4;
        let side = |start: f64, direction: f64| -> Vec<Quote> {
            (0..levels)
                .map(|level| Quote {
                    price: start + direction * step * level as f64,
                    size,
                })
                .collect()
        };
        let bids = if inventory >= max_inventory {
            Vec::new()
        } else {
            side(bid, -1.0)
        };
        let asks = if inventory <= -max_inventory {
            Vec::new()
        } else {
            side(ask, 1.0)
        };
        (bids, asks)
    }

    fn ladder(p: &LadderParams, inputs: &QuoteInputs) -> (Vec<Quote>, Vec<Quote>, f64, f64) {
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
        let bid_size = side_size * (1.0 + skew);
        let ask_size = side_size * (1.0 - skew);
        let mut distance = half_spread;
        let mut bids = Vec::with_capacity(levels);
        let mut asks = Vec::with_capacity(levels);
        for _ in 0..levels {
            bids.push(Quote {
                price: centre - distance,
                size: bid_size,
            });
            asks.push(Quote {
                price: centre + distance,
                size: ask_size,
            });
            distance *= ratio;
        }
        if inventory_ratio >= p.inventory_limit {
            bids.clear();
        }
        if inventory_ratio <= -p.inventory_limit {
            asks.clear();
        }
        (bids, asks, centre, half_spread)
    }

    // Rounds to the grids (bids down, asks up, sizes down), keeps post-only safety and the
    // price band, drops what is below the minimum size or notional, and merges levels that
    // round to one price. The result is strictly monotone, best first.
    fn fit(&self, raw: &[Quote], is_bid: bool, inputs: &QuoteInputs) -> Vec<Quote> {
        let grid = &self.rules.price_grid;
        let tick_size = grid.tick_size();
        let mut out: Vec<Quote> = Vec::with_capacity(raw.len());
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
            // Post-only: a bid never at or above the best ask, an ask never at or below the best bid.
            if is_bid && inputs.best_ask > 0.0 {
                ticks = ticks.min(grid.ticks_at_or_above(inputs.best_ask) - 1);
            }
            if !is_bid && inputs.best_bid > 0.0 {
                ticks = ticks.max(grid.ticks_at_or_below(inputs.best_bid) + 1);
            }
            if ticks <= 0 {
                continue;
            }
            let price = grid.price(ticks);
            if self.price_band > 0.0
                && inputs.reference_price > 0.0
                && (price / inputs.reference_price - 1.0).abs() > self.price_band + 1e-12
            {
                continue;
            }
            let size = self.rules.round_size_down(quote.size);
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
        out
    }
}

fn bits(ladder: &QuoteLadder) -> Vec<(bool, u64, u64)> {
    let side = |is_bid: bool, quotes: &[Quote]| {
        quotes
            .iter()
            .map(move |q| (is_bid, q.price.to_bits(), q.size.to_bits()))
            .collect::<Vec<_>>()
    };
    let mut out = side(true, &ladder.bids);
    out.extend(side(false, &ladder.asks));
    out.push((
        true,
        ladder.reservation_price.to_bits(),
        ladder.half_spread.to_bits(),
    ));
    out
}

#[allow(clippy::too_many_lines)] // one table of parameters per model
fn any_model() -> impl Strategy<Value = QuoteModel> {
    prop_oneof![
        (
            0.01_f64..200.0,
            0.0_f64..2.0,
            any::<bool>(),
            1_usize..12,
            1.0_f64..30.0,
            0.1_f64..10.0,
            0.01_f64..1.0,
            0.0_f64..1.0,
            0.05_f64..2.0,
            0.0_f64..2.0
        )
            .prop_map(
                |(
                    bps,
                    vol_widening,
                    micro,
                    orders_per_side,
                    final_order_distance,
                    leverage,
                    size_fraction,
                    inventory_adjustment,
                    inventory_limit,
                    skew_shift,
                )| {
                    QuoteModel::Ladder(LadderParams {
                        bps,
                        vol_widening,
                        anchor: if micro {
                            Anchor::Microprice
                        } else {
                            Anchor::Mid
                        },
                        orders_per_side,
                        final_order_distance,
                        leverage,
                        size_fraction,
                        inventory_adjustment,
                        inventory_limit,
                        skew_shift,
                    })
                }
            ),
        (
            0.01_f64..1.0,
            0.1_f64..5.0,
            0.0_f64..2.0,
            any::<bool>(),
            0.0001_f64..3.0,
            1_usize..6,
            0.0_f64..20.0,
            0.5_f64..10.0
        )
            .prop_map(
                |(
                    gamma,
                    kappa,
                    horizon,
                    rolling,
                    order_size,
                    orders_per_side,
                    level_spacing_bps,
                    max_inventory,
                )| {
                    QuoteModel::AvellanedaStoikov(AvellanedaStoikovParams {
                        gamma,
                        kappa,
                        horizon,
                        rolling,
                        order_size,
                        orders_per_side,
                        level_spacing_bps,
                        max_inventory,
                    })
                }
            ),
        (
            0.01_f64..1.0,
            0.1_f64..5.0,
            1.0_f64..300.0,
            0.0001_f64..3.0,
            1_usize..6,
            0.0_f64..20.0,
            0.5_f64..10.0
        )
            .prop_map(
                |(
                    gamma,
                    kappa,
                    arrival_rate,
                    order_size,
                    orders_per_side,
                    level_spacing_bps,
                    max_inventory,
                )| {
                    QuoteModel::Glft(GlftParams {
                        gamma,
                        kappa,
                        arrival_rate,
                        order_size,
                        orders_per_side,
                        level_spacing_bps,
                        max_inventory,
                    })
                }
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The one-pass quote gives what the reference gives, bit for bit: every model, grids of
    /// several shapes, with and without a book, a band, minimums, inventory at and past the
    /// limits, and the errors for nonsense inputs.
    #[test]
    fn quote_equals_the_reference(
        model in any_model(),
        tick in prop::sample::select(vec!["0.1", "0.01", "0.25", "1", "5", "0.0001"]),
        lot in prop::sample::select(vec!["0.001", "1", "0.1", "0.00001"]),
        min_size in prop::sample::select(vec![0.0, 0.001, 0.5]),
        min_notional in prop::sample::select(vec![0.0, 5.0, 100.0]),
        price_band in prop::sample::select(vec![0.0, 0.0005, 0.01]),
        mid in prop_oneof![0.001_f64..10.0, 10.0_f64..100_000.0, Just(61_800.05)],
        spread_ticks in -2_i64..40,
        book in 0_u8..4,
        microprice_offset in -1.0_f64..1.0,
        inventory in prop_oneof![-20.0_f64..20.0, Just(0.0), Just(f64::NAN)],
        volatility in prop_oneof![0.0_f64..0.01, 0.0_f64..5.0],
        skew in prop_oneof![-1.5_f64..1.5, Just(f64::INFINITY)],
        balance in prop_oneof![0.0_f64..1_000_000.0, Just(0.0)],
        time_left in 0.0_f64..2.0,
        reference_offset in prop_oneof![Just(0.0), -0.02_f64..0.02],
    ) {
        let rules = InstrumentRules::new(
            PriceGrid::from_text(tick).unwrap(),
            PriceGrid::from_text(lot).unwrap(),
            min_size,
            min_notional,
        )
        .unwrap();
        let generator = QuoteGenerator::new(model, rules, price_band).unwrap();
        let tick_size = rules.price_grid.tick_size();
        let best_bid = rules.price_grid.price(rules.price_grid.ticks_at_or_below(mid));
        let best_ask = best_bid + spread_ticks as f64 * tick_size;
        let inputs = QuoteInputs {
            best_bid: if book & 1 == 1 { best_bid } else { 0.0 },
            best_ask: if book & 2 == 2 { best_ask.max(0.0) } else { 0.0 },
            mid,
            microprice: (mid + microprice_offset * tick_size).max(0.0),
            inventory,
            volatility,
            skew,
            balance,
            time_left,
            reference_price: if reference_offset == 0.0 { 0.0 } else { mid * (1.0 + reference_offset) },
        };
        let new = generator.quote(&inputs);
        let reference = ReferenceGenerator(&generator).quote(&inputs);
        match (new, reference) {
            (Ok(new), Ok(reference)) => prop_assert_eq!(bits(&new), bits(&reference)),
            (Err(new), Err(reference)) => prop_assert_eq!(new.to_string(), reference.to_string()),
            (new, reference) => prop_assert!(false, "{:?} vs {:?}", new, reference),
        }
        // Into a ladder that held an earlier quote: the same again.
        let mut reused = QuoteLadder {
            bids: vec![Quote { price: 1.0, size: 1.0 }; 3],
            asks: vec![Quote { price: 2.0, size: 1.0 }; 7],
            reservation_price: 1.5,
            half_spread: 0.5,
        };
        if generator.quote_into(&inputs, &mut reused).is_ok() {
            prop_assert_eq!(bits(&reused), bits(&generator.quote(&inputs).unwrap()));
        }
    }
}

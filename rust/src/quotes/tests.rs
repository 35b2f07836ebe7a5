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

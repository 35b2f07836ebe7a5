//! Feature definitions checked on hand-built books where the answer is worked out by hand.

use super::*;
use crate::book::Sequencing;
use crate::price::PriceGrid;
use crate::trades::Trade;

fn book(bids: &[(i64, f64)], asks: &[(i64, f64)]) -> OrderBook {
    let mut book = OrderBook::new(
        "X",
        PriceGrid::from_text("0.1").unwrap(),
        Sequencing::Unsequenced,
    );
    book.apply_levels(bids, asks, None, None);
    book
}

fn engine(tick_window: usize) -> FeatureEngine {
    FeatureEngine::new(FeatureConfig {
        depths: vec![1, 3],
        tick_window,
        ofi_levels: 2,
        ..FeatureConfig::default()
    })
    .unwrap()
}

#[test]
fn ofi_cases_from_the_definition() {
    // e = 1[b' >= b] Vb' - 1[b' <= b] Vb - 1[a' <= a] Va' + 1[a' >= a] Va
    let cases = [
        // unchanged prices: size changes only
        ((100, 5.0), (100, 3.0), (101, 2.0), (101, 2.0), 2.0),
        // bid improves: + new bid size
        ((101, 4.0), (100, 3.0), (102, 2.0), (102, 2.0), 4.0),
        // bid falls back: - old bid size
        ((99, 4.0), (100, 3.0), (102, 2.0), (102, 2.0), -3.0),
        // ask improves (lower): - new ask size
        ((100, 3.0), (100, 3.0), (101, 6.0), (102, 2.0), -6.0),
        // ask retreats: + old ask size
        ((100, 3.0), (100, 3.0), (103, 6.0), (102, 2.0), 2.0),
    ];
    for (bid, prev_bid, ask, prev_ask, expected) in cases {
        assert_eq!(
            ofi_event(bid, prev_bid, ask, prev_ask),
            expected,
            "{bid:?} {prev_bid:?} {ask:?} {prev_ask:?}"
        );
    }
}

#[test]
fn voi_cases_from_the_definition() {
    let cases = [
        ((100, 5.0), (100, 3.0), (101, 2.0), (101, 1.0), 2.0 - 1.0),
        ((101, 4.0), (100, 3.0), (102, 2.0), (102, 2.0), 4.0),
        ((99, 4.0), (100, 3.0), (102, 2.0), (102, 2.0), 0.0),
        ((100, 3.0), (100, 3.0), (101, 6.0), (102, 2.0), -6.0),
        ((100, 3.0), (100, 3.0), (103, 6.0), (102, 2.0), 0.0),
    ];
    for (bid, prev_bid, ask, prev_ask, expected) in cases {
        assert_eq!(voi_event(bid, prev_bid, ask, prev_ask), expected);
    }
}

#[test]
fn dead_band_is_zero_inside_and_continuous_outside() {
    assert_eq!(dead_band(0.1, 0.2), 0.0);
    assert_eq!(dead_band(-0.2, 0.2), 0.0);
    assert!((dead_band(0.6, 0.2) - 0.5).abs() < 1e-15);
    assert!((dead_band(-1.0, 0.2) + 1.0).abs() < 1e-15);
}

#[test]
fn book_features_on_a_hand_built_book() {
    // bids 10.0 x 1, 9.9 x 2, 9.8 x 3; asks 10.2 x 4, 10.3 x 1
    let b = book(
        &[(100, 1.0), (99, 2.0), (98, 3.0)],
        &[(102, 4.0), (103, 1.0)],
    );
    let mut e = engine(2);
    assert!(e.update(&b, None, 1_000_000_000));
    let f = *e.features();
    assert_eq!(f.mid, 10.1);
    // microprice = (10.0*4 + 10.2*1)/5 = 10.04
    assert!((f.microprice - 10.04).abs() < 1e-12);
    // spread = 0.2 / 10.1 * 1e4
    assert!((f.spread_bps - 0.2 / 10.1 * 1e4).abs() < 1e-9);
    // depth 1: (1 - 4) / 5; depth 3: (6 - 5) / 11
    assert!((f.imbalances()[0] + 0.6).abs() < 1e-15);
    assert!((f.imbalances()[1] - 1.0 / 11.0).abs() < 1e-15);
    // weighted mid over depth 1 = microprice
    assert!((f.weighted_mid - f.microprice).abs() < 1e-12);
    assert!(!f.ready);
    assert_eq!(f.ofi, 0.0, "no flow on the first tick");
    assert_eq!(f.vwap, f.mid, "no trades: vwap is the mid");
    assert_eq!(f.basis_bps, 0.0);
    assert_eq!(f.volatility, 0.0);
    assert_eq!(f.hit_rate, 0.5);

    // Bid 10.0 grows to 3: OFI +2, VOI +2; deep OFI adds the second level pair (9.9 x 2 -> 2,
    // 10.3 x 1 -> 1): 0.
    let b2 = book(
        &[(100, 3.0), (99, 2.0), (98, 3.0)],
        &[(102, 4.0), (103, 1.0)],
    );
    assert!(e.update(&b2, None, 2_000_000_000));
    let f = *e.features();
    assert!(f.ready);
    assert_eq!(f.ofi, 2.0);
    assert_eq!(f.voi, 2.0);
    assert_eq!(f.deep_ofi, 2.0);
    // mean touch depth over the two ticks: ((1+4)/2 + (3+4)/2)/2 = 3
    assert!((f.ofi_normalized - 2.0 / 3.0).abs() < 1e-15);
}

#[test]
fn window_drops_old_ticks_and_counts_trades() {
    let b = book(&[(100, 1.0)], &[(102, 1.0)]);
    let up = book(&[(101, 1.0)], &[(102, 1.0)]);
    let mut tape = TradeTape::new(100);
    let mut e = engine(2);
    e.update(&b, Some(&tape), 0);
    tape.push(Trade {
        price: 10.2,
        size: 3.0,
        aggressor: Side::Buy,
        exchange_time_ns: 1,
        trade_id: None,
    });
    tape.push(Trade {
        price: 10.0,
        size: 1.0,
        aggressor: Side::Sell,
        exchange_time_ns: 1,
        trade_id: None,
    });
    e.update(&up, Some(&tape), 1_000_000_000);
    let f = *e.features();
    assert_eq!(f.trade_count, 2);
    assert!((f.trade_imbalance - 0.5).abs() < 1e-15);
    assert!((f.vwap - (10.2 * 3.0 + 10.0) / 4.0).abs() < 1e-12);
    // ofi: bid improved (+1 new size) = 1
    assert_eq!(f.ofi, 1.0);
    // one return ln(10.15/10.1) over 1 s; volatility needs two returns
    assert_eq!(f.volatility, 0.0);
    let r: f64 = (10.15_f64 / 10.1).ln();
    assert!((f.volatility_ewma - (r * r).sqrt()).abs() < 1e-12);
    e.update(&b, Some(&tape), 3_000_000_000);
    e.update(&b, Some(&tape), 4_000_000_000);
    let f = *e.features();
    assert_eq!(f.trade_count, 0, "the trades' tick left the window");
    // the window holds the tick where the bid fell back from 10.1 to 10.0 (-1) and a quiet one
    assert_eq!(f.ofi, -1.0);
    // the window's two returns: ln(10.1/10.15) over 2 s and 0 over 1 s
    let returns = [(10.1_f64 / 10.15).ln(), 0.0];
    let mean = (returns[0] + returns[1]) / 2.0;
    let var = ((returns[0] - mean).powi(2) + (returns[1] - mean).powi(2)) / 1.0;
    let expected = (var * 2.0 / 3.0).sqrt();
    assert!(
        (f.volatility - expected).abs() < 1e-12 * expected,
        "{} vs {expected}",
        f.volatility
    );
}

#[test]
fn one_sided_book_changes_nothing() {
    let mut e = engine(2);
    assert!(!e.update(&book(&[(100, 1.0)], &[]), None, 0));
    assert_eq!(e.features().tick_count, 0);
    assert_eq!(e.features().mid, 0.0);
}

#[test]
fn the_model_learns_a_signal_that_predicts_the_mid() {
    // The mid moves one tick in the direction of the touch imbalance of the tick before.
    let mut e = FeatureEngine::new(FeatureConfig {
        depths: vec![1],
        tick_window: 10,
        horizon: Horizon::Updates(1),
        ..FeatureConfig::default()
    })
    .unwrap();
    let mut mid_ticks: i64 = 10_000;
    let mut state: u64 = 7;
    for step in 0..3000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let heavy_bid = (state >> 33) % 2 == 0;
        let (bid_size, ask_size) = if heavy_bid { (9.0, 1.0) } else { (1.0, 9.0) };
        let b = book(&[(mid_ticks - 1, bid_size)], &[(mid_ticks + 1, ask_size)]);
        e.update(&b, None, step * 1_000_000);
        mid_ticks += if heavy_bid { 1 } else { -1 };
    }
    let f = e.features();
    assert!(f.predictions_scored > 2500);
    assert!(f.hit_rate > 0.95, "hit rate {}", f.hit_rate);
}

#[test]
fn invalid_parameters_are_named() {
    let bad = [
        FeatureConfig {
            depths: vec![],
            ..FeatureConfig::default()
        },
        FeatureConfig {
            depths: vec![5, 5],
            ..FeatureConfig::default()
        },
        FeatureConfig {
            tick_window: 1,
            ..FeatureConfig::default()
        },
        FeatureConfig {
            forgetting: 0.0,
            ..FeatureConfig::default()
        },
        FeatureConfig {
            dead_band: 1.0,
            ..FeatureConfig::default()
        },
        FeatureConfig {
            horizon: Horizon::Millis(f64::NAN),
            ..FeatureConfig::default()
        },
        FeatureConfig {
            ofi_levels: 11,
            ..FeatureConfig::default()
        },
    ];
    for config in bad {
        assert!(matches!(
            FeatureEngine::new(config),
            Err(CoreError::InvalidParameter(_))
        ));
    }
}

/// A depth past the levels the book keeps contiguous reads on into the far tier with the same
/// weights, and gives what the plain definition gives.
#[test]
fn imbalance_deeper_than_the_contiguous_levels() {
    let bids: Vec<(i64, f64)> = (0..200)
        .map(|i| (10_000 - i, 1.0 + (i % 7) as f64))
        .collect();
    let asks: Vec<(i64, f64)> = (0..200)
        .map(|i| (10_001 + i, 2.0 + (i % 5) as f64))
        .collect();
    for level_decay in [0.0, 0.05] {
        let weighted = |levels: &[(i64, f64)], depth: usize| -> f64 {
            levels
                .iter()
                .take(depth)
                .enumerate()
                .map(|(rank, (_, size))| size * (-level_decay * rank as f64).exp())
                .sum()
        };
        let config = FeatureConfig {
            depths: vec![5, 150],
            level_decay,
            ..FeatureConfig::default()
        };
        for contiguous in [None, Some(150)] {
            let mut book = book(&bids, &asks);
            if let Some(depth) = contiguous {
                book.keep_contiguous_levels(depth);
            }
            assert!(
                book.top_levels(Side::Buy, 150).near_sizes_best_last().len()
                    == contiguous.unwrap_or(128).min(150),
                "the test reads past the contiguous levels only without keep_contiguous_levels"
            );
            let mut engine = FeatureEngine::new(config.clone()).unwrap();
            engine.update(&book, None, 1);
            for (k, depth) in [5, 150].into_iter().enumerate() {
                let (b, a) = (weighted(&bids, depth), weighted(&asks, depth));
                let expected = (b - a) / (b + a);
                let got = engine.features().imbalances[k];
                assert!(
                    (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                    "depth {depth}, decay {level_decay}, contiguous {contiguous:?}: {got} vs {expected}"
                );
            }
        }
    }
}

/// The skew as defined, every signal squashed by `tanh` (no shortcut inside the dead band).
fn skew_by_definition(features: &Features, config: &FeatureConfig) -> f64 {
    let w = config.weights;
    let band = config.dead_band;
    let deepest = features.imbalances[features.depth_count - 1];
    let skew = w.imbalance * dead_band(features.imbalances[0], band)
        + w.deep_imbalance * dead_band(deepest, band)
        + w.trade_imbalance * dead_band(features.trade_imbalance, band)
        + w.voi * dead_band(features.voi_normalized.tanh(), band)
        + w.deep_ofi * dead_band(features.deep_ofi_normalized.tanh(), band)
        + w.prediction
            * dead_band(
                (features.prediction_bps / config.prediction_scale_bps).tanh(),
                band,
            );
    skew.clamp(-1.0, 1.0)
}

#[test]
fn kept_side_reads_match_reading_afresh_and_the_skew_matches_its_definition() {
    // One engine reads the book itself (its reads of a side are kept while the book's stamp of
    // that side does not move); the other reads a clone every tick (a fresh stamp: everything
    // read again). Updates land on one side at a time, near and far from the touch.
    for depths in [vec![2, 5], vec![3, 80]] {
        let config = FeatureConfig {
            depths,
            tick_window: 20,
            ofi_levels: 3,
            dead_band: 0.3,
            ..FeatureConfig::default()
        };
        let mut kept = FeatureEngine::new(config.clone()).unwrap();
        let mut fresh = FeatureEngine::new(config.clone()).unwrap();
        let levels: Vec<(i64, f64)> = (0..200).map(|i| (1000 - i, 1.0 + i as f64)).collect();
        let asks: Vec<(i64, f64)> = (0..200).map(|i| (1001 + i, 2.0 + i as f64)).collect();
        let mut book = book(&levels, &asks);
        let mut state: u64 = 7;
        let mut skipped_tanh = 0;
        for tick in 0..3000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let r = state >> 33;
            let is_bid = r % 2 == 0;
            let distance = if r % 7 == 0 {
                1 + (r >> 3) % 150
            } else {
                1 + (r >> 3) % 6
            };
            let size = if (r >> 12) % 5 == 0 {
                0.0
            } else {
                ((r >> 16) % 50) as f64 / 4.0
            };
            let (bid, ask) = (book.best_bid().unwrap().0, book.best_ask().unwrap().0);
            let (side, ticks) = if is_bid {
                (Side::Buy, (bid + 2 - distance as i64).min(ask - 1))
            } else {
                (Side::Sell, (ask - 2 + distance as i64).max(bid + 1))
            };
            book.set_level(side, ticks, size);
            let time_ns = tick * 1_000_000;
            let a = kept.update(&book, None, time_ns);
            let b = fresh.update(&book.clone(), None, time_ns);
            assert_eq!(a, b);
            assert_eq!(kept.features(), fresh.features(), "tick {tick}");
            let features = kept.features();
            // `squash` is `tanh` to a few units in the last place (tested above).
            let expected = skew_by_definition(features, &config);
            assert!(
                (features.skew - expected).abs() <= 1e-14,
                "tick {tick}: {} vs {expected}",
                features.skew
            );
            if features.voi_normalized.abs() < 0.3 {
                skipped_tanh += 1;
            }
        }
        assert!(skipped_tanh > 0, "the dead-band shortcut was exercised");
    }
}

#[test]
fn squash_is_tanh_to_a_few_units_in_the_last_place() {
    let mut worst: f64 = 0.0;
    let mut x = -25.0;
    while x < 25.0 {
        let (ours, libm) = (squash(x), x.tanh());
        worst = worst.max((ours - libm).abs() / libm.abs().max(f64::MIN_POSITIVE));
        x += 0.000_731;
    }
    assert!(worst < 2e-15, "worst relative error {worst:e}");
    for x in [0.0, -0.0, 0.1, -0.2, 19.6, 1e300, -1e300, f64::INFINITY] {
        assert_eq!(squash(x), x.tanh(), "{x}");
    }
    assert!(squash(f64::NAN).is_nan());
}

/// A replay that tells the engine every update (as `batch::run_features` does) keeps the depth
/// sums from the updates; they come out as reading the book afresh does, bit for bit (both are
/// the exact sum rounded once), on sizes that are not exact in binary and updates that insert
/// and remove levels across every depth, many per tick.
#[test]
fn depth_sums_kept_from_the_updates_match_reading_afresh() {
    for (depths, updates_per_tick) in [(vec![3, 20], 1), (vec![1, 5, 40], 3)] {
        let config = FeatureConfig {
            depths,
            tick_window: 20,
            ofi_levels: 4,
            ..FeatureConfig::default()
        };
        let mut kept = FeatureEngine::new(config.clone()).unwrap();
        let mut fresh = FeatureEngine::new(config.clone()).unwrap();
        let bids: Vec<(i64, f64)> = (0..300)
            .map(|i| (10_000 - i, 0.001 * (1 + (i * 37) % 5000) as f64))
            .collect();
        let asks: Vec<(i64, f64)> = (0..300)
            .map(|i| (10_001 + i, 0.001 * (1 + (i * 53) % 5000) as f64))
            .collect();
        let mut book = book(&bids, &asks);
        book.keep_contiguous_levels(kept.levels_read());
        assert!(kept.begin_replay(&book));
        let mut state: u64 = 11;
        let mut applied = 0;
        for tick in 0..6000 {
            for _ in 0..updates_per_tick {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let r = state >> 33;
                let is_bid = r % 2 == 0;
                let distance = if r % 5 == 0 {
                    1 + (r >> 3) % 200
                } else {
                    1 + (r >> 3) % 45
                } as i64;
                let size = if (r >> 12) % 4 == 0 {
                    0.0
                } else {
                    0.001 * (1 + (r >> 16) % 5000) as f64
                };
                let (bid, ask) = (book.best_bid().unwrap().0, book.best_ask().unwrap().0);
                let (side, ticks) = if is_bid {
                    (Side::Buy, (bid + 2 - distance).min(ask - 1))
                } else {
                    (Side::Sell, (ask - 2 + distance).max(bid + 1))
                };
                let change = book.change_level(side, ticks, size);
                applied += usize::from(matches!(change, LevelChange::Best { .. }));
                kept.note_level_change(&book, side, change);
            }
            let time_ns = tick * 1_000_000;
            assert!(kept.update_replayed(&book, None, time_ns));
            assert!(fresh.update(&book.clone(), None, time_ns));
            assert_eq!(kept.features(), fresh.features(), "tick {tick}");
        }
        assert!(applied > 3000, "the kept sums were exercised");
    }
}

//! Book edge cases (table-driven), venue sequencing, and invariants under random operations.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn grid() -> PriceGrid {
    PriceGrid::from_text("0.1").unwrap()
}

fn binance() -> OrderBook {
    OrderBook::new("BTCUSDT", grid(), Sequencing::Binance)
}

fn diff<'a>(
    first: u64,
    last: u64,
    prev: u64,
    bids: &'a [Level],
    asks: &'a [Level],
) -> BinanceDiff<'a> {
    BinanceDiff {
        first_update_id: first,
        last_update_id: last,
        prev_last_update_id: prev,
        bids,
        asks,
        exchange_time_ns: Some(i64::try_from(last).unwrap()),
        receive_time_ns: None,
    }
}

#[test]
fn edge_cases() {
    struct Case {
        name: &'static str,
        bids: &'static [Level],
        asks: &'static [Level],
        best_bid: Option<Level>,
        best_ask: Option<Level>,
        crossed: bool,
    }
    let cases = [
        Case {
            name: "empty",
            bids: &[],
            asks: &[],
            best_bid: None,
            best_ask: None,
            crossed: false,
        },
        Case {
            name: "empty bid side",
            bids: &[],
            asks: &[(101, 1.0)],
            best_bid: None,
            best_ask: Some((101, 1.0)),
            crossed: false,
        },
        Case {
            name: "empty ask side",
            bids: &[(99, 2.0)],
            asks: &[],
            best_bid: Some((99, 2.0)),
            best_ask: None,
            crossed: false,
        },
        Case {
            name: "normal",
            bids: &[(98, 1.0), (99, 2.0)],
            asks: &[(101, 3.0), (100, 4.0)],
            best_bid: Some((99, 2.0)),
            best_ask: Some((100, 4.0)),
            crossed: false,
        },
        Case {
            name: "locked",
            bids: &[(100, 1.0)],
            asks: &[(100, 1.0)],
            best_bid: Some((100, 1.0)),
            best_ask: Some((100, 1.0)),
            crossed: true,
        },
        Case {
            name: "crossed",
            bids: &[(101, 1.0)],
            asks: &[(100, 1.0)],
            best_bid: Some((101, 1.0)),
            best_ask: Some((100, 1.0)),
            crossed: true,
        },
        Case {
            name: "delete of an absent level",
            bids: &[(99, 2.0), (50, 0.0)],
            asks: &[(100, 1.0), (200, 0.0)],
            best_bid: Some((99, 2.0)),
            best_ask: Some((100, 1.0)),
            crossed: false,
        },
        Case {
            name: "update then delete in one message",
            bids: &[(99, 2.0), (99, 0.0), (98, 1.0)],
            asks: &[],
            best_bid: Some((98, 1.0)),
            best_ask: None,
            crossed: false,
        },
    ];
    for case in cases {
        let mut book = OrderBook::new("X", grid(), Sequencing::Unsequenced);
        book.apply_levels(case.bids, case.asks, None, None);
        assert_eq!(book.best_bid(), case.best_bid, "{}", case.name);
        assert_eq!(book.best_ask(), case.best_ask, "{}", case.name);
        assert_eq!(book.is_crossed(), case.crossed, "{}", case.name);
        assert!(book.is_well_formed(), "{}", case.name);
        assert_eq!(
            book.mid().is_some(),
            case.best_bid.is_some() && case.best_ask.is_some(),
            "{}",
            case.name
        );
    }
}

#[test]
fn reads_on_a_small_book() {
    let mut book = OrderBook::new("X", grid(), Sequencing::Unsequenced);
    book.apply_levels(
        &[(1000, 1.0), (999, 2.0), (990, 4.0)],
        &[(1002, 3.0), (1003, 5.0)],
        Some(7),
        Some(9),
    );
    assert_eq!(book.best_bid_price(), Some(100.0));
    assert_eq!(book.best_ask_price(), Some(100.2));
    assert_eq!(book.mid(), Some(100.1));
    assert_eq!(book.spread_ticks(), Some(2));
    let micro = book.microprice().unwrap();
    assert!((micro - (100.0 * 3.0 + 100.2 * 1.0) / 4.0).abs() < 1e-12);
    assert_eq!(book.top_size(Side::Buy, 2), 3.0);
    assert_eq!(book.top_size(Side::Sell, 10), 8.0);
    // 100.1 ± 10 bps = [99.9999, 100.2001]: bids down to 100.0 (tick 1000), asks up to 100.2.
    assert_eq!(book.size_within_bps(Side::Buy, 10.0), 1.0);
    assert_eq!(book.size_within_bps(Side::Sell, 10.0), 3.0);
    // ±100 bps reaches down to 99.099: not the level at 99.0; ±200 bps (98.098) takes it.
    assert_eq!(book.size_within_bps(Side::Buy, 100.0), 3.0);
    assert_eq!(book.size_within_bps(Side::Buy, 200.0), 7.0);
    let asks: Vec<Level> = book.levels(Side::Sell).collect();
    assert_eq!(asks, vec![(1002, 3.0), (1003, 5.0)]);
    assert_eq!(book.exchange_time_ns(), Some(7));
    assert_eq!(book.receive_time_ns(), Some(9));
    assert_eq!(book.update_count(), 1);
    assert_eq!(book.level_update_count(), 5);
}

#[test]
fn binance_bridging_follows_the_official_procedure() {
    let mut book = binance();
    assert_eq!(book.status(), BookStatus::AwaitingSnapshot);
    // Stream starts before the snapshot: buffered.
    assert_eq!(
        book.apply_binance_diff(&diff(90, 95, 89, &[(1, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Buffered
    );
    assert_eq!(
        book.apply_binance_diff(&diff(96, 102, 95, &[(2, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Buffered
    );
    assert_eq!(
        book.apply_binance_diff(&diff(103, 110, 102, &[(3, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Buffered
    );
    // Snapshot at 100: the first diff (u=95 < 100) is dropped, the second bridges (96 <= 100 <= 102).
    let outcome = book
        .apply_snapshot(Some(100), &[(10, 5.0)], &[(20, 5.0)], None, None)
        .unwrap();
    assert_eq!(
        outcome,
        SnapshotOutcome {
            replayed: 2,
            dropped: 1,
            status: BookStatus::Live
        }
    );
    assert_eq!(
        book.size_at(Side::Buy, 1),
        0.0,
        "pre-snapshot diff must not be applied"
    );
    assert_eq!(book.size_at(Side::Buy, 2), 1.0);
    assert_eq!(book.size_at(Side::Buy, 3), 1.0);
    assert_eq!(book.last_update_id(), Some(110));
    // Continues with pu == previous u.
    assert_eq!(
        book.apply_binance_diff(&diff(111, 115, 110, &[(4, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Applied
    );
    // A gap: pu 120 != 115. Not applied; the book needs a resync and buffers what follows.
    assert_eq!(
        book.apply_binance_diff(&diff(121, 125, 120, &[(5, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Gap
    );
    assert_eq!(book.status(), BookStatus::NeedsResync);
    assert_eq!(book.size_at(Side::Buy, 5), 0.0);
    assert!(book.last_gap().unwrap().contains("pu=120"));
    assert_eq!(
        book.apply_binance_diff(&diff(126, 130, 125, &[(6, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Buffered
    );
    assert_eq!(book.size_at(Side::Buy, 6), 0.0);
    // A fresh snapshot at 127 bridges with the buffered 126..130 diff.
    let outcome = book
        .apply_snapshot(Some(127), &[(10, 1.0)], &[(20, 1.0)], None, None)
        .unwrap();
    assert_eq!(outcome.status, BookStatus::Live);
    assert_eq!((outcome.replayed, outcome.dropped), (1, 1));
    assert_eq!(book.size_at(Side::Buy, 6), 1.0);
    assert_eq!(book.size_at(Side::Buy, 5), 0.0);
}

#[test]
fn binance_snapshot_newer_than_the_first_event_is_fine_and_older_is_a_gap() {
    // Snapshot arrives before any event: the next event must bridge.
    let mut book = binance();
    book.apply_snapshot(Some(100), &[(10, 1.0)], &[(20, 1.0)], None, None)
        .unwrap();
    assert_eq!(
        book.apply_binance_diff(&diff(50, 99, 49, &[], &[]))
            .unwrap(),
        ApplyOutcome::Stale
    );
    assert_eq!(
        book.apply_binance_diff(&diff(101, 105, 99, &[(11, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Gap
    );
    assert_eq!(book.size_at(Side::Buy, 11), 0.0);
    // A snapshot so old that the buffer cannot bridge it stays not-live.
    let mut book = binance();
    book.apply_binance_diff(&diff(200, 210, 199, &[(1, 1.0)], &[]))
        .unwrap();
    let outcome = book
        .apply_snapshot(Some(150), &[(10, 1.0)], &[], None, None)
        .unwrap();
    assert_eq!(outcome.status, BookStatus::NeedsResync);
    assert_eq!(
        book.buffered(),
        1,
        "the unbridged diff is kept for the next snapshot"
    );
    let outcome = book
        .apply_snapshot(Some(205), &[(10, 1.0)], &[], None, None)
        .unwrap();
    assert_eq!(outcome.status, BookStatus::Live);
    assert_eq!(book.size_at(Side::Buy, 1), 1.0);
}

#[test]
fn bybit_rules() {
    let mut book = OrderBook::new(
        "XRPUSDT",
        PriceGrid::from_text("0.0001").unwrap(),
        Sequencing::Bybit,
    );
    assert_eq!(
        book.apply_bybit(false, 5, &[(1, 1.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Dropped
    );
    assert_eq!(
        book.apply_bybit(true, 10, &[(100, 1.0)], &[(105, 1.0)], None, None)
            .unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(book.status(), BookStatus::Live);
    assert_eq!(
        book.apply_bybit(false, 11, &[(101, 2.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        book.apply_bybit(false, 11, &[(102, 2.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Stale
    );
    assert_eq!(
        book.apply_bybit(false, 13, &[(103, 2.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Gap
    );
    assert_eq!(book.status(), BookStatus::NeedsResync);
    assert_eq!(
        book.apply_bybit(false, 14, &[(104, 2.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Dropped
    );
    assert_eq!(book.best_bid(), Some((101, 2.0)));
    // u == 1: the venue restarted; the message replaces the book.
    assert_eq!(
        book.apply_bybit(false, 1, &[(90, 1.0)], &[(95, 1.0)], None, None)
            .unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(book.status(), BookStatus::Live);
    assert_eq!(book.best_bid(), Some((90, 1.0)));
    assert_eq!(book.level_count(Side::Buy), 1);
    assert_eq!(
        book.apply_bybit(false, 2, &[(91, 1.0)], &[], None, None)
            .unwrap(),
        ApplyOutcome::Applied
    );
    // Wrong venue's message is an error, not a silent apply.
    assert!(book.apply_binance_diff(&diff(1, 2, 0, &[], &[])).is_err());
    assert!(binance()
        .apply_bybit(true, 1, &[], &[], None, None)
        .is_err());
    assert!(binance()
        .apply_snapshot(None, &[], &[], None, None)
        .is_err());
}

#[test]
fn invalidate_needs_a_snapshot() {
    let mut book = binance();
    book.apply_snapshot(Some(1), &[(10, 1.0)], &[(20, 1.0)], None, None)
        .unwrap();
    book.invalidate("websocket reconnected");
    assert_eq!(book.status(), BookStatus::NeedsResync);
    assert_eq!(book.last_gap(), Some("websocket reconnected"));
    assert_eq!(
        book.apply_binance_diff(&diff(2, 3, 1, &[(11, 1.0)], &[]))
            .unwrap(),
        ApplyOutcome::Buffered
    );
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        bid: bool,
        ticks: i64,
        size: f64,
    },
    Snapshot {
        bids: Vec<(i64, f64)>,
        asks: Vec<(i64, f64)>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![Just(0.0), (1_u32..1000).prop_map(|n| f64::from(n) / 1000.0)];
    prop_oneof![
        10 => (any::<bool>(), 1_i64..200, size).prop_map(|(bid, ticks, size)| Op::Set { bid, ticks, size }),
        1 => (
            prop::collection::vec((1_i64..200, 0.001_f64..5.0), 0..30),
            prop::collection::vec((1_i64..200, 0.001_f64..5.0), 0..30)
        )
            .prop_map(|(bids, asks)| Op::Snapshot { bids, asks }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The book equals a plain map model after any sequence of operations, its ladders stay
    /// sorted with positive sizes, and every read agrees with the model.
    #[test]
    fn matches_a_map_model(ops in prop::collection::vec(op(), 1..300)) {
        let mut book = OrderBook::new("X", grid(), Sequencing::Unsequenced);
        let mut bids: BTreeMap<i64, f64> = BTreeMap::new();
        let mut asks: BTreeMap<i64, f64> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set { bid, ticks, size } => {
                    let side = if bid { Side::Buy } else { Side::Sell };
                    book.set_level(side, ticks, size);
                    let model = if bid { &mut bids } else { &mut asks };
                    if size == 0.0 { model.remove(&ticks); } else { model.insert(ticks, size); }
                }
                Op::Snapshot { bids: new_bids, asks: new_asks } => {
                    book.apply_snapshot(None, &new_bids, &new_asks, None, None).unwrap();
                    bids = new_bids.iter().copied().collect();
                    asks = new_asks.iter().copied().collect();
                }
            }
            prop_assert!(book.is_well_formed());
            prop_assert_eq!(book.best_bid(), bids.iter().next_back().map(|(t, s)| (*t, *s)));
            prop_assert_eq!(book.best_ask(), asks.iter().next().map(|(t, s)| (*t, *s)));
            prop_assert_eq!(book.level_count(Side::Buy), bids.len());
            prop_assert_eq!(book.level_count(Side::Sell), asks.len());
            for depth in [1_usize, 5, 20] {
                let bid_top: f64 = bids.values().rev().take(depth).sum();
                let ask_top: f64 = asks.values().take(depth).sum();
                prop_assert_eq!(book.top_size(Side::Buy, depth), bid_top);
                prop_assert_eq!(book.top_size(Side::Sell, depth), ask_top);
            }
            let crossed = matches!((bids.keys().next_back(), asks.keys().next()), (Some(b), Some(a)) if b >= a);
            prop_assert_eq!(book.is_crossed(), crossed);
        }
        let model_bids: Vec<(i64, f64)> = bids.iter().rev().map(|(t, s)| (*t, *s)).collect();
        prop_assert_eq!(book.levels(Side::Buy).collect::<Vec<_>>(), model_bids);
    }

    /// Depth messages applied whole (each side merged in one pass when sorted by price) leave
    /// the book as setting their levels one by one does: every level bit for bit, the views a
    /// reader takes of the best levels, the level counter. Books of hundreds of levels a side
    /// put updates beyond the 64 levels kept contiguous (far-tier updates, spills, refills);
    /// sides come ascending (as Binance sends both), descending, or as drawn (with repeats).
    #[test]
    fn a_whole_message_matches_its_levels_one_by_one(
        snapshot_depth in 0_i64..400,
        messages in prop::collection::vec(
            (
                prop::collection::vec((0_i64..500, 0_u32..4), 0..60),
                prop::collection::vec((0_i64..500, 0_u32..4), 0..60),
                0_u8..3,
            ),
            1..8,
        ),
    ) {
        let sorted = |drawn: &[(i64, u32)], offset: i64, order: u8| -> Vec<Level> {
            let mut levels: Vec<Level> = drawn
                .iter()
                .map(|&(ticks, size)| (offset + ticks, f64::from(size) * 0.125))
                .collect();
            if order < 2 {
                let unique: BTreeMap<i64, f64> = levels.iter().copied().collect();
                levels = unique.into_iter().collect();
                if order == 1 {
                    levels.reverse();
                }
            }
            levels
        };
        let bids: Vec<Level> = (0..snapshot_depth).map(|i| (1_000 - 2 * i, 1.0)).collect();
        let asks: Vec<Level> = (0..snapshot_depth).map(|i| (1_001 + 2 * i, 1.0)).collect();
        let mut whole = OrderBook::new("X", grid(), Sequencing::Unsequenced);
        whole.apply_snapshot(None, &bids, &asks, None, None).unwrap();
        let mut by_level = whole.clone();
        for (drawn_bids, drawn_asks, order) in messages {
            let bids = sorted(&drawn_bids, 500, order);
            let asks = sorted(&drawn_asks, 800, order);
            whole.apply_levels(&bids, &asks, Some(1), None);
            for &(ticks, size) in &bids {
                by_level.set_level(Side::Buy, ticks, size);
            }
            for &(ticks, size) in &asks {
                by_level.set_level(Side::Sell, ticks, size);
            }
            prop_assert!(whole.is_well_formed());
            prop_assert_eq!(whole.level_update_count(), by_level.level_update_count());
            for side in [Side::Buy, Side::Sell] {
                let bits = |book: &OrderBook| -> Vec<(i64, u64)> {
                    book.levels(side).map(|(ticks, size)| (ticks, size.to_bits())).collect()
                };
                prop_assert_eq!(bits(&whole), bits(&by_level));
                for depth in [1_usize, 5, 64] {
                    let view = whole.top_levels(side, depth);
                    prop_assert!(view.is_contiguous());
                    let levels: Vec<Level> = (0..view.len()).map(|rank| view.level(rank)).collect();
                    let expected: Vec<Level> = by_level.levels(side).take(depth).collect();
                    prop_assert_eq!(levels, expected);
                }
            }
        }
    }

    /// Any Binance stream with one message dropped is caught: the gap is detected and nothing
    /// after it is applied until a new snapshot.
    #[test]
    fn a_dropped_binance_message_is_always_detected(
        lengths in prop::collection::vec(1_u64..20, 3..40),
        drop_at in 1_usize..1000,
    ) {
        let drop_at = 1 + drop_at % (lengths.len() - 2);
        let mut book = binance();
        book.apply_snapshot(Some(1000), &[(1, 1.0)], &[(500, 1.0)], None, None).unwrap();
        let mut first = 1000;
        let mut prev = 990;
        let mut gap_seen = false;
        for (index, length) in lengths.iter().enumerate() {
            let last = first + length;
            let ticks = 2 + i64::try_from(index).unwrap();
            if index != drop_at {
                let outcome = book.apply_binance_diff(&diff(first, last, prev, &[(ticks, 1.0)], &[])).unwrap();
                if index < drop_at {
                    prop_assert_eq!(outcome, ApplyOutcome::Applied);
                } else if !gap_seen {
                    prop_assert_eq!(outcome, ApplyOutcome::Gap);
                    gap_seen = true;
                } else {
                    prop_assert_eq!(outcome, ApplyOutcome::Buffered);
                }
                let applied = book.size_at(Side::Buy, ticks) > 0.0;
                prop_assert_eq!(applied, index < drop_at);
            }
            prev = last;
            first = last + 1;
        }
        prop_assert!(gap_seen);
        prop_assert_eq!(book.status(), BookStatus::NeedsResync);
    }
}

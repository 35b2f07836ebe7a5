//! The tick's decisions on hand-built books: warm-up, quoting, a stable ladder that sends
//! nothing, halts that only cancel.

use super::*;
use crate::account::Order;
use crate::book::Sequencing;
use crate::features::FeatureConfig;
use crate::price::PriceGrid;
use crate::quotes::{InstrumentRules, LadderParams, QuoteModel};
use crate::risk::RiskLimits;
use crate::side::Side;

struct Parts {
    book: OrderBook,
    engine: FeatureEngine,
    generator: QuoteGenerator,
    rules: DiffRules,
    ids: ClientOrderIds,
    account: Account,
    scratch: TickScratch,
}

fn parts(tick_window: usize) -> Parts {
    let mut book = OrderBook::new(
        "BTCUSDT",
        PriceGrid::from_text("0.1").unwrap(),
        Sequencing::Unsequenced,
    );
    book.apply_levels(&[(600_000, 2.0)], &[(600_010, 2.0)], Some(1), Some(1));
    let instrument = InstrumentRules::new(
        PriceGrid::from_text("0.1").unwrap(),
        PriceGrid::from_text("0.001").unwrap(),
        0.001,
        5.0,
    )
    .unwrap();
    let ladder = LadderParams {
        orders_per_side: 3,
        ..LadderParams::default()
    };
    Parts {
        book,
        engine: FeatureEngine::new(FeatureConfig {
            depths: vec![1, 5],
            tick_window,
            ..FeatureConfig::default()
        })
        .unwrap(),
        generator: QuoteGenerator::new(QuoteModel::Ladder(ladder), instrument, 0.0).unwrap(),
        rules: DiffRules {
            requote_tolerance_bps: 1.0,
            size_tolerance: 0.25,
            supports_amend: false,
        },
        ids: ClientOrderIds::new("t-").unwrap(),
        account: Account::new(10_000.0),
        scratch: TickScratch::default(),
    }
}

fn run(
    parts: &mut Parts,
    risk: Option<&mut RiskGate>,
    now_ns: i64,
) -> (Decision, Vec<OrderAction>) {
    tick(
        SymbolMaker {
            book: &parts.book,
            tape: None,
            engine: &mut parts.engine,
            generator: &parts.generator,
            rules: &parts.rules,
            ids: &mut parts.ids,
            account: &parts.account,
            risk,
        },
        TickClock {
            now_ns,
            ..TickClock::default()
        },
        &mut parts.scratch,
    )
    .unwrap()
}

/// The venue takes every action at once.
fn acknowledge(account: &mut Account, actions: &[OrderAction]) {
    for action in actions {
        match action {
            OrderAction::Place {
                client_order_id,
                side,
                price,
                size,
            } => account
                .add_order(Order::new(client_order_id.clone(), *side, *price, *size))
                .unwrap(),
            OrderAction::Cancel {
                client_order_id, ..
            } => {
                account.close_order(client_order_id, crate::account::OrderStatus::Canceled);
            }
            OrderAction::Amend { .. } => unreachable!("amends are off"),
        }
    }
}

#[test]
fn warms_up_then_quotes_both_sides_then_holds_still() {
    let mut parts = parts(3);
    for time in 1..3 {
        parts
            .book
            .apply_levels(&[(600_000, 2.0 + time as f64)], &[], Some(time), Some(time));
        assert_eq!(run(&mut parts, None, 0), (Decision::Warming, Vec::new()));
    }
    parts
        .book
        .apply_levels(&[(600_000, 9.0)], &[], Some(3), Some(3));
    let (decision, actions) = run(&mut parts, None, 0);
    assert_eq!(decision, Decision::Quoted);
    let places = |side| {
        actions
            .iter()
            .filter(|action| matches!(action, OrderAction::Place { side: s, .. } if *s == side))
            .count()
    };
    assert_eq!((places(Side::Buy), places(Side::Sell)), (3, 3));
    let ladder = parts.scratch.quotes.clone().unwrap();
    assert!(ladder.bids.iter().all(|quote| quote.price < 60_001.0));
    assert!(ladder.asks.iter().all(|quote| quote.price > 60_000.0));
    acknowledge(&mut parts.account, &actions);
    // The same market again: our orders already sit where the ladder wants them.
    parts
        .book
        .apply_levels(&[(599_990, 1.0)], &[], Some(4), Some(4));
    let (decision, actions) = run(&mut parts, None, 0);
    assert_eq!(decision, Decision::Quoted);
    assert!(actions.is_empty(), "{actions:?}");
}

/// Ticks on small book changes until the features are warm; returns the first quoted actions.
fn warm_up(parts: &mut Parts) -> Vec<OrderAction> {
    for time in 2..10 {
        parts
            .book
            .apply_levels(&[(600_000, time as f64)], &[], Some(time), Some(time));
        let (decision, actions) = run(parts, None, 0);
        if decision == Decision::Quoted {
            return actions;
        }
        assert_eq!(decision, Decision::Warming);
    }
    panic!("never warmed up");
}

#[test]
fn an_empty_side_quotes_nothing() {
    let mut parts = parts(2);
    parts
        .book
        .apply_levels(&[], &[(600_010, 0.0)], Some(2), Some(2));
    assert_eq!(run(&mut parts, None, 0), (Decision::NoBook, Vec::new()));
}

#[test]
fn a_halt_sends_only_cancels_of_every_live_order() {
    let mut parts = parts(2);
    let actions = warm_up(&mut parts);
    acknowledge(&mut parts.account, &actions);
    assert_eq!(parts.account.open_orders().len(), 6);
    let mut gate = RiskGate::new(RiskLimits {
        stale_book_ms: 1_000.0,
        ..RiskLimits::default()
    })
    .unwrap();
    // The book's last update was a few ns in; now is 2 s later.
    let (decision, actions) = run(&mut parts, Some(&mut gate), 2_000_000_000);
    assert_eq!(decision, Decision::Halted(HaltReason::StaleBook));
    assert_eq!(actions.len(), 6);
    assert!(actions
        .iter()
        .all(|action| matches!(action, OrderAction::Cancel { .. })));
    acknowledge(&mut parts.account, &actions);
    // Latched: a fresh book does not quote until the gate is reset.
    parts.book.apply_levels(
        &[(600_000, 3.0)],
        &[],
        Some(2_000_000_000),
        Some(2_000_000_000),
    );
    let (decision, actions) = run(&mut parts, Some(&mut gate), 2_000_000_001);
    assert_eq!(decision, Decision::Halted(HaltReason::StaleBook));
    assert!(actions.is_empty());
    gate.reset();
    let (decision, actions) = run(&mut parts, Some(&mut gate), 2_000_000_001);
    assert_eq!(decision, Decision::Quoted);
    assert_eq!(actions.len(), 6);
}

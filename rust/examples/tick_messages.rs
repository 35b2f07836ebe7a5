//! A pure-Rust harness of the whole tick per depth message, as `MarketMaker.on_depth_message`
//! runs it and as `benchmarks/tick_throughput.py` (`fused_tick`) drives it: the real BTCUSDT
//! recording, a book synced from its snapshot, a tape fed with its trades, features with depths
//! [5, 50], the ladder model with 5 levels a side, the diff against an account whose orders the
//! venue acknowledges at once (untimed), and optionally the benchmark's risk gate. Made to be run
//! under callgrind, counting only the tick:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --example tick_messages
//! zcat ../shared/data/binance-usdm/btcusdt_20240808.gz > /tmp/btcusdt.txt
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*tick_messages::on_depth_message*' \
//!     target/release/examples/tick_messages /tmp/btcusdt.txt [repeats] [--risk]
//! ```
//!
//! Prints the messages timed, how many were quoted, the actions sent, the wall time per
//! message and a checksum of the actions.

use std::io::BufRead;

use marketmaker_core::account::{Account, Order, OrderStatus};
use marketmaker_core::book::{ApplyOutcome, Level, OrderBook, Sequencing};
use marketmaker_core::features::{FeatureConfig, FeatureEngine};
use marketmaker_core::maker::{tick, Decision, SymbolMaker, TickClock, TickScratch};
use marketmaker_core::orders::{ClientOrderIds, DiffRules, OrderAction};
use marketmaker_core::price::PriceGrid;
use marketmaker_core::quotes::{InstrumentRules, LadderParams, QuoteGenerator, QuoteModel};
use marketmaker_core::risk::{RiskGate, RiskLimits};
use marketmaker_core::side::Side;
use marketmaker_core::trades::{Trade, TradeTape};
use marketmaker_core::venues::binance::{apply_depth_json, LevelLayouts};
use serde_json::Value;

enum Event {
    Depth(String),
    Trade(Trade),
}

/// The depth events before the snapshot (as text), the snapshot, and every later depth (as
/// compact text, the inner event only, like the benchmark's `json.dumps`) or trade event.
fn recording(path: &str) -> (Vec<String>, Value, Vec<Event>) {
    let file = std::fs::File::open(path).expect("the uncompressed capture");
    let mut before = Vec::new();
    let mut snapshot: Option<Value> = None;
    let mut events = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("a line");
        let (_, payload) = line.split_once(' ').expect("<ns> <json>");
        let message: Value = serde_json::from_str(payload).expect("JSON");
        if message.get("lastUpdateId").is_some() {
            snapshot = Some(message);
            continue;
        }
        let data = message.get("data").unwrap_or(&message).clone();
        match data.get("e").and_then(Value::as_str) {
            Some("depthUpdate") if snapshot.is_none() => before.push(data.to_string()),
            Some("depthUpdate") => events.push(Event::Depth(data.to_string())),
            Some("trade") if snapshot.is_some() => {
                let number = |key: &str| data[key].as_str().unwrap().parse::<f64>().unwrap();
                events.push(Event::Trade(Trade {
                    price: number("p"),
                    size: number("q"),
                    aggressor: if data["m"].as_bool().unwrap() {
                        Side::Sell
                    } else {
                        Side::Buy
                    },
                    exchange_time_ns: data["T"].as_i64().unwrap() * 1_000_000,
                    trade_id: data["t"].as_u64(),
                }));
            }
            _ => {}
        }
    }
    (before, snapshot.expect("a snapshot"), events)
}

fn levels(grid: &PriceGrid, levels: &Value) -> Vec<Level> {
    levels
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                grid.ticks_of_text(pair[0].as_str().unwrap(), &String::new)
                    .unwrap(),
                pair[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Everything `PyMarketMaker` holds.
struct Maker {
    book: OrderBook,
    tape: TradeTape,
    engine: FeatureEngine,
    generator: QuoteGenerator,
    rules: DiffRules,
    ids: ClientOrderIds,
    account: Account,
    risk: Option<RiskGate>,
    scratch: TickScratch,
    bids: Vec<Level>,
    asks: Vec<Level>,
    layouts: LevelLayouts,
}

/// What `on_depth_message` runs in the core (the part callgrind counts).
#[inline(never)]
fn on_depth_message(maker: &mut Maker, text: &str) -> (Option<Decision>, Vec<OrderAction>) {
    let outcome = apply_depth_json(
        &mut maker.book,
        text,
        None,
        &mut maker.bids,
        &mut maker.asks,
        &mut maker.layouts,
    )
    .expect("a valid message");
    if matches!(outcome, ApplyOutcome::Buffered | ApplyOutcome::Stale) {
        return (None, Vec::new());
    }
    let (decision, actions) = tick(
        SymbolMaker {
            book: &maker.book,
            tape: Some(&maker.tape),
            engine: &mut maker.engine,
            generator: &maker.generator,
            rules: &maker.rules,
            ids: &mut maker.ids,
            account: &maker.account,
            risk: maker.risk.as_mut(),
        },
        TickClock::default(),
        &mut maker.scratch,
    )
    .expect("a valid tick");
    (Some(decision), actions)
}

/// The venue acknowledges every action at once (untimed, as in the benchmark).
fn acknowledge(account: &mut Account, actions: &[OrderAction]) {
    for action in actions {
        match action {
            OrderAction::Cancel {
                client_order_id, ..
            } => {
                account.close_order(client_order_id, OrderStatus::Canceled);
            }
            OrderAction::Place {
                client_order_id,
                side,
                price,
                size,
            } => {
                account
                    .add_order(Order::new(client_order_id.clone(), *side, *price, *size))
                    .expect("a valid order");
                account.acknowledge_order(client_order_id, None);
            }
            OrderAction::Amend { .. } => unreachable!("the planner does not amend"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: tick_messages CAPTURE [repeats] [--risk]");
    let repeats: usize = args.get(2).and_then(|arg| arg.parse().ok()).unwrap_or(1);
    let with_risk = args.iter().any(|arg| arg == "--risk");
    let (before, snapshot, events) = recording(path);
    let grid = PriceGrid::from_text("0.1").unwrap();
    let (mut messages, mut quoted, mut sent, mut checksum) = (0_usize, 0_usize, 0_usize, 0.0);
    let mut elapsed = std::time::Duration::ZERO;
    for _ in 0..repeats {
        let mut book = OrderBook::new("BTCUSDT", grid, Sequencing::Binance);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let mut layouts = LevelLayouts::default();
        for text in &before {
            apply_depth_json(&mut book, text, None, &mut bids, &mut asks, &mut layouts).unwrap();
        }
        book.apply_snapshot(
            snapshot["lastUpdateId"].as_u64(),
            &levels(&grid, &snapshot["bids"]),
            &levels(&grid, &snapshot["asks"]),
            snapshot["E"].as_i64().map(|ms| ms * 1_000_000),
            None,
        )
        .unwrap();
        let model = QuoteModel::Ladder(LadderParams {
            bps: 2.0,
            orders_per_side: 5,
            final_order_distance: 5.0,
            leverage: 5.0,
            size_fraction: 0.05,
            ..LadderParams::default()
        });
        let rules =
            InstrumentRules::new(grid, PriceGrid::from_text("0.001").unwrap(), 0.0, 5.0).unwrap();
        let mut maker = Maker {
            book,
            tape: TradeTape::new(10_000),
            engine: FeatureEngine::new(FeatureConfig::default()).unwrap(),
            generator: QuoteGenerator::new(model, rules, 0.0).unwrap(),
            rules: DiffRules::default(),
            ids: ClientOrderIds::new("bench-").unwrap(),
            account: Account::new(100_000.0),
            risk: with_risk.then(|| {
                RiskGate::new(RiskLimits {
                    max_position: 1.0,
                    max_order_size: 1.0,
                    max_open_orders: 20,
                    stale_book_ms: 0.0,
                    ..RiskLimits::default()
                })
                .unwrap()
            }),
            scratch: TickScratch::default(),
            bids,
            asks,
            layouts,
        };
        for event in &events {
            match event {
                Event::Trade(trade) => maker.tape.push(*trade),
                Event::Depth(text) => {
                    let start = std::time::Instant::now();
                    let (decision, actions) = on_depth_message(&mut maker, text);
                    elapsed += start.elapsed();
                    messages += 1;
                    quoted += usize::from(decision == Some(Decision::Quoted));
                    sent += actions.len();
                    checksum += actions
                        .iter()
                        .map(|action| match action {
                            OrderAction::Place { price, size, .. } => price * size,
                            OrderAction::Cancel { price, .. } => -price,
                            OrderAction::Amend { .. } => 0.0,
                        })
                        .sum::<f64>();
                    acknowledge(&mut maker.account, &actions);
                }
            }
        }
    }
    println!(
        "{messages} messages ({quoted} quoted, {sent} actions, checksum {checksum:.6}): {:.3} µs per message",
        elapsed.as_secs_f64() * 1e6 / messages as f64
    );
}

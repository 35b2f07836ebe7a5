//! The market-making tick of one symbol: the seed's loop body as one call. After the book has
//! taken a depth message, the features update; then the risk gate looks at the market and the
//! account; once the features are warm the quote generator makes the ladder and the diff turns
//! it into the actions that bring our live orders to it, which the gate filters. A halted
//! symbol gets cancels for every live order and nothing else.
//!
//! The live loop, the backtester and Python scripts all run this same function, so one depth
//! message costs one crossing from Python into the core.

use crate::account::Account;
use crate::book::{BookStatus, OrderBook};
use crate::error::CoreResult;
use crate::features::FeatureEngine;
use crate::orders::{diff_with, ClientOrderIds, DiffRules, DiffScratch, LiveOrder, OrderAction};
use crate::quotes::{QuoteGenerator, QuoteInputs, QuoteLadder};
use crate::risk::{HaltReason, Refusal, RiskGate, RiskState};
use crate::trades::TradeTape;

/// What the tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The book is not live or has an empty side: nothing to quote against.
    NoBook,
    /// The features are still warming up (`tick_window` not yet filled).
    Warming,
    /// The risk gate is halted: only cancels go out.
    Halted(HaltReason),
    /// A ladder was quoted and diffed against our live orders.
    Quoted,
}

/// The market inputs of a tick that do not come from the book, the features or the account.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickClock {
    /// Now, nanoseconds (the risk gate's clock for stale books).
    pub now_ns: i64,
    /// Time left to the horizon, for Avellaneda–Stoikov and GLFT.
    pub time_left: f64,
    /// Reference price for the optional price band (0: none).
    pub reference_price: f64,
}

/// The parts of one symbol's market maker that a tick changes or reads.
pub struct SymbolMaker<'a> {
    /// The book, already updated by the depth message.
    pub book: &'a OrderBook,
    /// The symbol's trades (for trade-flow features), if kept.
    pub tape: Option<&'a TradeTape>,
    /// The feature engine.
    pub engine: &'a mut FeatureEngine,
    /// The quote generator.
    pub generator: &'a QuoteGenerator,
    /// How the diff keeps, amends, cancels and places.
    pub rules: &'a DiffRules,
    /// Client order ids for new orders.
    pub ids: &'a mut ClientOrderIds,
    /// Our account on this symbol: position, balance, open orders.
    pub account: &'a Account,
    /// The risk gate, if any.
    pub risk: Option<&'a mut RiskGate>,
}

/// Reused between ticks so that a tick in steady state allocates only for the actions it sends.
#[derive(Debug, Default)]
pub struct TickScratch {
    live: Vec<LiveOrder>,
    diff: DiffScratch,
    /// The ladder of the last quoted tick.
    pub quotes: Option<QuoteLadder>,
    /// Actions refused by the risk gate in the last tick.
    pub refused: Vec<Refusal>,
}

/// Runs one tick after the book changed. Returns the decision and the actions to send
/// (cancels first, then amends, then places).
///
/// # Errors
/// Only when the quote generator rejects its inputs (e.g. a non-finite inventory).
pub fn tick(
    maker: SymbolMaker<'_>,
    clock: TickClock,
    scratch: &mut TickScratch,
) -> CoreResult<(Decision, Vec<OrderAction>)> {
    let SymbolMaker {
        book,
        tape,
        engine,
        generator,
        rules,
        ids,
        account,
        risk,
    } = maker;
    scratch.refused.clear();
    let event_time = book
        .exchange_time_ns()
        .or(book.receive_time_ns())
        .unwrap_or(clock.now_ns);
    let book_usable = engine.update(book, tape, event_time) && book.status() == BookStatus::Live;
    let features = *engine.features();
    let mid = book.mid().unwrap_or(0.0);
    account.read_live_orders(&mut scratch.live);
    let live = &scratch.live[..];
    if let Some(gate) = risk {
        let state = RiskState {
            now_ns: clock.now_ns,
            book_updated_ns: book.receive_time_ns().or(book.exchange_time_ns()),
            book_crossed: book.is_crossed(),
            book_needs_resync: book.status() == BookStatus::NeedsResync,
            volatility: features.volatility,
            equity: account.balance()
                + if mid > 0.0 {
                    account.unrealized_pnl(mid)
                } else {
                    0.0
                },
            position: account.position(),
            mid,
            open_orders: live.len(),
        };
        gate.check(&state);
        if let Some((reason, _)) = gate.halt() {
            let cancels = live
                .iter()
                .map(|order| OrderAction::Cancel {
                    client_order_id: order.client_order_id.clone(),
                    side: order.side,
                    price: order.price,
                })
                .collect();
            scratch.quotes = None;
            return Ok((Decision::Halted(reason), cancels));
        }
        if !book_usable {
            return Ok((Decision::NoBook, Vec::new()));
        }
        if !features.ready {
            return Ok((Decision::Warming, Vec::new()));
        }
        let ladder = quote_into(
            &mut scratch.quotes,
            generator,
            &inputs(book, &features, account, mid, clock),
        )?;
        let actions = diff_with(ladder, live, rules, ids, &mut scratch.diff);
        let (allowed, refused) = gate.filter(actions, &state);
        scratch.refused = refused;
        return Ok((Decision::Quoted, allowed));
    }
    if !book_usable {
        return Ok((Decision::NoBook, Vec::new()));
    }
    if !features.ready {
        return Ok((Decision::Warming, Vec::new()));
    }
    let ladder = quote_into(
        &mut scratch.quotes,
        generator,
        &inputs(book, &features, account, mid, clock),
    )?;
    let actions = diff_with(ladder, live, rules, ids, &mut scratch.diff);
    Ok((Decision::Quoted, actions))
}

/// Quotes into the last tick's ladder, reusing its lists; on an error the last ladder stays as
/// it was.
fn quote_into<'l>(
    quotes: &'l mut Option<QuoteLadder>,
    generator: &QuoteGenerator,
    inputs: &QuoteInputs,
) -> CoreResult<&'l QuoteLadder> {
    match quotes {
        Some(ladder) => generator.quote_into(inputs, ladder)?,
        None => *quotes = Some(generator.quote(inputs)?),
    }
    Ok(quotes.get_or_insert_with(QuoteLadder::default))
}

fn inputs(
    book: &OrderBook,
    features: &crate::features::Features,
    account: &Account,
    mid: f64,
    clock: TickClock,
) -> QuoteInputs {
    QuoteInputs {
        best_bid: book.best_bid_price().unwrap_or(0.0),
        best_ask: book.best_ask_price().unwrap_or(0.0),
        mid,
        microprice: book.microprice().unwrap_or(mid),
        inventory: account.position(),
        volatility: features.volatility,
        skew: features.skew,
        balance: account.balance(),
        time_left: clock.time_left,
        reference_price: clock.reference_price,
    }
}

#[cfg(test)]
mod tests;

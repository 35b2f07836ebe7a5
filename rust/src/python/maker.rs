use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::account::PyAccount;
use super::book::{PyOrderBook, PyUpdateOutcome};
use super::features::PyFeatureEngine;
use super::orders::{PyOrderAction, PyOrderPlanner, PyRiskGate};
use super::quotes::{PyQuoteGenerator, PyQuotes};
use super::trades::PyTradeTape;
use crate::book::ApplyOutcome;
use crate::maker::{tick, Decision, SymbolMaker, TickClock, TickScratch};

/// The market maker of one symbol: the seed's loop body — book update, features, quotes, order
/// diff and risk gate — as one call per depth message, run inside the core.
///
/// It holds the symbol's :class:`OrderBook`, :class:`FeatureEngine`, :class:`QuoteGenerator`,
/// :class:`OrderPlanner` and :class:`Account` (and optionally its :class:`TradeTape` and
/// :class:`RiskGate`); they stay ordinary objects that Python can read and change between
/// ticks (hot reload, fills from the user stream, acknowledgements).
///
/// Each tick updates the features; while the features warm up nothing is quoted; once they are
/// ready the ladder is quoted and diffed against the account's open orders. With a risk gate, a
/// halt (stale book, gap, crossed book, drawdown, volatility) sends cancels for every open order
/// and nothing else until the gate is reset.
///
/// Examples
/// --------
/// >>> from marketmaker import (Account, FeatureEngine, MarketMaker, OrderBook, OrderPlanner,
/// ...                          QuoteGenerator)
/// >>> book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
/// >>> _ = book.apply_binance_snapshot({"lastUpdateId": 10, "bids": [["61800.0", "3"]],
/// ...                                  "asks": [["61800.1", "2"]]})
/// >>> maker = MarketMaker(book, FeatureEngine(depths=[1, 5], tick_window=2),
/// ...                     QuoteGenerator("ladder", tick_size=0.1, lot_size=0.001, bps=2,
/// ...                                    orders_per_side=2, leverage=2),
/// ...                     OrderPlanner("mm1-"), Account(balance=10_000))
/// >>> maker.on_depth_message('{"e":"depthUpdate","E":1,"U":9,"u":11,"pu":8,'
/// ...                        '"b":[["61800.0","4"]],"a":[]}'), maker.decision
/// ([], 'warming')
/// >>> actions = maker.on_depth_message('{"e":"depthUpdate","E":2,"U":12,"u":12,"pu":11,'
/// ...                                  '"b":[],"a":[["61800.1","1"]]}')
/// >>> maker.decision, [(a.kind, a.side) for a in actions]
/// ('quoted', [('place', Side.BUY), ('place', Side.BUY), ('place', Side.SELL), ('place', Side.SELL)])
#[pyclass(name = "MarketMaker", module = "marketmaker._core")]
pub struct PyMarketMaker {
    book: Py<PyOrderBook>,
    engine: Py<PyFeatureEngine>,
    generator: Py<PyQuoteGenerator>,
    planner: Py<PyOrderPlanner>,
    account: Py<PyAccount>,
    tape: Option<Py<PyTradeTape>>,
    risk: Option<Py<PyRiskGate>>,
    scratch: TickScratch,
    decision: Option<Decision>,
    last_outcome: Option<ApplyOutcome>,
}

fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        })
}

impl PyMarketMaker {
    fn run_tick(
        &mut self,
        py: Python<'_>,
        now_ns: Option<i64>,
        time_left: f64,
        reference_price: Option<f64>,
    ) -> PyResult<Vec<PyOrderAction>> {
        let book = self.book.borrow(py);
        let mut engine = self.engine.borrow_mut(py);
        let generator = self.generator.borrow(py);
        let mut planner = self.planner.borrow_mut(py);
        let planner = &mut *planner;
        let account = self.account.borrow(py);
        let tape = self.tape.as_ref().map(|tape| tape.borrow(py));
        let mut risk = self.risk.as_ref().map(|risk| risk.borrow_mut(py));
        let (decision, actions) = tick(
            SymbolMaker {
                book: &book.book,
                tape: tape.as_ref().map(|tape| &tape.tape),
                engine: &mut engine.engine,
                generator: &generator.generator,
                rules: &planner.rules,
                ids: &mut planner.ids,
                account: &account.account,
                risk: risk.as_mut().map(|risk| &mut risk.gate),
            },
            TickClock {
                now_ns: now_ns.unwrap_or_else(wall_clock_ns),
                time_left,
                reference_price: reference_price.unwrap_or(0.0),
            },
            &mut self.scratch,
        )?;
        self.decision = Some(decision);
        Ok(actions
            .into_iter()
            .map(|action| PyOrderAction { action })
            .collect())
    }
}

#[pymethods]
impl PyMarketMaker {
    #[new]
    #[pyo3(signature = (book, engine, generator, planner, account, *, tape = None, risk = None))]
    fn new(
        book: Py<PyOrderBook>,
        engine: Py<PyFeatureEngine>,
        generator: Py<PyQuoteGenerator>,
        planner: Py<PyOrderPlanner>,
        account: Py<PyAccount>,
        tape: Option<Py<PyTradeTape>>,
        risk: Option<Py<PyRiskGate>>,
    ) -> Self {
        Self {
            book,
            engine,
            generator,
            planner,
            account,
            tape,
            risk,
            scratch: TickScratch::default(),
            decision: None,
            last_outcome: None,
        }
    }

    /// Applies a Binance ``depthUpdate`` (its websocket text, ``str`` or ``bytes``) to the book
    /// and runs the tick. Returns the actions to send: cancels first, then amends, then places.
    /// A message the book buffers (no snapshot yet) or drops as stale runs no tick.
    ///
    /// ``now_ns`` is the risk gate's clock (default: the wall clock); ``time_left`` and
    /// ``reference_price`` are passed to the quote generator.
    ///
    /// Raises
    /// ------
    /// MalformedMessageError, OffTickError, InvalidSizeError
    ///     For a message that is not a valid ``depthUpdate``; the book is unchanged.
    #[pyo3(signature = (message, *, receive_time_ns = None, now_ns = None, time_left = 0.0, reference_price = None))]
    fn on_depth_message(
        &mut self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        receive_time_ns: Option<i64>,
        now_ns: Option<i64>,
        time_left: f64,
        reference_price: Option<f64>,
    ) -> PyResult<Vec<PyOrderAction>> {
        let outcome = {
            let mut book = self.book.borrow_mut(py);
            let outcome = if let Ok(text) = message.cast::<PyString>() {
                book.apply_depth_text(text.to_str()?, receive_time_ns)?
            } else if let Ok(bytes) = message.cast::<PyBytes>() {
                let text = std::str::from_utf8(bytes.as_bytes()).map_err(|_| {
                    super::error::MalformedMessageError::new_err(
                        "depthUpdate: the message is not UTF-8",
                    )
                })?;
                book.apply_depth_text(text, receive_time_ns)?
            } else {
                return Err(PyTypeError::new_err("message must be str or bytes"));
            };
            book.outcome(outcome)?;
            outcome
        };
        self.last_outcome = Some(outcome);
        if matches!(outcome, ApplyOutcome::Buffered | ApplyOutcome::Stale) {
            return Ok(Vec::new());
        }
        self.run_tick(py, now_ns, time_left, reference_price)
    }

    /// Runs the tick on the book as it is (after it was changed by other means: a snapshot, a
    /// Bybit message, levels set by hand). Same return as :meth:`on_depth_message`.
    #[pyo3(signature = (*, now_ns = None, time_left = 0.0, reference_price = None))]
    fn tick(
        &mut self,
        py: Python<'_>,
        now_ns: Option<i64>,
        time_left: f64,
        reference_price: Option<f64>,
    ) -> PyResult<Vec<PyOrderAction>> {
        self.run_tick(py, now_ns, time_left, reference_price)
    }

    /// What the last tick decided: ``"no_book"``, ``"warming"``, ``"quoted"`` or
    /// ``"halted:<reason>"``; None before the first tick.
    #[getter]
    fn decision(&self) -> Option<String> {
        self.decision.map(|decision| match decision {
            Decision::NoBook => "no_book".to_owned(),
            Decision::Warming => "warming".to_owned(),
            Decision::Quoted => "quoted".to_owned(),
            Decision::Halted(reason) => format!("halted:{}", reason.as_str()),
        })
    }

    /// How the book took the last depth message (None before the first).
    #[getter]
    fn last_outcome(&self) -> Option<PyUpdateOutcome> {
        self.last_outcome.map(Into::into)
    }

    /// The ladder of the last quoted tick (None when the last tick did not quote).
    #[getter]
    fn quotes(&self) -> Option<PyQuotes> {
        if self.decision == Some(Decision::Quoted) {
            self.scratch
                .quotes
                .clone()
                .map(|ladder| PyQuotes { ladder })
        } else {
            None
        }
    }

    /// Actions the risk gate held back in the last tick, with the reason.
    #[getter]
    fn refused(&self) -> Vec<(PyOrderAction, String)> {
        self.scratch
            .refused
            .iter()
            .map(|refusal| {
                (
                    PyOrderAction {
                        action: refusal.action.clone(),
                    },
                    refusal.reason.clone(),
                )
            })
            .collect()
    }

    #[getter]
    fn book(&self, py: Python<'_>) -> Py<PyOrderBook> {
        self.book.clone_ref(py)
    }

    #[getter]
    fn engine(&self, py: Python<'_>) -> Py<PyFeatureEngine> {
        self.engine.clone_ref(py)
    }

    #[getter]
    fn generator(&self, py: Python<'_>) -> Py<PyQuoteGenerator> {
        self.generator.clone_ref(py)
    }

    #[getter]
    fn planner(&self, py: Python<'_>) -> Py<PyOrderPlanner> {
        self.planner.clone_ref(py)
    }

    #[getter]
    fn account(&self, py: Python<'_>) -> Py<PyAccount> {
        self.account.clone_ref(py)
    }

    #[getter]
    fn tape(&self, py: Python<'_>) -> Option<Py<PyTradeTape>> {
        self.tape.as_ref().map(|tape| tape.clone_ref(py))
    }

    #[getter]
    fn risk(&self, py: Python<'_>) -> Option<Py<PyRiskGate>> {
        self.risk.as_ref().map(|risk| risk.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "MarketMaker({}, decision={})",
            super::quoted(self.book.borrow(py).book.symbol()),
            super::quoted_or_none(self.decision().as_deref())
        )
    }
}

//! `SharedState` for Python: the core registry holding each symbol's book, tape and account as
//! the same live Python objects the caller gets back.

use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString};

use super::account::PyAccount;
use super::book::{grid_of, sequencing_name, PyOrderBook};
use super::trades::PyTradeTape;
use crate::account::Account;
use crate::book::OrderBook;
use crate::state::SharedState;
use crate::trades::TradeTape;

/// The Python objects that make up one symbol's state.
pub struct PySymbol {
    book: Py<PyOrderBook>,
    tape: Py<PyTradeTape>,
    account: Py<PyAccount>,
}

/// The shared state of one exchange: its symbols, each with an order book, a trade tape and
/// an account, and which API key (by id — never the secret) serves each symbol.
///
/// Books follow the exchange's sequencing rules (``binance`` and ``sim``: Binance; ``bybit``:
/// Bybit; anything else: unsequenced).
///
/// Examples
/// --------
/// >>> from marketmaker import SharedState
/// >>> state = SharedState("binance")
/// >>> state.add_symbols(["BTCUSDT", "ETHUSDT"], tick_sizes={"BTCUSDT": "0.1", "ETHUSDT": "0.01"})
/// >>> state.book("BTCUSDT").sequencing
/// 'binance'
#[pyclass(name = "SharedState", module = "marketmaker._core", subclass)]
pub struct PySharedState {
    state: SharedState<PySymbol>,
    tape_capacity: usize,
    watch_depths: Vec<usize>,
}

#[pymethods]
impl PySharedState {
    #[new]
    #[pyo3(signature = (exchange, *, tape_capacity = 10_000, watch_depths = vec![5, 20]))]
    fn new(exchange: &str, tape_capacity: usize, watch_depths: Vec<usize>) -> PyResult<Self> {
        if watch_depths.contains(&0) {
            return Err(super::error::InvalidParameterError::new_err(
                "watch_depths must be positive",
            ));
        }
        Ok(Self {
            state: SharedState::new(exchange)?,
            tape_capacity: tape_capacity.max(1),
            watch_depths,
        })
    }

    /// The exchange name.
    #[getter]
    fn exchange(&self) -> &str {
        self.state.exchange()
    }

    /// The sequencing rules of this exchange's books.
    #[getter]
    fn sequencing(&self) -> &'static str {
        sequencing_name(self.state.sequencing())
    }

    /// Symbols in the order they were added.
    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.state.symbols().map(str::to_owned).collect()
    }

    /// Adds one symbol with its tick size and starting balance.
    #[pyo3(signature = (symbol, tick_size, *, balance = 0.0))]
    fn add_symbol(
        &mut self,
        py: Python<'_>,
        symbol: &str,
        tick_size: &Bound<'_, PyAny>,
        balance: f64,
    ) -> PyResult<()> {
        crate::state::check_symbol(symbol)?;
        if self.state.contains(symbol) {
            return Err(crate::error::CoreError::DuplicateSymbol(symbol.to_owned()).into());
        }
        let book = OrderBook::new(symbol, grid_of(tick_size)?, self.state.sequencing());
        let parts = PySymbol {
            book: Py::new(py, PyOrderBook::create(book, &self.watch_depths, false)?)?,
            tape: Py::new(
                py,
                PyTradeTape {
                    tape: TradeTape::new(self.tape_capacity),
                },
            )?,
            account: Py::new(
                py,
                PyAccount {
                    account: Account::new(balance),
                },
            )?,
        };
        self.state.add_symbol(symbol, |_| Ok(parts))?;
        Ok(())
    }

    /// Adds symbols (the original bot's ``add_symbols``). ``tick_sizes`` is one tick size for
    /// all, or a mapping from symbol to tick size. Nothing is added if any symbol is invalid.
    fn add_symbols(
        &mut self,
        py: Python<'_>,
        symbols: Vec<String>,
        tick_sizes: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut ticks = Vec::with_capacity(symbols.len());
        for symbol in &symbols {
            crate::state::check_symbol(symbol)?;
            if self.state.contains(symbol)
                || symbols.iter().filter(|other| *other == symbol).count() > 1
            {
                return Err(crate::error::CoreError::DuplicateSymbol(symbol.clone()).into());
            }
            let tick = if tick_sizes.cast::<PyString>().is_err()
                && tick_sizes.cast::<PyMapping>().is_ok()
            {
                tick_sizes.get_item(symbol).map_err(|_| {
                    pyo3::exceptions::PyKeyError::new_err(format!(
                        "tick_sizes has no entry for {symbol:?}"
                    ))
                })?
            } else {
                tick_sizes.clone()
            };
            grid_of(&tick)?;
            ticks.push(tick);
        }
        for (symbol, tick) in symbols.iter().zip(ticks) {
            self.add_symbol(py, symbol, &tick, 0.0)?;
        }
        Ok(())
    }

    /// The live order book of ``symbol``.
    fn book(&self, py: Python<'_>, symbol: &str) -> PyResult<Py<PyOrderBook>> {
        Ok(self.state.get(symbol)?.book.clone_ref(py))
    }

    /// The live trade tape of ``symbol``.
    fn tape(&self, py: Python<'_>, symbol: &str) -> PyResult<Py<PyTradeTape>> {
        Ok(self.state.get(symbol)?.tape.clone_ref(py))
    }

    /// The live account of ``symbol``.
    fn account(&self, py: Python<'_>, symbol: &str) -> PyResult<Py<PyAccount>> {
        Ok(self.state.get(symbol)?.account.clone_ref(py))
    }

    /// Says which API key (by id, never its secret) serves ``symbol``.
    fn assign_key(&mut self, symbol: &str, key_id: &str) -> PyResult<()> {
        Ok(self.state.assign_key(symbol, key_id)?)
    }

    /// The id of the API key serving ``symbol``, or None.
    fn key_id(&self, symbol: &str) -> PyResult<Option<String>> {
        self.state.get(symbol)?;
        Ok(self.state.key_id(symbol).map(str::to_owned))
    }

    fn __contains__(&self, symbol: &str) -> bool {
        self.state.contains(symbol)
    }

    fn __len__(&self) -> usize {
        self.state.symbols().len()
    }

    fn __repr__(&self) -> String {
        let symbols: Vec<String> = self.state.symbols().map(super::quoted).collect();
        format!(
            "SharedState({}, symbols=[{}])",
            super::quoted(self.state.exchange()),
            symbols.join(", ")
        )
    }
}

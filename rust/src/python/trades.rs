//! `TradeTape`, `Trade` and `TradeWindow` for Python.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::error::{InvalidPriceError, InvalidSizeError, MalformedMessageError};
use super::side::{side_of, PySide};
use crate::side::Side;
use crate::trades::{Trade, TradeTape, TradeWindow};

/// One public trade.
#[pyclass(name = "Trade", module = "marketmaker._core", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct PyTrade {
    price: f64,
    size: f64,
    aggressor: PySide,
    exchange_time_ns: i64,
    trade_id: Option<u64>,
}

impl From<&Trade> for PyTrade {
    fn from(trade: &Trade) -> Self {
        Self {
            price: trade.price,
            size: trade.size,
            aggressor: trade.aggressor.into(),
            exchange_time_ns: trade.exchange_time_ns,
            trade_id: trade.trade_id,
        }
    }
}

#[pymethods]
impl PyTrade {
    fn __repr__(&self) -> String {
        format!(
            "Trade(price={}, size={}, aggressor=Side.{}, exchange_time_ns={}, trade_id={})",
            self.price,
            self.size,
            Side::from(self.aggressor).as_str(),
            self.exchange_time_ns,
            self.trade_id
                .map_or_else(|| "None".to_owned(), |id| id.to_string())
        )
    }
}

/// Aggregates over a window of trades.
#[pyclass(
    name = "TradeWindow",
    module = "marketmaker._core",
    frozen,
    eq,
    get_all
)]
#[derive(Clone, PartialEq)]
pub struct PyTradeWindow {
    count: usize,
    buy_volume: f64,
    sell_volume: f64,
    notional: f64,
    vwap: Option<f64>,
    imbalance: f64,
    first_time_ns: Option<i64>,
    last_time_ns: Option<i64>,
}

impl From<TradeWindow> for PyTradeWindow {
    fn from(window: TradeWindow) -> Self {
        Self {
            count: window.count,
            buy_volume: window.buy_volume,
            sell_volume: window.sell_volume,
            notional: window.notional,
            vwap: window.vwap,
            imbalance: window.imbalance(),
            first_time_ns: window.first_time_ns,
            last_time_ns: window.last_time_ns,
        }
    }
}

#[pymethods]
impl PyTradeWindow {
    /// Buy plus sell volume.
    #[getter]
    fn volume(&self) -> f64 {
        self.buy_volume + self.sell_volume
    }

    fn __repr__(&self) -> String {
        format!(
            "TradeWindow(count={}, buy_volume={}, sell_volume={}, vwap={}, imbalance={})",
            self.count,
            self.buy_volume,
            self.sell_volume,
            self.vwap
                .map_or_else(|| "None".to_owned(), |v| v.to_string()),
            self.imbalance
        )
    }
}

/// The recent public trades of one instrument: a ring buffer of ``capacity`` trades with
/// aggregates over the last N trades or the last T milliseconds.
///
/// Examples
/// --------
/// >>> from marketmaker import TradeTape, Side
/// >>> tape = TradeTape(capacity=1000)
/// >>> tape.push(100.0, 2.0, Side.BUY, exchange_time_ns=1_000_000)
/// >>> tape.push(101.0, 1.0, Side.SELL, exchange_time_ns=2_000_000)
/// >>> tape.window(trades=10).vwap
/// 100.33333333333333
#[pyclass(name = "TradeTape", module = "marketmaker._core")]
pub struct PyTradeTape {
    pub(crate) tape: TradeTape,
}

fn positive(value: f64, what: &str) -> PyResult<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else if what == "price" {
        Err(InvalidPriceError::new_err(format!(
            "trade price {value} must be positive and finite"
        )))
    } else {
        Err(InvalidSizeError::new_err(format!(
            "trade size {value} must be positive and finite"
        )))
    }
}

fn number(value: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_str()?;
        return text.trim().parse().map_err(|_| {
            MalformedMessageError::new_err(format!("trade: {what} {text:?} is not a number"))
        });
    }
    value.extract()
}

#[pymethods]
impl PyTradeTape {
    #[new]
    #[pyo3(signature = (capacity = 10_000))]
    fn new(capacity: usize) -> PyResult<Self> {
        if capacity == 0 {
            return Err(PyValueError::new_err("capacity must be at least 1"));
        }
        Ok(Self {
            tape: TradeTape::new(capacity),
        })
    }

    /// Adds a trade; the oldest falls off when full.
    #[pyo3(signature = (price, size, aggressor, *, exchange_time_ns, trade_id = None))]
    fn push(
        &mut self,
        price: f64,
        size: f64,
        aggressor: &Bound<'_, PyAny>,
        exchange_time_ns: i64,
        trade_id: Option<u64>,
    ) -> PyResult<()> {
        self.tape.push(Trade {
            price: positive(price, "price")?,
            size: positive(size, "size")?,
            aggressor: side_of(aggressor)?,
            exchange_time_ns,
            trade_id,
        });
        Ok(())
    }

    /// Adds a parsed Binance ``trade`` or ``aggTrade`` event (``p``, ``q``, ``m``, ``T``, and
    /// ``t`` or ``a``); ``m`` true means the buyer was the maker, so the seller was the
    /// aggressor.
    fn push_binance_trade(&mut self, event: &Bound<'_, PyDict>) -> PyResult<()> {
        let event = match event.get_item("data")? {
            Some(data) => data.cast_into::<PyDict>()?,
            None => event.clone(),
        };
        let field = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            event.get_item(key)?.ok_or_else(|| {
                MalformedMessageError::new_err(format!("trade: field {key:?} is missing"))
            })
        };
        let buyer_is_maker: bool = field("m")?.extract()?;
        let trade_id = match event.get_item("t")? {
            Some(id) => Some(id.extract::<u64>()?),
            None => event
                .get_item("a")?
                .map(|id| id.extract::<u64>())
                .transpose()?,
        };
        self.tape.push(Trade {
            price: positive(number(&field("p")?, "price")?, "price")?,
            size: positive(number(&field("q")?, "size")?, "size")?,
            aggressor: if buyer_is_maker {
                Side::Sell
            } else {
                Side::Buy
            },
            exchange_time_ns: field("T")?.extract::<i64>()? * 1_000_000,
            trade_id,
        });
        Ok(())
    }

    /// Aggregates over the last ``trades`` trades, or over the trades in the last ``ms``
    /// milliseconds before ``now_ns`` (default: the newest trade's time). Give exactly one.
    #[pyo3(signature = (*, trades = None, ms = None, now_ns = None))]
    fn window(
        &self,
        trades: Option<usize>,
        ms: Option<f64>,
        now_ns: Option<i64>,
    ) -> PyResult<PyTradeWindow> {
        match (trades, ms) {
            (Some(count), None) => Ok(self.tape.last_trades(count).into()),
            (None, Some(ms)) if ms.is_finite() && ms >= 0.0 => {
                Ok(self.tape.last_span((ms * 1e6) as i64, now_ns).into())
            }
            (None, Some(ms)) => Err(PyValueError::new_err(format!(
                "ms must be finite and >= 0, got {ms}"
            ))),
            _ => Err(PyValueError::new_err("give exactly one of trades= or ms=")),
        }
    }

    /// The newest trade, or None.
    #[getter]
    fn last(&self) -> Option<PyTrade> {
        self.tape.last().map(PyTrade::from)
    }

    /// The trades held, oldest first.
    fn trades(&self) -> Vec<PyTrade> {
        self.tape.iter().map(PyTrade::from).collect()
    }

    /// How many trades it keeps.
    #[getter]
    fn capacity(&self) -> usize {
        self.tape.capacity()
    }

    /// Trades ever pushed.
    #[getter]
    fn total_count(&self) -> u64 {
        self.tape.total_count()
    }

    fn __len__(&self) -> usize {
        self.tape.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "TradeTape(capacity={}, len={})",
            self.tape.capacity(),
            self.tape.len()
        )
    }
}

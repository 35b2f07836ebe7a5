//! `FeatureEngine` and its `Features` snapshot for Python, and the batch path over a whole
//! stream.

use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::book::PyOrderBook;
use super::trades::PyTradeTape;
use crate::batch::{self, BatchPrices, BatchTrades};
use crate::features::{FeatureConfig, FeatureEngine, Features, Horizon, SkewWeights};
use crate::trades::TradeTape;

/// The features of one symbol at one tick. Frozen; read attributes or :meth:`as_dict`.
#[pyclass(name = "Features", module = "marketmaker._core", frozen)]
#[derive(Clone)]
pub struct PyFeatures {
    pub(crate) features: Features,
    depths: Vec<usize>,
}

/// One `#[pymethods]` block: a getter per scalar feature, then the methods given after `;`.
macro_rules! features_class {
    ($($name:ident: $type:ty),* $(,)? ; $($methods:tt)*) => {
        #[pymethods]
        impl PyFeatures {
            $(
                #[getter]
                fn $name(&self) -> $type {
                    self.features.$name
                }
            )*
            $($methods)*
        }

        impl PyFeatures {
            fn scalar_items(&self) -> Vec<(&'static str, f64)> {
                vec![$((stringify!($name), self.features.$name as f64)),*]
            }
        }
    };
}

features_class!(
    tick_count: u64,
    time_ns: i64,
    mid: f64,
    microprice: f64,
    weighted_mid: f64,
    spread_bps: f64,
    ofi: f64,
    deep_ofi: f64,
    ofi_normalized: f64,
    deep_ofi_normalized: f64,
    voi: f64,
    voi_normalized: f64,
    trade_imbalance: f64,
    trade_count: u64,
    vwap: f64,
    basis_bps: f64,
    volatility: f64,
    volatility_ewma: f64,
    prediction_bps: f64,
    hit_rate: f64,
    predictions_scored: u64,
    skew: f64;
    /// Whether the windows have filled (``tick_window`` ticks seen).
    #[getter]
    fn ready(&self) -> bool {
        self.features.ready
    }

    /// Order-book imbalance at each of the engine's depths, in [−1, 1].
    #[getter]
    fn imbalances<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.features.imbalances())
    }

    /// The depths the imbalances were taken at.
    #[getter]
    fn depths(&self) -> Vec<usize> {
        self.depths.clone()
    }

    /// Imbalance at ``depth`` (one of :attr:`depths`).
    fn imbalance(&self, depth: usize) -> PyResult<f64> {
        let index = self
            .depths
            .iter()
            .position(|d| *d == depth)
            .ok_or_else(|| {
                PyValueError::new_err(format!("depth {depth} is not one of {:?}", self.depths))
            })?;
        Ok(self.features.imbalances[index])
    }

    /// Every feature by name; imbalances as ``imbalance_<depth>``.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("ready", self.features.ready)?;
        // Integer fields keep their exact values (a nanosecond time does not fit a float).
        dict.set_item("tick_count", self.features.tick_count)?;
        dict.set_item("time_ns", self.features.time_ns)?;
        dict.set_item("trade_count", self.features.trade_count)?;
        dict.set_item("predictions_scored", self.features.predictions_scored)?;
        for (name, value) in self.scalar_items() {
            if !dict.contains(name)? {
                dict.set_item(name, value)?;
            }
        }
        for (depth, value) in self.depths.iter().zip(self.features.imbalances()) {
            dict.set_item(format!("imbalance_{depth}"), value)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!(
            "Features(ready={}, tick_count={}, mid={}, microprice={}, imbalances={:?}, ofi_normalized={}, trade_imbalance={}, volatility={}, prediction_bps={}, skew={})",
            if self.features.ready { "True" } else { "False" },
            self.features.tick_count,
            self.features.mid,
            self.features.microprice,
            self.features.imbalances(),
            self.features.ofi_normalized,
            self.features.trade_imbalance,
            self.features.volatility,
            self.features.prediction_bps,
            self.features.skew
        )
    }
);

/// A count given from Python: negative values are a parameter error, not an overflow.
fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| {
        super::error::InvalidParameterError::new_err(format!(
            "{name} must not be negative, got {value}"
        ))
    })
}

fn weights_from(
    current: SkewWeights,
    weights: Option<&Bound<'_, PyDict>>,
) -> PyResult<SkewWeights> {
    let mut out = current;
    let Some(weights) = weights else {
        return Ok(out);
    };
    for (key, value) in weights.iter() {
        let name: String = key.extract()?;
        let value: f64 = value
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("weights.{name} must be a number")))?;
        let slot = match name.as_str() {
            "imbalance" => &mut out.imbalance,
            "deep_imbalance" => &mut out.deep_imbalance,
            "trade_imbalance" => &mut out.trade_imbalance,
            "voi" => &mut out.voi,
            "deep_ofi" => &mut out.deep_ofi,
            "prediction" => &mut out.prediction,
            other => {
                return Err(super::error::InvalidParameterError::new_err(format!(
                    "weights has no signal {other:?}: expected imbalance, deep_imbalance, trade_imbalance, voi, deep_ofi, prediction"
                )))
            }
        };
        *slot = value;
    }
    Ok(out)
}

/// The row-major batch output as a dict of column arrays.
fn columns<'py>(
    py: Python<'py>,
    names: &[String],
    out: Vec<Vec<f64>>,
    times: &[i64],
    ends: Option<&[bool]>,
) -> PyResult<Bound<'py, PyDict>> {
    let result = PyDict::new(py);
    for (name, values) in names.iter().zip(out) {
        if name == "time_ns" {
            // From the input, exactly: a nanosecond time does not fit a float.
            let row_times: Vec<i64> = match ends {
                Some(ends) => times
                    .iter()
                    .zip(ends)
                    .filter(|(_, end)| **end)
                    .map(|(t, _)| *t)
                    .collect(),
                None => times.to_vec(),
            };
            result.set_item(name, PyArray1::from_vec(py, row_times))?;
        } else if name == "ready" {
            let ready: Vec<bool> = values.iter().map(|r| *r != 0.0).collect();
            result.set_item(name, PyArray1::from_vec(py, ready))?;
        } else {
            // The column's vector becomes the array's memory (no copy).
            result.set_item(name, PyArray1::from_vec(py, values))?;
        }
    }
    Ok(result)
}

/// The feature engine of one symbol: order-book, order-flow and trade-flow signals, volatility,
/// a short-horizon mid prediction and the combined skew, updated from a book and its trade tape
/// on every tick. Definitions and sources: ``docs/features.md``.
///
/// Parameters
/// ----------
/// depths : sequence of int
///     Imbalance depths (levels per side), ascending, 1 to 4 of them.
/// tick_window : int
///     Ticks in every rolling window; :attr:`ready` once this many were seen.
/// level_decay : float
///     Imbalance level weights ``exp(-level_decay × i)``; 0 weighs levels equally.
/// ofi_levels : int
///     Levels per side in the multi-level order-flow imbalance (1 to 10).
/// volatility_half_life_s : float
///     Half-life of the EWMA volatility, seconds.
/// horizon_updates, horizon_ms : int, float
///     Prediction horizon in ticks, or in milliseconds (give at most one).
/// forgetting : float
///     Forgetting factor of the recursive least squares, in (0, 1].
/// prediction_scale_bps : float
///     The prediction that counts as a full-strength skew signal.
/// weights : dict, optional
///     Skew weights by signal: imbalance, deep_imbalance, trade_imbalance, voi, deep_ofi,
///     prediction (defaults 0.25, 0.10, 0.30, 0.10, 0.10, 0.15).
/// dead_band : float
///     Signals below this in absolute value do not move the skew.
///
/// Examples
/// --------
/// >>> from marketmaker import FeatureEngine, OrderBook
/// >>> book = OrderBook("BTCUSDT", tick_size=0.1)
/// >>> book.apply_levels(bids=[["100.0", "3"]], asks=[["100.2", "1"]])
/// >>> engine = FeatureEngine(depths=[1], tick_window=10)
/// >>> engine.update(book, time_ns=1_000_000)
/// True
/// >>> engine.features.imbalance(1), engine.features.microprice
/// (0.5, 100.15)
#[pyclass(name = "FeatureEngine", module = "marketmaker._core")]
pub struct PyFeatureEngine {
    pub(crate) engine: FeatureEngine,
}

impl PyFeatureEngine {
    fn snapshot(&self) -> PyFeatures {
        PyFeatures {
            features: *self.engine.features(),
            depths: self.engine.config().depths.clone(),
        }
    }
}

#[pymethods]
impl PyFeatureEngine {
    #[new]
    #[pyo3(signature = (
        depths = vec![5, 50],
        tick_window = 100,
        *,
        level_decay = 0.0,
        ofi_levels = 5,
        volatility_half_life_s = 30.0,
        horizon_updates = None,
        horizon_ms = None,
        forgetting = 0.999,
        prediction_scale_bps = 1.0,
        weights = None,
        dead_band = 0.2,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        depths: Vec<i64>,
        tick_window: i64,
        level_decay: f64,
        ofi_levels: i64,
        volatility_half_life_s: f64,
        horizon_updates: Option<i64>,
        horizon_ms: Option<f64>,
        forgetting: f64,
        prediction_scale_bps: f64,
        weights: Option<&Bound<'_, PyDict>>,
        dead_band: f64,
    ) -> PyResult<Self> {
        let horizon = match (horizon_updates, horizon_ms) {
            (Some(_), Some(_)) => {
                return Err(super::error::InvalidParameterError::new_err(
                    "give horizon_updates or horizon_ms, not both",
                ))
            }
            (_, Some(ms)) => Horizon::Millis(ms),
            (Some(ticks), None) => Horizon::Updates(count("horizon_updates", ticks)?),
            (None, None) => Horizon::Updates(10),
        };
        let depths = depths
            .into_iter()
            .map(|depth| count("depths", depth))
            .collect::<PyResult<Vec<_>>>()?;
        let tick_window = count("tick_window", tick_window)?;
        let ofi_levels = count("ofi_levels", ofi_levels)?;
        let config = FeatureConfig {
            depths,
            level_decay,
            tick_window,
            ofi_levels,
            volatility_half_life_s,
            horizon,
            forgetting,
            prediction_scale_bps,
            weights: weights_from(SkewWeights::default(), weights)?,
            dead_band,
        };
        Ok(Self {
            engine: FeatureEngine::new(config)?,
        })
    }

    /// Updates the features from ``book`` and the trades that reached ``tape`` since the last
    /// call. ``time_ns`` defaults to the book's exchange time (else its receive time, else 0).
    /// Returns False, changing nothing, when a side of the book is empty.
    #[pyo3(signature = (book, tape = None, time_ns = None))]
    fn update(
        &mut self,
        book: PyRef<'_, PyOrderBook>,
        tape: Option<PyRef<'_, PyTradeTape>>,
        time_ns: Option<i64>,
    ) -> bool {
        let book = &book.book;
        let time_ns = time_ns
            .or(book.exchange_time_ns())
            .or(book.receive_time_ns())
            .unwrap_or(0);
        self.engine
            .update(book, tape.as_ref().map(|tape| &tape.tape), time_ns)
    }

    /// The features as of the last tick (a frozen snapshot).
    #[getter]
    fn features(&self) -> PyFeatures {
        self.snapshot()
    }

    /// Whether the windows have filled.
    #[getter]
    fn ready(&self) -> bool {
        self.engine.features().ready
    }

    /// The combined skew in [−1, 1] as of the last tick.
    #[getter]
    fn skew(&self) -> f64 {
        self.engine.features().skew
    }

    /// Ticks seen.
    #[getter]
    fn tick_count(&self) -> u64 {
        self.engine.features().tick_count
    }

    /// The imbalance depths.
    #[getter]
    fn depths(&self) -> Vec<usize> {
        self.engine.config().depths.clone()
    }

    /// The window length in ticks.
    #[getter]
    fn tick_window(&self) -> usize {
        self.engine.config().tick_window
    }

    /// The skew weights by signal name.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let weights = self.engine.config().weights;
        let dict = PyDict::new(py);
        for (name, value) in [
            ("imbalance", weights.imbalance),
            ("deep_imbalance", weights.deep_imbalance),
            ("trade_imbalance", weights.trade_imbalance),
            ("voi", weights.voi),
            ("deep_ofi", weights.deep_ofi),
            ("prediction", weights.prediction),
        ] {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    /// The dead band of the skew signals.
    #[getter]
    fn dead_band(&self) -> f64 {
        self.engine.config().dead_band
    }

    /// Changes skew weights (a partial dict is fine) and/or the dead band, keeping the windows
    /// (a hot reload). Nothing changes if any value is invalid.
    #[pyo3(signature = (*, weights = None, dead_band = None))]
    fn set_skew(
        &mut self,
        weights: Option<&Bound<'_, PyDict>>,
        dead_band: Option<f64>,
    ) -> PyResult<()> {
        let weights = weights_from(self.engine.config().weights, weights)?;
        let dead_band = dead_band.unwrap_or(self.engine.config().dead_band);
        Ok(self.engine.set_skew(weights, dead_band)?)
    }

    /// Forgets every window and the model (e.g. after a book resync).
    fn reset(&mut self) {
        self.engine.reset();
    }

    /// Names of the columns :meth:`run_levels` returns, in order.
    fn column_names(&self) -> Vec<String> {
        batch::feature_column_names(&self.engine.config().depths)
    }

    /// Replays a whole stream inside Rust (the GIL is released) and returns the feature time
    /// series as a dict of float64 arrays, one entry per message (see :meth:`column_names`).
    ///
    /// Level updates ``(times_ns[i], is_bid[i], prices[i], sizes[i])`` are applied to ``book``
    /// with no sequence check (give it its snapshot first); the features update after each
    /// update that ends a message (``message_ends[i]``; every update if omitted). Trades
    /// (``trade_times_ns``, ``trade_prices``, ``trade_sizes``, ``trade_is_buy``) reach ``tape``
    /// (a new one if omitted) by time before each message's update. ``prices`` may be float64
    /// prices or int64 ticks. Everything is validated first.
    #[pyo3(signature = (book, times_ns, is_bid, prices, sizes, *, message_ends = None, trade_times_ns = None, trade_prices = None, trade_sizes = None, trade_is_buy = None, tape = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_levels<'py>(
        &mut self,
        py: Python<'py>,
        mut book: PyRefMut<'py, PyOrderBook>,
        times_ns: PyReadonlyArray1<'py, i64>,
        is_bid: PyReadonlyArray1<'py, bool>,
        prices: &Bound<'py, PyAny>,
        sizes: PyReadonlyArray1<'py, f64>,
        message_ends: Option<PyReadonlyArray1<'py, bool>>,
        trade_times_ns: Option<PyReadonlyArray1<'py, i64>>,
        trade_prices: Option<PyReadonlyArray1<'py, f64>>,
        trade_sizes: Option<PyReadonlyArray1<'py, f64>>,
        trade_is_buy: Option<PyReadonlyArray1<'py, bool>>,
        tape: Option<PyRefMut<'py, PyTradeTape>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let count = is_bid.len();
        let same = |len: usize, name: &str| -> PyResult<()> {
            if len == count {
                Ok(())
            } else {
                Err(PyValueError::new_err(format!(
                    "{name} has {len} entries, is_bid has {count}"
                )))
            }
        };
        same(times_ns.len(), "times_ns")?;
        same(sizes.len(), "sizes")?;
        if let Some(ends) = &message_ends {
            same(ends.len(), "message_ends")?;
        }
        let float_prices = prices.extract::<PyReadonlyArray1<'py, f64>>().ok();
        let tick_prices = prices.extract::<PyReadonlyArray1<'py, i64>>().ok();
        let (mut float_copy, mut tick_copy) = (Vec::new(), Vec::new());
        let prices = match (&float_prices, &tick_prices) {
            (Some(prices), _) => BatchPrices::Prices(super::slice_of(prices, &mut float_copy)),
            (None, Some(ticks)) => BatchPrices::Ticks(super::slice_of(ticks, &mut tick_copy)),
            _ => {
                return Err(PyTypeError::new_err(
                    "prices must be a 1-d float64 (prices) or int64 (ticks) array",
                ))
            }
        };
        let prices_len = match prices {
            BatchPrices::Prices(p) => p.len(),
            BatchPrices::Ticks(t) => t.len(),
        };
        same(prices_len, "prices")?;
        let (mut trade_times_copy, mut trade_prices_copy, mut trade_sizes_copy, mut buys_copy) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let trades =
            match (&trade_times_ns, &trade_prices, &trade_sizes, &trade_is_buy) {
                (None, None, None, None) => None,
                (Some(times), Some(trade_prices), Some(trade_sizes), Some(buys)) => {
                    let trades = BatchTrades {
                        times_ns: super::slice_of(times, &mut trade_times_copy),
                        prices: super::slice_of(trade_prices, &mut trade_prices_copy),
                        sizes: super::slice_of(trade_sizes, &mut trade_sizes_copy),
                        aggressor_bought: super::slice_of(buys, &mut buys_copy),
                    };
                    let n = trades.times_ns.len();
                    if trades.prices.len() != n
                        || trades.sizes.len() != n
                        || trades.aggressor_bought.len() != n
                    {
                        return Err(PyValueError::new_err(
                            "the trade arrays must have the same length",
                        ));
                    }
                    Some(trades)
                }
                _ => return Err(PyValueError::new_err(
                    "give all of trade_times_ns, trade_prices, trade_sizes, trade_is_buy, or none",
                )),
            };
        let (mut times_copy, mut is_bid_copy, mut sizes_copy, mut ends_copy) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let times = super::slice_of(&times_ns, &mut times_copy);
        let is_bid = super::slice_of(&is_bid, &mut is_bid_copy);
        let sizes = super::slice_of(&sizes, &mut sizes_copy);
        let ends = message_ends
            .as_ref()
            .map(|ends| super::slice_of(ends, &mut ends_copy));
        let mut own_tape = TradeTape::new(65_536);
        let mut tape = tape;
        let tape_ref: &mut TradeTape = match tape.as_mut() {
            Some(tape) => &mut tape.tape,
            None => &mut own_tape,
        };
        let engine = &mut self.engine;
        let book = &mut book.book;
        let mut out = Vec::new();
        let rows = py.detach(|| {
            batch::run_features(
                book, tape_ref, engine, times, is_bid, prices, sizes, ends, trades, &mut out,
            )
        })?;
        let names = batch::feature_column_names(&engine.config().depths);
        debug_assert!(out.iter().all(|column| column.len() == rows));
        columns(py, &names, out, times, ends)
    }

    fn __repr__(&self) -> String {
        let config = self.engine.config();
        format!(
            "FeatureEngine(depths={:?}, tick_window={}, ofi_levels={}, dead_band={}, ready={})",
            config.depths,
            config.tick_window,
            config.ofi_levels,
            config.dead_band,
            if self.engine.features().ready {
                "True"
            } else {
                "False"
            }
        )
    }
}

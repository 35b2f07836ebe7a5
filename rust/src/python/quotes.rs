//! `QuoteGenerator` and its `Quotes` result for Python.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::account::PyAccount;
use super::book::{grid_of, PyOrderBook};
use super::error::InvalidParameterError;
use super::features::PyFeatures;
use crate::quotes::{
    Anchor, AvellanedaStoikovParams, GlftParams, InstrumentRules, LadderParams, Quote,
    QuoteGenerator, QuoteInputs, QuoteLadder, QuoteModel,
};

/// A quote ladder: ``bids`` (highest first) and ``asks`` (lowest first) as ``(price, size)``
/// tuples, the model's ``reservation_price`` (its centre) and innermost ``half_spread``.
#[pyclass(name = "Quotes", module = "marketmaker._core", frozen)]
#[derive(Clone)]
pub struct PyQuotes {
    pub(crate) ladder: QuoteLadder,
}

fn levels<'py>(py: Python<'py>, quotes: &[Quote]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, quotes.iter().map(|quote| (quote.price, quote.size)))
}

#[pymethods]
impl PyQuotes {
    /// Bids from the highest price down, as ``(price, size)``.
    #[getter]
    fn bids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        levels(py, &self.ladder.bids)
    }

    /// Asks from the lowest price up, as ``(price, size)``.
    #[getter]
    fn asks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        levels(py, &self.ladder.asks)
    }

    /// The model's centre: the reservation price for Avellaneda–Stoikov and GLFT, the skewed
    /// anchor for the ladder.
    #[getter]
    fn reservation_price(&self) -> f64 {
        self.ladder.reservation_price
    }

    /// The innermost half-spread the model asked for, before rounding.
    #[getter]
    fn half_spread(&self) -> f64 {
        self.ladder.half_spread
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.ladder == other.ladder
    }

    fn __repr__(&self) -> String {
        let show = |quotes: &[Quote]| {
            quotes
                .iter()
                .map(|q| format!("({}, {})", q.price, q.size))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "Quotes(bids=[{}], asks=[{}])",
            show(&self.ladder.bids),
            show(&self.ladder.asks)
        )
    }
}

fn param<T: for<'a, 'py> FromPyObject<'a, 'py>>(
    params: Option<&Bound<'_, PyDict>>,
    name: &str,
    default: T,
    used: &mut Vec<String>,
) -> PyResult<T> {
    used.push(name.to_owned());
    match params.map(|p| p.get_item(name)).transpose()?.flatten() {
        Some(value) => value.extract::<T>().map_err(|_| {
            InvalidParameterError::new_err(format!("{name}: {value} has the wrong type"))
        }),
        None => Ok(default),
    }
}

#[allow(clippy::too_many_lines)] // one table of parameters per model
fn model_from(
    name: &str,
    params: Option<&Bound<'_, PyDict>>,
    current: Option<&QuoteModel>,
) -> PyResult<QuoteModel> {
    let mut used = Vec::new();
    let model = match name {
        "ladder" => {
            let d = match current {
                Some(QuoteModel::Ladder(p)) => *p,
                _ => LadderParams::default(),
            };
            let anchor: String = param(
                params,
                "anchor",
                if d.anchor == Anchor::Mid {
                    "mid".to_owned()
                } else {
                    "microprice".to_owned()
                },
                &mut used,
            )?;
            let anchor = match anchor.as_str() {
                "mid" => Anchor::Mid,
                "microprice" => Anchor::Microprice,
                other => {
                    return Err(InvalidParameterError::new_err(format!(
                        "anchor {other:?} is not 'mid' or 'microprice'"
                    )))
                }
            };
            QuoteModel::Ladder(LadderParams {
                bps: param(params, "bps", d.bps, &mut used)?,
                vol_widening: param(params, "vol_widening", d.vol_widening, &mut used)?,
                anchor,
                orders_per_side: param(params, "orders_per_side", d.orders_per_side, &mut used)?,
                final_order_distance: param(
                    params,
                    "final_order_distance",
                    d.final_order_distance,
                    &mut used,
                )?,
                leverage: param(params, "leverage", d.leverage, &mut used)?,
                size_fraction: param(params, "size_fraction", d.size_fraction, &mut used)?,
                inventory_adjustment: param(
                    params,
                    "inventory_adjustment",
                    d.inventory_adjustment,
                    &mut used,
                )?,
                inventory_limit: param(params, "inventory_limit", d.inventory_limit, &mut used)?,
                skew_shift: param(params, "skew_shift", d.skew_shift, &mut used)?,
            })
        }
        "avellaneda_stoikov" => {
            let d = match current {
                Some(QuoteModel::AvellanedaStoikov(p)) => *p,
                _ => AvellanedaStoikovParams {
                    gamma: 0.1,
                    kappa: 1.5,
                    horizon: 1.0,
                    rolling: true,
                    order_size: 1.0,
                    orders_per_side: 1,
                    level_spacing_bps: 1.0,
                    max_inventory: 10.0,
                },
            };
            QuoteModel::AvellanedaStoikov(AvellanedaStoikovParams {
                gamma: param(params, "gamma", d.gamma, &mut used)?,
                kappa: param(params, "kappa", d.kappa, &mut used)?,
                horizon: param(params, "horizon", d.horizon, &mut used)?,
                rolling: param(params, "rolling", d.rolling, &mut used)?,
                order_size: param(params, "order_size", d.order_size, &mut used)?,
                orders_per_side: param(params, "orders_per_side", d.orders_per_side, &mut used)?,
                level_spacing_bps: param(
                    params,
                    "level_spacing_bps",
                    d.level_spacing_bps,
                    &mut used,
                )?,
                max_inventory: param(params, "max_inventory", d.max_inventory, &mut used)?,
            })
        }
        "glft" => {
            let d = match current {
                Some(QuoteModel::Glft(p)) => *p,
                _ => GlftParams {
                    gamma: 0.1,
                    kappa: 1.5,
                    arrival_rate: 140.0,
                    order_size: 1.0,
                    orders_per_side: 1,
                    level_spacing_bps: 1.0,
                    max_inventory: 10.0,
                },
            };
            QuoteModel::Glft(GlftParams {
                gamma: param(params, "gamma", d.gamma, &mut used)?,
                kappa: param(params, "kappa", d.kappa, &mut used)?,
                arrival_rate: param(params, "arrival_rate", d.arrival_rate, &mut used)?,
                order_size: param(params, "order_size", d.order_size, &mut used)?,
                orders_per_side: param(params, "orders_per_side", d.orders_per_side, &mut used)?,
                level_spacing_bps: param(
                    params,
                    "level_spacing_bps",
                    d.level_spacing_bps,
                    &mut used,
                )?,
                max_inventory: param(params, "max_inventory", d.max_inventory, &mut used)?,
            })
        }
        other => {
            return Err(InvalidParameterError::new_err(format!(
                "model {other:?} is not one of 'ladder', 'avellaneda_stoikov', 'glft'"
            )))
        }
    };
    if let Some(params) = params {
        for key in params.keys() {
            let key: String = key.extract()?;
            if !used.contains(&key) {
                return Err(InvalidParameterError::new_err(format!(
                    "{key:?} is not a parameter of the {name} model (it takes: {})",
                    used.join(", ")
                )));
            }
        }
    }
    model.validate()?;
    Ok(model)
}

fn model_name(model: &QuoteModel) -> &'static str {
    match model {
        QuoteModel::Ladder(_) => "ladder",
        QuoteModel::AvellanedaStoikov(_) => "avellaneda_stoikov",
        QuoteModel::Glft(_) => "glft",
    }
}

/// The quote generator of one symbol: the bid and ask ladder by one of three models, fitted to
/// the instrument's tick and lot grids, minimum size and notional, kept post-only safe and
/// inside an optional price band. Formulas: ``docs/quoting.md``.
///
/// Parameters
/// ----------
/// model : {"ladder", "avellaneda_stoikov", "glft"}
/// tick_size, lot_size : float | str
///     The instrument's price and size grids.
/// min_size, min_notional : float
///     Smaller orders are dropped.
/// price_band : float
///     Quotes further than this fraction from ``reference_price`` are dropped (0: off).
/// **params
///     The model's parameters — ladder: ``bps``, ``vol_widening``, ``anchor`` ("mid" or
///     "microprice"), ``orders_per_side``, ``final_order_distance``, ``leverage``,
///     ``size_fraction``, ``inventory_adjustment``, ``inventory_limit``, ``skew_shift``;
///     avellaneda_stoikov: ``gamma``, ``kappa``, ``horizon``, ``rolling``, ``order_size``,
///     ``orders_per_side``, ``level_spacing_bps``, ``max_inventory``; glft: ``gamma``,
///     ``kappa``, ``arrival_rate``, ``order_size``, ``orders_per_side``, ``level_spacing_bps``,
///     ``max_inventory``.
///
/// Examples
/// --------
/// >>> from marketmaker import QuoteGenerator
/// >>> ladder = QuoteGenerator("ladder", tick_size=0.1, lot_size=0.001, bps=10, orders_per_side=3,
/// ...                         final_order_distance=4, leverage=2, size_fraction=0.5)
/// >>> quotes = ladder.quote(1000.0, balance=10_000)
/// >>> quotes.bids
/// ((999.0, 3.333), (998.0, 3.333), (996.0, 3.333))
/// >>> as_model = QuoteGenerator("avellaneda_stoikov", tick_size=0.01, lot_size=1, gamma=0.1,
/// ...                           kappa=1.5, horizon=1.0, rolling=False)
/// >>> q = as_model.quote(100.0, inventory=2, volatility=2.0, time_left=0.5)
/// >>> round(q.reservation_price, 6)
/// 99.6
#[pyclass(name = "QuoteGenerator", module = "marketmaker._core")]
pub struct PyQuoteGenerator {
    pub(crate) generator: QuoteGenerator,
}

#[pymethods]
impl PyQuoteGenerator {
    #[new]
    #[pyo3(signature = (model = "ladder", *, tick_size, lot_size, min_size = 0.0, min_notional = 0.0, price_band = 0.0, **params))]
    fn new(
        model: &str,
        tick_size: &Bound<'_, PyAny>,
        lot_size: &Bound<'_, PyAny>,
        min_size: f64,
        min_notional: f64,
        price_band: f64,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let rules = InstrumentRules::new(
            grid_of(tick_size)?,
            grid_of(lot_size).map_err(|_| {
                InvalidParameterError::new_err("lot_size must be a positive decimal")
            })?,
            min_size,
            min_notional,
        )?;
        Ok(Self {
            generator: QuoteGenerator::new(model_from(model, params, None)?, rules, price_band)?,
        })
    }

    /// The model's name.
    #[getter]
    fn model(&self) -> &'static str {
        model_name(self.generator.model())
    }

    /// The model's parameters.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        match self.generator.model() {
            QuoteModel::Ladder(p) => {
                dict.set_item("bps", p.bps)?;
                dict.set_item("vol_widening", p.vol_widening)?;
                dict.set_item(
                    "anchor",
                    if p.anchor == Anchor::Mid {
                        "mid"
                    } else {
                        "microprice"
                    },
                )?;
                dict.set_item("orders_per_side", p.orders_per_side)?;
                dict.set_item("final_order_distance", p.final_order_distance)?;
                dict.set_item("leverage", p.leverage)?;
                dict.set_item("size_fraction", p.size_fraction)?;
                dict.set_item("inventory_adjustment", p.inventory_adjustment)?;
                dict.set_item("inventory_limit", p.inventory_limit)?;
                dict.set_item("skew_shift", p.skew_shift)?;
            }
            QuoteModel::AvellanedaStoikov(p) => {
                dict.set_item("gamma", p.gamma)?;
                dict.set_item("kappa", p.kappa)?;
                dict.set_item("horizon", p.horizon)?;
                dict.set_item("rolling", p.rolling)?;
                dict.set_item("order_size", p.order_size)?;
                dict.set_item("orders_per_side", p.orders_per_side)?;
                dict.set_item("level_spacing_bps", p.level_spacing_bps)?;
                dict.set_item("max_inventory", p.max_inventory)?;
            }
            QuoteModel::Glft(p) => {
                dict.set_item("gamma", p.gamma)?;
                dict.set_item("kappa", p.kappa)?;
                dict.set_item("arrival_rate", p.arrival_rate)?;
                dict.set_item("order_size", p.order_size)?;
                dict.set_item("orders_per_side", p.orders_per_side)?;
                dict.set_item("level_spacing_bps", p.level_spacing_bps)?;
                dict.set_item("max_inventory", p.max_inventory)?;
            }
        }
        Ok(dict)
    }

    /// Changes some of the model's parameters (a hot reload), or switches model with
    /// ``model=``. Nothing changes if any value is invalid.
    #[pyo3(signature = (model = None, **params))]
    fn set_params(
        &mut self,
        model: Option<&str>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let name = model.unwrap_or(model_name(self.generator.model()));
        let current = self.generator.model();
        let next = model_from(name, params, Some(current))?;
        Ok(self.generator.set_model(next)?)
    }

    /// The ladder for explicit market inputs.
    ///
    /// ``mid`` defaults to the middle of ``best_bid``/``best_ask``; ``microprice`` to the mid.
    /// ``volatility`` is per √second of log price for the ladder (as :class:`FeatureEngine`
    /// reports it) and in price units per √(time unit) for Avellaneda–Stoikov and GLFT.
    #[pyo3(signature = (mid = None, *, best_bid = None, best_ask = None, microprice = None, inventory = 0.0, volatility = 0.0, skew = 0.0, balance = 0.0, time_left = 0.0, reference_price = None))]
    #[allow(clippy::too_many_arguments)]
    fn quote(
        &self,
        mid: Option<f64>,
        best_bid: Option<f64>,
        best_ask: Option<f64>,
        microprice: Option<f64>,
        inventory: f64,
        volatility: f64,
        skew: f64,
        balance: f64,
        time_left: f64,
        reference_price: Option<f64>,
    ) -> PyResult<PyQuotes> {
        let mid = match (mid, best_bid, best_ask) {
            (Some(mid), _, _) => mid,
            (None, Some(bid), Some(ask)) => (bid + ask) / 2.0,
            _ => {
                return Err(PyValueError::new_err(
                    "give mid, or both best_bid and best_ask",
                ))
            }
        };
        let inputs = QuoteInputs {
            best_bid: best_bid.unwrap_or(0.0),
            best_ask: best_ask.unwrap_or(0.0),
            mid,
            microprice: microprice.unwrap_or(mid),
            inventory,
            volatility,
            skew,
            balance,
            time_left,
            reference_price: reference_price.unwrap_or(0.0),
        };
        Ok(PyQuotes {
            ladder: self.generator.quote(&inputs)?,
        })
    }

    /// The ladder from a symbol's live state: best bid/ask, mid and microprice from ``book``;
    /// volatility and skew from ``features`` (a :class:`Features` or a :class:`FeatureEngine`);
    /// inventory and balance from ``account``.
    #[pyo3(signature = (book, features = None, account = None, *, time_left = 0.0, reference_price = None))]
    fn quote_from(
        &self,
        book: PyRef<'_, PyOrderBook>,
        features: Option<&Bound<'_, PyAny>>,
        account: Option<PyRef<'_, PyAccount>>,
        time_left: f64,
        reference_price: Option<f64>,
    ) -> PyResult<PyQuotes> {
        let book = &book.book;
        let (Some(best_bid), Some(best_ask), Some(mid)) =
            (book.best_bid_price(), book.best_ask_price(), book.mid())
        else {
            return Err(PyValueError::new_err(format!(
                "{}: the book has an empty side; nothing to quote against",
                book.symbol()
            )));
        };
        let (volatility, skew) = match features {
            None => (0.0, 0.0),
            Some(value) => {
                if let Ok(snapshot) = value.cast::<PyFeatures>() {
                    let f = snapshot.get().features;
                    (f.volatility, f.skew)
                } else if let Ok(engine) = value.cast::<super::features::PyFeatureEngine>() {
                    let f = *engine.borrow().engine.features();
                    (f.volatility, f.skew)
                } else {
                    return Err(PyTypeError::new_err(
                        "features must be a Features or a FeatureEngine",
                    ));
                }
            }
        };
        let (inventory, balance) =
            account.map_or((0.0, 0.0), |a| (a.account.position(), a.account.balance()));
        let inputs = QuoteInputs {
            best_bid,
            best_ask,
            mid,
            microprice: book.microprice().unwrap_or(mid),
            inventory,
            volatility,
            skew,
            balance,
            time_left,
            reference_price: reference_price.unwrap_or(0.0),
        };
        Ok(PyQuotes {
            ladder: self.generator.quote(&inputs)?,
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let params = self.params(py)?;
        let mut parts = Vec::new();
        for (key, value) in params.iter() {
            let value = if let Ok(text) = value.cast::<PyString>() {
                format!("'{}'", text.to_str()?)
            } else {
                value.repr()?.to_string()
            };
            parts.push(format!("{key}={value}"));
        }
        Ok(format!(
            "QuoteGenerator('{}', tick_size={}, lot_size={}, {})",
            model_name(self.generator.model()),
            self.generator.rules().price_grid.tick_size_text(),
            self.generator.rules().lot_grid.tick_size_text(),
            parts.join(", ")
        ))
    }
}

//! `Side` for Python, and reading a side from the spellings Python callers use.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::side::Side;

/// Buy or sell. Bids are the buy side of the book, asks the sell side.
///
/// Anywhere a side is taken, ``Side.BUY``/``Side.SELL``, the strings ``"buy"``, ``"bid"``,
/// ``"sell"``, ``"ask"`` (any case), or a bool (``True`` for the bid/buy side) are accepted.
#[pyclass(
    name = "Side",
    module = "marketmaker._core",
    eq,
    eq_int,
    frozen,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PySide {
    BUY,
    SELL,
}

impl From<PySide> for Side {
    fn from(side: PySide) -> Self {
        match side {
            PySide::BUY => Side::Buy,
            PySide::SELL => Side::Sell,
        }
    }
}

impl From<Side> for PySide {
    fn from(side: Side) -> Self {
        match side {
            Side::Buy => PySide::BUY,
            Side::Sell => PySide::SELL,
        }
    }
}

#[pymethods]
impl PySide {
    /// The other side.
    fn opposite(&self) -> Self {
        Side::from(*self).opposite().into()
    }

    /// +1 for BUY, -1 for SELL.
    #[getter]
    fn sign(&self) -> i32 {
        match self {
            PySide::BUY => 1,
            PySide::SELL => -1,
        }
    }
}

/// Reads a side argument.
#[inline]
pub fn side_of(value: &Bound<'_, PyAny>) -> PyResult<Side> {
    // Bools first: the check is a pointer comparison, and the per-update fast paths use them.
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(if flag.is_true() {
            Side::Buy
        } else {
            Side::Sell
        });
    }
    if let Ok(side) = value.cast::<PySide>() {
        return Ok((*side.get()).into());
    }
    if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_str()?;
        if let Some(side) = Side::parse(text) {
            return Ok(side);
        }
        return Err(PyTypeError::new_err(format!(
            "unknown side {text:?}: expected buy/bid or sell/ask"
        )));
    }
    Err(PyTypeError::new_err(format!(
        "side must be Side.BUY/Side.SELL, 'buy'/'sell', 'bid'/'ask' or a bool, not {}",
        value.get_type().name()?
    )))
}

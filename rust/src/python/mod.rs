//! The thin PyO3 layer: one file per core file, and one module `marketmaker._core` with a
//! single export list. No market logic lives here.

// Python naming of enum members (Side.BUY); docstrings here are numpy-style Python docs, not
// rustdoc; PyO3 methods take &self even on small frozen values.
#![allow(
    missing_docs,
    non_camel_case_types,
    clippy::upper_case_acronyms,
    clippy::doc_markdown,
    clippy::doc_link_with_quotes,
    clippy::trivially_copy_pass_by_ref
)]

mod account;
mod book;
mod error;
mod features;
mod maker;
mod orders;
mod quotes;
mod side;
mod state;
mod trades;

use pyo3::prelude::*;

/// A string as Python's `repr` writes it (single quotes), for `__repr__`s that read like the
/// constructor call.
pub(crate) fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A numpy array's values as a slice: borrowed when the array is contiguous, else copied into
/// `copy` (strided views are accepted, not rejected).
pub(crate) fn slice_of<'a, T: numpy::Element + Copy>(
    array: &'a numpy::PyReadonlyArray1<'_, T>,
    copy: &'a mut Vec<T>,
) -> &'a [T] {
    if let Ok(slice) = array.as_slice() {
        return slice;
    }
    *copy = array.as_array().iter().copied().collect();
    copy
}

/// An optional string as Python's `repr` writes it.
pub(crate) fn quoted_or_none(text: Option<&str>) -> String {
    text.map_or_else(|| "None".to_owned(), quoted)
}

#[pymodule]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::account::{PyAccount, PyFill, PyFillOutcome, PyOrder, PyOrderStatus};
    #[pymodule_export]
    use super::book::{PyBookStatus, PyOrderBook, PySnapshotApplied, PyUpdateOutcome};
    #[pymodule_export]
    use super::features::{PyFeatureEngine, PyFeatures};
    #[pymodule_export]
    use super::maker::PyMarketMaker;
    #[pymodule_export]
    use super::orders::{PyOrderAction, PyOrderPlanner, PyRateLimiter, PyRiskGate};
    #[pymodule_export]
    use super::quotes::{PyQuoteGenerator, PyQuotes};
    #[pymodule_export]
    use super::side::PySide;
    #[pymodule_export]
    use super::state::PySharedState;
    #[pymodule_export]
    use super::trades::{PyTrade, PyTradeTape, PyTradeWindow};

    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = module.py();
        module.add("__version__", env!("CARGO_PKG_VERSION"))?;
        for (name, class) in super::exceptions(py) {
            module.add(name, class)?;
        }
        Ok(())
    }
}

fn exceptions(py: Python<'_>) -> Vec<(&'static str, Bound<'_, pyo3::types::PyType>)> {
    use error::{
        ConfigError, DuplicateSymbolError, InvalidInputError, InvalidOrderError,
        InvalidParameterError, InvalidPriceError, InvalidSizeError, InvalidTickSizeError,
        MalformedMessageError, MarketMakerError, OffTickError, SequenceGapError,
        UnknownSymbolError,
    };
    vec![
        ("MarketMakerError", py.get_type::<MarketMakerError>()),
        ("InvalidInputError", py.get_type::<InvalidInputError>()),
        ("InvalidPriceError", py.get_type::<InvalidPriceError>()),
        ("OffTickError", py.get_type::<OffTickError>()),
        ("InvalidSizeError", py.get_type::<InvalidSizeError>()),
        (
            "InvalidTickSizeError",
            py.get_type::<InvalidTickSizeError>(),
        ),
        (
            "MalformedMessageError",
            py.get_type::<MalformedMessageError>(),
        ),
        (
            "InvalidParameterError",
            py.get_type::<InvalidParameterError>(),
        ),
        ("SequenceGapError", py.get_type::<SequenceGapError>()),
        ("UnknownSymbolError", py.get_type::<UnknownSymbolError>()),
        (
            "DuplicateSymbolError",
            py.get_type::<DuplicateSymbolError>(),
        ),
        ("InvalidOrderError", py.get_type::<InvalidOrderError>()),
        ("ConfigError", py.get_type::<ConfigError>()),
    ]
}

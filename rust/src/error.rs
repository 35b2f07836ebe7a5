//! The core's one error type. Every fallible core function returns [`CoreError`]; the Python
//! bindings map each variant to an exception class under `marketmaker.errors`.

use thiserror::Error;

/// Everything that can go wrong inside the core.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// A tick size that is not a positive, finite decimal.
    #[error("invalid tick size {value}: expected a positive decimal such as 0.1 or \"0.01\"")]
    InvalidTickSize {
        /// What was given, as text.
        value: String,
    },
    /// A price that is NaN, infinite, zero, negative or unparsable.
    #[error("invalid price {value:?} in {field}: expected a positive finite decimal")]
    InvalidPrice {
        /// What was given, as text.
        value: String,
        /// Where it came from, e.g. `bids[3]`.
        field: String,
    },
    /// A price that is not a whole number of ticks.
    #[error("price {value} in {field} is off the tick grid (tick size {tick_size})")]
    OffTick {
        /// The price, as text.
        value: String,
        /// The book's tick size, as text.
        tick_size: String,
        /// Where it came from, e.g. `asks[0]`.
        field: String,
    },
    /// A size that is NaN, infinite, negative or unparsable.
    #[error("invalid size {value:?} in {field}: expected a finite decimal >= 0")]
    InvalidSize {
        /// What was given, as text.
        value: String,
        /// Where it came from, e.g. `bids[3]`.
        field: String,
    },
    /// A depth update that does not follow its predecessor. It was not applied and the book
    /// needs a new snapshot.
    #[error("{symbol}: sequence gap: {detail}; the update was not applied and the book needs a new snapshot")]
    SequenceGap {
        /// The book's symbol.
        symbol: String,
        /// What was expected and what came.
        detail: String,
    },
    /// A message whose shape is wrong (a level that is not a pair, a missing id, ...).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A symbol that the shared state does not know.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// A symbol added twice.
    #[error("symbol {0:?} was already added")]
    DuplicateSymbol(String),
    /// A parameter outside its allowed range (feature engine, quoting model, ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// An order that is not valid (non-positive size, duplicate client order id, ...).
    #[error("invalid order: {0}")]
    InvalidOrder(String),
}

/// The core's result type.
pub type CoreResult<T> = Result<T, CoreError>;

//! Python exception classes under `marketmaker.errors`, mapped from [`CoreError`] variant by
//! variant.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

use crate::error::CoreError;

create_exception!(
    marketmaker.errors,
    InvalidParameterError,
    InvalidInputError,
    "A parameter outside its allowed range; the message names it and the range."
);

create_exception!(
    marketmaker.errors,
    MarketMakerError,
    PyException,
    "Base class of every marketmaker error."
);
create_exception!(
    marketmaker.errors,
    InvalidInputError,
    MarketMakerError,
    "Input that the core cannot accept; the message names the field."
);
create_exception!(
    marketmaker.errors,
    InvalidPriceError,
    InvalidInputError,
    "A price that is NaN, infinite, not positive or not a number."
);
create_exception!(
    marketmaker.errors,
    OffTickError,
    InvalidPriceError,
    "A price that is not a whole number of ticks."
);
create_exception!(
    marketmaker.errors,
    InvalidSizeError,
    InvalidInputError,
    "A size that is NaN, infinite or negative."
);
create_exception!(
    marketmaker.errors,
    InvalidTickSizeError,
    InvalidInputError,
    "A tick size that is not a positive decimal."
);
create_exception!(
    marketmaker.errors,
    MalformedMessageError,
    InvalidInputError,
    "A message whose shape is wrong."
);
create_exception!(
    marketmaker.errors,
    SequenceGapError,
    MarketMakerError,
    "A depth update that does not follow its predecessor; the book needs a new snapshot."
);
create_exception!(
    marketmaker.errors,
    UnknownSymbolError,
    MarketMakerError,
    "A symbol the shared state does not know."
);
create_exception!(
    marketmaker.errors,
    DuplicateSymbolError,
    MarketMakerError,
    "A symbol added twice."
);
create_exception!(
    marketmaker.errors,
    InvalidOrderError,
    MarketMakerError,
    "An order or fill that cannot be recorded."
);
create_exception!(
    marketmaker.errors,
    ConfigError,
    MarketMakerError,
    "A configuration that cannot be used; the message names the file, key and line."
);

impl From<CoreError> for PyErr {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::InvalidTickSize { .. } => InvalidTickSizeError::new_err(message),
            CoreError::InvalidPrice { .. } => InvalidPriceError::new_err(message),
            CoreError::OffTick { .. } => OffTickError::new_err(message),
            CoreError::InvalidSize { .. } => InvalidSizeError::new_err(message),
            CoreError::SequenceGap { .. } => SequenceGapError::new_err(message),
            CoreError::Malformed(_) => MalformedMessageError::new_err(message),
            CoreError::InvalidParameter(_) => InvalidParameterError::new_err(message),
            CoreError::UnknownSymbol(_) => UnknownSymbolError::new_err(message),
            CoreError::DuplicateSymbol(_) => DuplicateSymbolError::new_err(message),
            CoreError::InvalidOrder(_) => InvalidOrderError::new_err(message),
        }
    }
}

//! The compiled core of `marketmaker`: the shared market state (order books with venue
//! sequencing, trade tapes, account state) as plain Rust that `cargo test` checks without
//! Python. The PyO3 bindings live in `python/` behind the `python` feature.

pub mod account;
pub mod batch;
pub mod book;
pub mod error;
pub mod features;
pub mod maker;
pub mod orders;
pub mod price;
pub mod quotes;
pub mod risk;
pub mod side;
pub mod state;
pub mod trades;
pub mod venues;

#[cfg(feature = "python")]
mod python;

pub use account::{Account, Fill, FillOutcome, Order, OrderStatus};
pub use book::{ApplyOutcome, BinanceDiff, BookStatus, OrderBook, Sequencing};
pub use error::{CoreError, CoreResult};
pub use price::PriceGrid;
pub use side::Side;
pub use state::{SharedState, SymbolState};
pub use trades::{Trade, TradeTape, TradeWindow};

//! The shared state of one exchange connection: its symbols, each with its market and account
//! state, and which API key (by id, never the secret) serves each symbol. Mirrors the original
//! bot's `SharedState::new(exchange)`, `add_symbols` and `add_clients`.
//!
//! The per-symbol part is generic so that the Python bindings can hold the same parts as
//! Python-visible objects while the registry rules live here once.

use std::collections::HashMap;

use crate::account::Account;
use crate::book::{OrderBook, Sequencing};
use crate::error::{CoreError, CoreResult};
use crate::price::PriceGrid;
use crate::trades::TradeTape;

/// The market and account state of one symbol, for Rust callers (replay, backtests).
#[derive(Debug, Clone)]
pub struct SymbolState {
    /// Its order book.
    pub book: OrderBook,
    /// Its recent public trades.
    pub tape: TradeTape,
    /// Our position, orders and PnL on it.
    pub account: Account,
}

impl SymbolState {
    /// Fresh state for `symbol` on `grid`.
    #[must_use]
    pub fn new(
        symbol: &str,
        grid: PriceGrid,
        sequencing: Sequencing,
        tape_capacity: usize,
    ) -> Self {
        Self {
            book: OrderBook::new(symbol, grid, sequencing),
            tape: TradeTape::new(tape_capacity),
            account: Account::default(),
        }
    }
}

/// The venues whose sequencing rules a book follows, by exchange name.
#[must_use]
pub fn sequencing_of(exchange: &str) -> Sequencing {
    let exchange = exchange.to_ascii_lowercase();
    if exchange.starts_with("binance") || exchange == "sim" {
        Sequencing::Binance
    } else if exchange.starts_with("bybit") {
        Sequencing::Bybit
    } else {
        Sequencing::Unsequenced
    }
}

/// Checks a symbol name: non-empty, letters, digits, `-`, `_`, `/` or `.`.
pub fn check_symbol(symbol: &str) -> CoreResult<()> {
    let valid = !symbol.is_empty()
        && symbol.len() <= 64
        && symbol
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'/' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(CoreError::Malformed(format!(
            "symbol {symbol:?} must be 1-64 letters, digits, '-', '_', '/' or '.'"
        )))
    }
}

/// Symbols of one exchange, in the order they were added.
#[derive(Debug, Clone)]
pub struct SharedState<S = SymbolState> {
    exchange: String,
    symbols: Vec<(String, S)>,
    index: HashMap<String, usize>,
    key_ids: HashMap<String, String>,
}

impl<S> SharedState<S> {
    /// An empty state for `exchange` (e.g. `"binance"`, `"bybit"`, `"sim"`).
    pub fn new(exchange: &str) -> CoreResult<Self> {
        let exchange = exchange.trim();
        if exchange.is_empty() {
            return Err(CoreError::Malformed(
                "the exchange name is empty".to_owned(),
            ));
        }
        Ok(Self {
            exchange: exchange.to_owned(),
            symbols: Vec::new(),
            index: HashMap::new(),
            key_ids: HashMap::new(),
        })
    }

    /// The exchange name.
    #[must_use]
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The sequencing rules of this exchange's books.
    #[must_use]
    pub fn sequencing(&self) -> Sequencing {
        sequencing_of(&self.exchange)
    }

    /// Adds one symbol, its state made by `make`. Errors if the name is invalid or already added.
    pub fn add_symbol(
        &mut self,
        symbol: &str,
        make: impl FnOnce(&str) -> CoreResult<S>,
    ) -> CoreResult<&mut S> {
        check_symbol(symbol)?;
        if self.index.contains_key(symbol) {
            return Err(CoreError::DuplicateSymbol(symbol.to_owned()));
        }
        let state = make(symbol)?;
        let index = self.symbols.len();
        self.index.insert(symbol.to_owned(), index);
        self.symbols.push((symbol.to_owned(), state));
        Ok(&mut self.symbols[index].1)
    }

    /// Symbols in the order they were added.
    #[must_use]
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = &str> {
        self.symbols.iter().map(|(name, _)| name.as_str())
    }

    /// Whether `symbol` was added.
    #[must_use]
    pub fn contains(&self, symbol: &str) -> bool {
        self.index.contains_key(symbol)
    }

    /// The state of `symbol`.
    pub fn get(&self, symbol: &str) -> CoreResult<&S> {
        let index = *self
            .index
            .get(symbol)
            .ok_or_else(|| CoreError::UnknownSymbol(symbol.to_owned()))?;
        Ok(&self.symbols[index].1)
    }

    /// The state of `symbol`, to change it.
    pub fn get_mut(&mut self, symbol: &str) -> CoreResult<&mut S> {
        let index = *self
            .index
            .get(symbol)
            .ok_or_else(|| CoreError::UnknownSymbol(symbol.to_owned()))?;
        Ok(&mut self.symbols[index].1)
    }

    /// Every symbol's state, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &S)> {
        self.symbols
            .iter()
            .map(|(name, state)| (name.as_str(), state))
    }

    /// Says which API key (by its id, never its secret) serves `symbol`.
    pub fn assign_key(&mut self, symbol: &str, key_id: &str) -> CoreResult<()> {
        if !self.contains(symbol) {
            return Err(CoreError::UnknownSymbol(symbol.to_owned()));
        }
        if key_id.is_empty() {
            return Err(CoreError::Malformed(format!(
                "{symbol}: the key id is empty"
            )));
        }
        self.key_ids.insert(symbol.to_owned(), key_id.to_owned());
        Ok(())
    }

    /// The id of the API key that serves `symbol`, if one was assigned.
    #[must_use]
    pub fn key_id(&self, symbol: &str) -> Option<&str> {
        self.key_ids.get(symbol).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rules() {
        let grid = PriceGrid::from_text("0.1").unwrap();
        let mut state: SharedState = SharedState::new("binance").unwrap();
        assert_eq!(state.sequencing(), Sequencing::Binance);
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            state
                .add_symbol(symbol, |name| {
                    Ok(SymbolState::new(name, grid, Sequencing::Binance, 100))
                })
                .unwrap();
        }
        assert!(matches!(
            state.add_symbol("BTCUSDT", |name| Ok(SymbolState::new(
                name,
                grid,
                Sequencing::Binance,
                100
            ))),
            Err(CoreError::DuplicateSymbol(_))
        ));
        assert!(state
            .add_symbol("bad symbol", |name| Ok(SymbolState::new(
                name,
                grid,
                Sequencing::Binance,
                1
            )))
            .is_err());
        assert_eq!(state.symbols().collect::<Vec<_>>(), ["BTCUSDT", "ETHUSDT"]);
        assert_eq!(state.get("ETHUSDT").unwrap().book.symbol(), "ETHUSDT");
        assert!(matches!(
            state.get("XRPUSDT"),
            Err(CoreError::UnknownSymbol(_))
        ));
        state.assign_key("BTCUSDT", "key-1").unwrap();
        assert_eq!(state.key_id("BTCUSDT"), Some("key-1"));
        assert!(state.assign_key("XRPUSDT", "key-1").is_err());
        assert!(SharedState::<SymbolState>::new(" ").is_err());
        assert_eq!(sequencing_of("bybit"), Sequencing::Bybit);
    }
}

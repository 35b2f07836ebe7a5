//! The side of a book level, an order or a trade's aggressor.

/// Buy or sell. Bids are the buy side of the book, asks the sell side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bids; a buy order; a trade whose aggressor bought.
    Buy,
    /// Asks; a sell order; a trade whose aggressor sold.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// +1 for buy, -1 for sell: the sign of the position change of a fill on this side.
    #[must_use]
    pub fn sign(self) -> f64 {
        match self {
            Self::Buy => 1.0,
            Self::Sell => -1.0,
        }
    }

    /// Reads the usual spellings: buy/bid/b and sell/ask/a/s, in any case.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "buy" | "bid" | "bids" | "b" => Some(Self::Buy),
            "sell" | "ask" | "asks" | "a" | "s" => Some(Self::Sell),
            _ => None,
        }
    }

    /// `"BUY"` or `"SELL"`, as the venues write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

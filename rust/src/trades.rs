//! The tape of recent public trades of one instrument: a fixed-capacity ring buffer with
//! aggregates over the last N trades or the last T milliseconds.

use std::collections::VecDeque;

use crate::side::Side;

/// One public trade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    /// Price.
    pub price: f64,
    /// Size (base quantity).
    pub size: f64,
    /// The aggressor's side: `Buy` when a buyer lifted the ask.
    pub aggressor: Side,
    /// Exchange trade time, nanoseconds.
    pub exchange_time_ns: i64,
    /// The venue's trade id, when known.
    pub trade_id: Option<u64>,
}

/// Aggregates over a window of trades.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TradeWindow {
    /// Trades in the window.
    pub count: usize,
    /// Volume whose aggressor bought.
    pub buy_volume: f64,
    /// Volume whose aggressor sold.
    pub sell_volume: f64,
    /// Σ price × size.
    pub notional: f64,
    /// Volume-weighted average price; `None` when the window holds no volume.
    pub vwap: Option<f64>,
    /// Exchange time of the oldest and newest trade in the window.
    pub first_time_ns: Option<i64>,
    /// Exchange time of the newest trade in the window.
    pub last_time_ns: Option<i64>,
}

impl TradeWindow {
    /// Buy minus sell volume over total volume, in [-1, 1]; 0 for an empty window.
    #[must_use]
    pub fn imbalance(&self) -> f64 {
        let total = self.buy_volume + self.sell_volume;
        if total > 0.0 {
            (self.buy_volume - self.sell_volume) / total
        } else {
            0.0
        }
    }
}

/// The recent trades of one instrument, newest last.
#[derive(Debug, Clone)]
pub struct TradeTape {
    trades: VecDeque<Trade>,
    capacity: usize,
    total_count: u64,
}

impl TradeTape {
    /// A tape that keeps the last `capacity` trades (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            trades: VecDeque::with_capacity(capacity),
            capacity,
            total_count: 0,
        }
    }

    /// How many trades it keeps.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Trades held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.trades.len()
    }

    /// Whether no trade is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.trades.is_empty()
    }

    /// Trades ever pushed.
    #[must_use]
    pub fn total_count(&self) -> u64 {
        self.total_count
    }

    /// Adds a trade (the oldest one falls off when full). Price and size are validated by the
    /// caller.
    pub fn push(&mut self, trade: Trade) {
        if self.trades.len() == self.capacity {
            self.trades.pop_front();
        }
        self.trades.push_back(trade);
        self.total_count += 1;
    }

    /// The newest trade.
    #[must_use]
    pub fn last(&self) -> Option<&Trade> {
        self.trades.back()
    }

    /// Trades from oldest to newest.
    #[must_use]
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Trade> + ExactSizeIterator {
        self.trades.iter()
    }

    fn aggregate<'a>(trades: impl Iterator<Item = &'a Trade>) -> TradeWindow {
        let mut window = TradeWindow::default();
        for trade in trades {
            window.count += 1;
            match trade.aggressor {
                Side::Buy => window.buy_volume += trade.size,
                Side::Sell => window.sell_volume += trade.size,
            }
            window.notional += trade.price * trade.size;
            if window.first_time_ns.is_none() {
                window.first_time_ns = Some(trade.exchange_time_ns);
            }
            window.last_time_ns = Some(trade.exchange_time_ns);
        }
        let volume = window.buy_volume + window.sell_volume;
        window.vwap = (volume > 0.0).then(|| window.notional / volume);
        window
    }

    /// Aggregates over the last `count` trades.
    #[must_use]
    pub fn last_trades(&self, count: usize) -> TradeWindow {
        let skip = self.trades.len().saturating_sub(count);
        Self::aggregate(self.trades.iter().skip(skip))
    }

    /// Aggregates over the trades with exchange time in `(now_ns - span_ns, now_ns]`, where
    /// `now_ns` defaults to the newest trade's time.
    #[must_use]
    pub fn last_span(&self, span_ns: i64, now_ns: Option<i64>) -> TradeWindow {
        let Some(newest) = self.trades.back() else {
            return TradeWindow::default();
        };
        let now = now_ns.unwrap_or(newest.exchange_time_ns);
        let start = now - span_ns;
        // Exchange times are not decreasing on a venue's tape, so the window is a suffix.
        let first = self
            .trades
            .partition_point(|trade| trade.exchange_time_ns <= start);
        Self::aggregate(
            self.trades
                .range(first..)
                .filter(|trade| trade.exchange_time_ns <= now),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(price: f64, size: f64, aggressor: Side, ms: i64) -> Trade {
        Trade {
            price,
            size,
            aggressor,
            exchange_time_ns: ms * 1_000_000,
            trade_id: None,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut tape = TradeTape::new(3);
        for i in 0..5 {
            tape.push(trade(100.0 + f64::from(i), 1.0, Side::Buy, i64::from(i)));
        }
        assert_eq!(tape.len(), 3);
        assert_eq!(tape.total_count(), 5);
        let prices: Vec<f64> = tape.iter().map(|t| t.price).collect();
        assert_eq!(prices, vec![102.0, 103.0, 104.0]);
    }

    #[test]
    fn windows_by_count_and_time() {
        let mut tape = TradeTape::new(100);
        tape.push(trade(100.0, 1.0, Side::Buy, 0));
        tape.push(trade(101.0, 3.0, Side::Sell, 500));
        tape.push(trade(102.0, 2.0, Side::Buy, 1000));
        let all = tape.last_trades(10);
        assert_eq!(all.count, 3);
        assert_eq!(all.buy_volume, 3.0);
        assert_eq!(all.sell_volume, 3.0);
        assert_eq!(all.vwap, Some((100.0 + 303.0 + 204.0) / 6.0));
        assert_eq!(all.imbalance(), 0.0);
        let last_two = tape.last_trades(2);
        assert_eq!(last_two.count, 2);
        assert_eq!(last_two.first_time_ns, Some(500_000_000));
        // (600, 1000] holds only the last trade; (0, 1000] excludes t=0.
        assert_eq!(tape.last_span(400_000_000, None).count, 1);
        assert_eq!(tape.last_span(600_000_000, None).count, 2);
        assert_eq!(tape.last_span(1_000_000_000, None).count, 2);
        assert_eq!(tape.last_span(1_000_000_000, Some(700_000_000)).count, 2);
        assert_eq!(TradeTape::new(5).last_span(1, None), TradeWindow::default());
        assert_eq!(TradeTape::new(5).last_trades(5).vwap, None);
    }
}

//! Private state of one instrument on one account: position, open orders, balance, realized
//! PnL and fees. Fills are applied idempotently by trade id; a fill for an order we do not know
//! still moves the position (the venue says it happened) and is kept for reconciliation.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::error::{CoreError, CoreResult};
use crate::orders::LiveOrder;
use crate::side::Side;

/// Positions smaller than this are flat (float residue of decimal sizes).
const FLAT: f64 = 1e-10;

/// How many closed orders are remembered so that a fill racing a cancel still finds its order.
const CLOSED_ORDERS_KEPT: usize = 4096;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Sent, not yet acknowledged.
    PendingNew,
    /// Resting on the book, nothing filled.
    New,
    /// Resting, partly filled.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled.
    Canceled,
    /// Rejected by the venue.
    Rejected,
    /// Expired (e.g. a post-only order that would have taken).
    Expired,
}

impl OrderStatus {
    /// Whether the order can still trade.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::PendingNew | Self::New | Self::PartiallyFilled)
    }
}

/// One of our orders.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Our id for it (Binance `newClientOrderId`, Bybit `orderLinkId`).
    pub client_order_id: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: f64,
    /// Original size.
    pub size: f64,
    /// Size filled so far.
    pub filled: f64,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// The venue's id once acknowledged.
    pub venue_order_id: Option<String>,
}

impl Order {
    /// A new order, pending acknowledgement.
    #[must_use]
    pub fn new(client_order_id: impl Into<String>, side: Side, price: f64, size: f64) -> Self {
        Self {
            client_order_id: client_order_id.into(),
            side,
            price,
            size,
            filled: 0.0,
            status: OrderStatus::PendingNew,
            venue_order_id: None,
        }
    }

    /// Size still to fill.
    #[must_use]
    pub fn remaining(&self) -> f64 {
        (self.size - self.filled).max(0.0)
    }
}

/// One execution of ours, as the venue reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// The venue's trade or execution id (unique per symbol).
    pub trade_id: String,
    /// The order it belongs to, when the venue says.
    pub client_order_id: Option<String>,
    /// Our side.
    pub side: Side,
    /// Execution price.
    pub price: f64,
    /// Executed size.
    pub size: f64,
    /// Fee paid in the quote currency (negative for a rebate).
    pub fee: f64,
    /// Whether we were the maker.
    pub is_maker: bool,
    /// Exchange time, nanoseconds.
    pub exchange_time_ns: i64,
}

/// What applying a fill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillOutcome {
    /// Applied to the order and the position.
    Applied,
    /// Applied to the position, but no order of ours matches its client order id; recorded in
    /// [`Account::unmatched_fills`].
    Unmatched,
    /// This trade id was applied before: nothing changed.
    Duplicate,
}

/// Private state of one instrument.
#[derive(Debug, Clone)]
pub struct Account {
    balance: f64,
    position: f64,
    entry_price: f64,
    realized_pnl: f64,
    fees_paid: f64,
    volume: f64,
    fill_count: u64,
    open_orders: BTreeMap<String, Order>,
    closed_orders: BTreeMap<String, Order>,
    closed_order_ids: VecDeque<String>,
    seen_trade_ids: HashSet<String>,
    unmatched_fills: Vec<Fill>,
}

impl Default for Account {
    fn default() -> Self {
        Self::new(0.0)
    }
}

impl Account {
    /// A flat account with this balance (quote currency).
    #[must_use]
    pub fn new(balance: f64) -> Self {
        Self {
            balance,
            position: 0.0,
            entry_price: 0.0,
            realized_pnl: 0.0,
            fees_paid: 0.0,
            volume: 0.0,
            fill_count: 0,
            open_orders: BTreeMap::new(),
            closed_orders: BTreeMap::new(),
            closed_order_ids: VecDeque::new(),
            seen_trade_ids: HashSet::new(),
            unmatched_fills: Vec::new(),
        }
    }

    /// Wallet balance: the starting balance plus realized PnL minus fees.
    #[must_use]
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// Sets the balance (e.g. from the venue's `ACCOUNT_UPDATE`).
    pub fn set_balance(&mut self, balance: f64) {
        self.balance = balance;
    }

    /// Signed position: positive long, negative short.
    #[must_use]
    pub fn position(&self) -> f64 {
        self.position
    }

    /// Average entry price of the open position (0 when flat).
    #[must_use]
    pub fn entry_price(&self) -> f64 {
        self.entry_price
    }

    /// Sets position and entry from the venue (reconciliation at start-up).
    pub fn set_position(&mut self, position: f64, entry_price: f64) {
        self.position = if position.abs() < FLAT { 0.0 } else { position };
        self.entry_price = if self.position == 0.0 {
            0.0
        } else {
            entry_price
        };
    }

    /// PnL realized by closing trades, before fees.
    #[must_use]
    pub fn realized_pnl(&self) -> f64 {
        self.realized_pnl
    }

    /// Fees paid (rebates count negative).
    #[must_use]
    pub fn fees_paid(&self) -> f64 {
        self.fees_paid
    }

    /// Traded base volume.
    #[must_use]
    pub fn volume(&self) -> f64 {
        self.volume
    }

    /// Fills applied.
    #[must_use]
    pub fn fill_count(&self) -> u64 {
        self.fill_count
    }

    /// PnL of the open position at `mark`.
    #[must_use]
    pub fn unrealized_pnl(&self, mark: f64) -> f64 {
        (mark - self.entry_price) * self.position
    }

    /// Open orders by client order id.
    #[must_use]
    pub fn open_orders(&self) -> &BTreeMap<String, Order> {
        &self.open_orders
    }

    /// Our open orders as the order diff sees them, written into `live` (by client order id,
    /// as [`Self::open_orders`]); its entries' strings are reused, so a steady tick allocates
    /// nothing.
    pub fn read_live_orders(&self, live: &mut Vec<LiveOrder>) {
        live.truncate(self.open_orders.len());
        for (index, order) in self.open_orders.values().enumerate() {
            if let Some(slot) = live.get_mut(index) {
                slot.client_order_id.clone_from(&order.client_order_id);
                slot.side = order.side;
                slot.price = order.price;
                slot.size = order.remaining();
            } else {
                live.push(LiveOrder {
                    client_order_id: order.client_order_id.clone(),
                    side: order.side,
                    price: order.price,
                    size: order.remaining(),
                });
            }
        }
    }

    /// An open or recently closed order.
    #[must_use]
    pub fn order(&self, client_order_id: &str) -> Option<&Order> {
        self.open_orders
            .get(client_order_id)
            .or_else(|| self.closed_orders.get(client_order_id))
    }

    /// Fills that matched no order of ours.
    #[must_use]
    pub fn unmatched_fills(&self) -> &[Fill] {
        &self.unmatched_fills
    }

    /// Records an order we are sending.
    pub fn add_order(&mut self, order: Order) -> CoreResult<()> {
        if !(order.size.is_finite() && order.size > 0.0) {
            return Err(CoreError::InvalidOrder(format!(
                "{}: size {} must be positive",
                order.client_order_id, order.size
            )));
        }
        if !(order.price.is_finite() && order.price > 0.0) {
            return Err(CoreError::InvalidOrder(format!(
                "{}: price {} must be positive",
                order.client_order_id, order.price
            )));
        }
        if self.open_orders.contains_key(&order.client_order_id) {
            return Err(CoreError::InvalidOrder(format!(
                "client order id {} is already open",
                order.client_order_id
            )));
        }
        self.open_orders
            .insert(order.client_order_id.clone(), order);
        Ok(())
    }

    /// The venue acknowledged an order. Returns whether we knew it.
    pub fn acknowledge_order(
        &mut self,
        client_order_id: &str,
        venue_order_id: Option<String>,
    ) -> bool {
        match self.open_orders.get_mut(client_order_id) {
            Some(order) => {
                if order.status == OrderStatus::PendingNew {
                    order.status = OrderStatus::New;
                }
                if venue_order_id.is_some() {
                    order.venue_order_id = venue_order_id;
                }
                true
            }
            None => false,
        }
    }

    /// An order left the book without (further) fills: cancelled, rejected or expired.
    pub fn close_order(&mut self, client_order_id: &str, status: OrderStatus) -> Option<Order> {
        let mut order = self.open_orders.remove(client_order_id)?;
        order.status = status;
        self.remember_closed(order.clone());
        Some(order)
    }

    fn remember_closed(&mut self, order: Order) {
        if self.closed_order_ids.len() == CLOSED_ORDERS_KEPT {
            if let Some(oldest) = self.closed_order_ids.pop_front() {
                self.closed_orders.remove(&oldest);
            }
        }
        self.closed_order_ids
            .push_back(order.client_order_id.clone());
        self.closed_orders
            .insert(order.client_order_id.clone(), order);
    }

    /// Applies one of our executions, once per trade id.
    pub fn apply_fill(&mut self, fill: &Fill) -> CoreResult<FillOutcome> {
        if !(fill.size.is_finite() && fill.size > 0.0) {
            return Err(CoreError::InvalidOrder(format!(
                "fill {}: size {} must be positive",
                fill.trade_id, fill.size
            )));
        }
        if !(fill.price.is_finite() && fill.price > 0.0) {
            return Err(CoreError::InvalidOrder(format!(
                "fill {}: price {} must be positive",
                fill.trade_id, fill.price
            )));
        }
        if !fill.fee.is_finite() {
            return Err(CoreError::InvalidOrder(format!(
                "fill {}: fee {} must be finite",
                fill.trade_id, fill.fee
            )));
        }
        if !self.seen_trade_ids.insert(fill.trade_id.clone()) {
            return Ok(FillOutcome::Duplicate);
        }
        self.move_position(fill.side, fill.price, fill.size);
        self.fees_paid += fill.fee;
        self.balance -= fill.fee;
        self.volume += fill.size;
        self.fill_count += 1;

        let matched = fill
            .client_order_id
            .as_deref()
            .is_some_and(|id| self.fill_order(id, fill.size));
        if matched {
            Ok(FillOutcome::Applied)
        } else {
            self.unmatched_fills.push(fill.clone());
            Ok(FillOutcome::Unmatched)
        }
    }

    fn fill_order(&mut self, client_order_id: &str, size: f64) -> bool {
        if let Some(order) = self.open_orders.get_mut(client_order_id) {
            order.filled += size;
            if order.remaining() <= FLAT {
                let mut order = self
                    .open_orders
                    .remove(client_order_id)
                    .expect("just found");
                order.status = OrderStatus::Filled;
                self.remember_closed(order);
            } else {
                order.status = OrderStatus::PartiallyFilled;
            }
            return true;
        }
        // A fill that raced our cancel: the order is closed but the fill is real.
        if let Some(order) = self.closed_orders.get_mut(client_order_id) {
            order.filled += size;
            if order.remaining() <= FLAT {
                order.status = OrderStatus::Filled;
            }
            return true;
        }
        false
    }

    fn move_position(&mut self, side: Side, price: f64, size: f64) {
        let change = side.sign() * size;
        let position = self.position;
        if position == 0.0 || position.signum() == change.signum() {
            let held = position.abs();
            self.entry_price = (self.entry_price * held + price * size) / (held + size);
            self.position = position + change;
        } else {
            let closed = position.abs().min(size);
            self.realized_pnl += closed * (price - self.entry_price) * position.signum();
            self.balance += closed * (price - self.entry_price) * position.signum();
            self.position = position + change;
            if self.position.abs() < FLAT {
                self.position = 0.0;
                self.entry_price = 0.0;
            } else if size > position.abs() {
                // Flipped: the rest opens a new position at this price.
                self.entry_price = price;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(id: &str, order: Option<&str>, side: Side, price: f64, size: f64, fee: f64) -> Fill {
        Fill {
            trade_id: id.to_owned(),
            client_order_id: order.map(str::to_owned),
            side,
            price,
            size,
            fee,
            is_maker: true,
            exchange_time_ns: 0,
        }
    }

    #[test]
    fn round_trip_balances_to_the_cent() {
        let mut account = Account::new(1000.0);
        account
            .add_order(Order::new("b1", Side::Buy, 100.0, 2.0))
            .unwrap();
        account
            .add_order(Order::new("s1", Side::Sell, 110.0, 3.0))
            .unwrap();
        assert_eq!(
            account
                .apply_fill(&fill("1", Some("b1"), Side::Buy, 100.0, 2.0, 0.04))
                .unwrap(),
            FillOutcome::Applied
        );
        assert_eq!(account.position(), 2.0);
        assert_eq!(account.entry_price(), 100.0);
        assert!(account.open_orders().is_empty() || !account.open_orders().contains_key("b1"));
        assert_eq!(account.order("b1").unwrap().status, OrderStatus::Filled);
        // Sell 3 at 110: closes 2 (+20), opens 1 short at 110.
        account
            .apply_fill(&fill("2", Some("s1"), Side::Sell, 110.0, 3.0, 0.066))
            .unwrap();
        assert_eq!(account.position(), -1.0);
        assert_eq!(account.entry_price(), 110.0);
        assert_eq!(account.realized_pnl(), 20.0);
        assert!((account.fees_paid() - 0.106).abs() < 1e-12);
        assert!((account.balance() - (1000.0 + 20.0 - 0.106)).abs() < 1e-9);
        assert_eq!(account.unrealized_pnl(100.0), 10.0);
    }

    #[test]
    fn fills_are_idempotent_and_unknown_orders_recorded() {
        let mut account = Account::new(0.0);
        let f = fill("7", Some("ghost"), Side::Sell, 50.0, 1.0, 0.0);
        assert_eq!(account.apply_fill(&f).unwrap(), FillOutcome::Unmatched);
        assert_eq!(account.apply_fill(&f).unwrap(), FillOutcome::Duplicate);
        assert_eq!(account.position(), -1.0);
        assert_eq!(account.unmatched_fills().len(), 1);
        assert_eq!(account.fill_count(), 1);
    }

    #[test]
    fn fill_after_cancel_finds_the_order() {
        let mut account = Account::new(0.0);
        account
            .add_order(Order::new("a", Side::Buy, 10.0, 1.0))
            .unwrap();
        account.acknowledge_order("a", Some("99".into()));
        assert_eq!(account.order("a").unwrap().status, OrderStatus::New);
        account.close_order("a", OrderStatus::Canceled).unwrap();
        assert_eq!(
            account
                .apply_fill(&fill("1", Some("a"), Side::Buy, 10.0, 1.0, 0.0))
                .unwrap(),
            FillOutcome::Applied
        );
        assert_eq!(account.order("a").unwrap().status, OrderStatus::Filled);
        assert_eq!(account.position(), 1.0);
    }

    #[test]
    fn partial_fills_and_flat_residue() {
        let mut account = Account::new(0.0);
        account
            .add_order(Order::new("a", Side::Buy, 10.0, 0.003))
            .unwrap();
        account
            .apply_fill(&fill("1", Some("a"), Side::Buy, 10.0, 0.001, 0.0))
            .unwrap();
        assert_eq!(
            account.order("a").unwrap().status,
            OrderStatus::PartiallyFilled
        );
        account
            .apply_fill(&fill("2", Some("a"), Side::Buy, 10.0, 0.002, 0.0))
            .unwrap();
        assert_eq!(account.order("a").unwrap().status, OrderStatus::Filled);
        account
            .apply_fill(&fill("3", None, Side::Sell, 11.0, 0.001, 0.0))
            .unwrap();
        account
            .apply_fill(&fill("4", None, Side::Sell, 11.0, 0.002, 0.0))
            .unwrap();
        assert_eq!(account.position(), 0.0, "decimal residue snaps to flat");
        assert_eq!(account.entry_price(), 0.0);
        assert!((account.realized_pnl() - 0.003).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_orders_and_fills() {
        let mut account = Account::new(0.0);
        assert!(account
            .add_order(Order::new("a", Side::Buy, 10.0, 0.0))
            .is_err());
        assert!(account
            .add_order(Order::new("a", Side::Buy, f64::NAN, 1.0))
            .is_err());
        account
            .add_order(Order::new("a", Side::Buy, 10.0, 1.0))
            .unwrap();
        assert!(account
            .add_order(Order::new("a", Side::Buy, 10.0, 1.0))
            .is_err());
        assert!(account
            .apply_fill(&fill("1", None, Side::Buy, 10.0, -1.0, 0.0))
            .is_err());
        assert!(account
            .apply_fill(&fill("1", None, Side::Buy, 10.0, 1.0, f64::INFINITY))
            .is_err());
        assert_eq!(account.fill_count(), 0);
    }
}

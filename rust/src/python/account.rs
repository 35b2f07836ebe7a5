//! `Account`, `Order`, `Fill` and their enums for Python.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::side::{side_of, PySide};
use crate::account::{Account, Fill, FillOutcome, Order, OrderStatus};
use crate::side::Side;

/// Where an order is in its life.
#[pyclass(
    name = "OrderStatus",
    module = "marketmaker._core",
    eq,
    eq_int,
    frozen,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyOrderStatus {
    PENDING_NEW,
    NEW,
    PARTIALLY_FILLED,
    FILLED,
    CANCELED,
    REJECTED,
    EXPIRED,
}

impl From<OrderStatus> for PyOrderStatus {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::PendingNew => Self::PENDING_NEW,
            OrderStatus::New => Self::NEW,
            OrderStatus::PartiallyFilled => Self::PARTIALLY_FILLED,
            OrderStatus::Filled => Self::FILLED,
            OrderStatus::Canceled => Self::CANCELED,
            OrderStatus::Rejected => Self::REJECTED,
            OrderStatus::Expired => Self::EXPIRED,
        }
    }
}

impl From<PyOrderStatus> for OrderStatus {
    fn from(status: PyOrderStatus) -> Self {
        match status {
            PyOrderStatus::PENDING_NEW => Self::PendingNew,
            PyOrderStatus::NEW => Self::New,
            PyOrderStatus::PARTIALLY_FILLED => Self::PartiallyFilled,
            PyOrderStatus::FILLED => Self::Filled,
            PyOrderStatus::CANCELED => Self::Canceled,
            PyOrderStatus::REJECTED => Self::Rejected,
            PyOrderStatus::EXPIRED => Self::Expired,
        }
    }
}

/// What applying a fill did.
#[pyclass(
    name = "FillOutcome",
    module = "marketmaker._core",
    eq,
    eq_int,
    frozen,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyFillOutcome {
    /// Applied to its order and the position.
    APPLIED,
    /// Applied to the position; no order of ours matched (kept in ``unmatched_fills``).
    UNMATCHED,
    /// The trade id was applied before: nothing changed.
    DUPLICATE,
}

impl From<FillOutcome> for PyFillOutcome {
    fn from(outcome: FillOutcome) -> Self {
        match outcome {
            FillOutcome::Applied => Self::APPLIED,
            FillOutcome::Unmatched => Self::UNMATCHED,
            FillOutcome::Duplicate => Self::DUPLICATE,
        }
    }
}

/// One of our orders, as of when it was read.
#[pyclass(name = "Order", module = "marketmaker._core", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct PyOrder {
    client_order_id: String,
    side: PySide,
    price: f64,
    size: f64,
    filled: f64,
    status: PyOrderStatus,
    venue_order_id: Option<String>,
}

impl From<&Order> for PyOrder {
    fn from(order: &Order) -> Self {
        Self {
            client_order_id: order.client_order_id.clone(),
            side: order.side.into(),
            price: order.price,
            size: order.size,
            filled: order.filled,
            status: order.status.into(),
            venue_order_id: order.venue_order_id.clone(),
        }
    }
}

impl PyOrder {
    /// The order as the diff sees it.
    pub(crate) fn live(&self) -> crate::orders::LiveOrder {
        crate::orders::LiveOrder {
            client_order_id: self.client_order_id.clone(),
            side: self.side.into(),
            price: self.price,
            size: (self.size - self.filled).max(0.0),
        }
    }
}

#[pymethods]
impl PyOrder {
    /// Size still to fill.
    #[getter]
    fn remaining(&self) -> f64 {
        (self.size - self.filled).max(0.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Order(client_order_id={}, side=Side.{}, price={}, size={}, filled={}, status=OrderStatus.{})",
            super::quoted(&self.client_order_id),
            Side::from(self.side).as_str(),
            self.price,
            self.size,
            self.filled,
            status_name(self.status)
        )
    }
}

/// One of our executions.
#[pyclass(name = "Fill", module = "marketmaker._core", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct PyFill {
    trade_id: String,
    client_order_id: Option<String>,
    side: PySide,
    price: f64,
    size: f64,
    fee: f64,
    is_maker: bool,
    exchange_time_ns: i64,
}

impl From<&Fill> for PyFill {
    fn from(fill: &Fill) -> Self {
        Self {
            trade_id: fill.trade_id.clone(),
            client_order_id: fill.client_order_id.clone(),
            side: fill.side.into(),
            price: fill.price,
            size: fill.size,
            fee: fill.fee,
            is_maker: fill.is_maker,
            exchange_time_ns: fill.exchange_time_ns,
        }
    }
}

#[pymethods]
impl PyFill {
    fn __repr__(&self) -> String {
        format!(
            "Fill(trade_id={}, client_order_id={}, side=Side.{}, price={}, size={}, fee={})",
            super::quoted(&self.trade_id),
            super::quoted_or_none(self.client_order_id.as_deref()),
            Side::from(self.side).as_str(),
            self.price,
            self.size,
            self.fee
        )
    }
}

fn status_name(status: PyOrderStatus) -> &'static str {
    match status {
        PyOrderStatus::PENDING_NEW => "PENDING_NEW",
        PyOrderStatus::NEW => "NEW",
        PyOrderStatus::PARTIALLY_FILLED => "PARTIALLY_FILLED",
        PyOrderStatus::FILLED => "FILLED",
        PyOrderStatus::CANCELED => "CANCELED",
        PyOrderStatus::REJECTED => "REJECTED",
        PyOrderStatus::EXPIRED => "EXPIRED",
    }
}

fn status_of(status: &Bound<'_, PyAny>) -> PyResult<OrderStatus> {
    if let Ok(status) = status.cast::<PyOrderStatus>() {
        return Ok((*status.get()).into());
    }
    let text: String = status.extract()?;
    match text.to_ascii_uppercase().as_str() {
        "CANCELED" | "CANCELLED" => Ok(OrderStatus::Canceled),
        "REJECTED" => Ok(OrderStatus::Rejected),
        "EXPIRED" => Ok(OrderStatus::Expired),
        "FILLED" => Ok(OrderStatus::Filled),
        _ => Err(PyValueError::new_err(format!(
            "{text:?} is not a closing status (CANCELED, REJECTED, EXPIRED, FILLED)"
        ))),
    }
}

fn trade_id_of(trade_id: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = trade_id.cast::<PyString>() {
        return Ok(text.to_str()?.to_owned());
    }
    Ok(trade_id.extract::<i128>()?.to_string())
}

/// Our position, orders, balance, realized PnL and fees on one instrument.
///
/// Fills are applied once per trade id; a fill for an order we do not know still moves the
/// position (the venue says it happened) and is kept in :attr:`unmatched_fills`.
///
/// Examples
/// --------
/// >>> from marketmaker import Account, Side
/// >>> account = Account(balance=1000.0)
/// >>> account.add_order("mm-1", Side.BUY, price=100.0, size=2.0)
/// >>> account.apply_fill("t1", Side.BUY, price=100.0, size=2.0, client_order_id="mm-1", fee=0.04)
/// FillOutcome.APPLIED
/// >>> account.position, account.entry_price
/// (2.0, 100.0)
#[pyclass(name = "Account", module = "marketmaker._core")]
pub struct PyAccount {
    pub(crate) account: Account,
}

#[pymethods]
impl PyAccount {
    #[new]
    #[pyo3(signature = (balance = 0.0))]
    fn new(balance: f64) -> PyResult<Self> {
        if !balance.is_finite() {
            return Err(PyValueError::new_err(format!(
                "balance must be finite, got {balance}"
            )));
        }
        Ok(Self {
            account: Account::new(balance),
        })
    }

    /// Wallet balance in the quote currency.
    #[getter]
    fn balance(&self) -> f64 {
        self.account.balance()
    }

    #[setter]
    fn set_balance(&mut self, balance: f64) -> PyResult<()> {
        if !balance.is_finite() {
            return Err(PyValueError::new_err(format!(
                "balance must be finite, got {balance}"
            )));
        }
        self.account.set_balance(balance);
        Ok(())
    }

    /// Signed position: positive long, negative short.
    #[getter]
    fn position(&self) -> f64 {
        self.account.position()
    }

    /// Average entry price of the open position (0 when flat).
    #[getter]
    fn entry_price(&self) -> f64 {
        self.account.entry_price()
    }

    /// Sets position and entry from the venue (start-up reconciliation).
    fn set_position(&mut self, position: f64, entry_price: f64) -> PyResult<()> {
        if !(position.is_finite() && entry_price.is_finite() && entry_price >= 0.0) {
            return Err(PyValueError::new_err(
                "position must be finite and entry_price finite and >= 0",
            ));
        }
        self.account.set_position(position, entry_price);
        Ok(())
    }

    /// PnL realized by closing trades, before fees.
    #[getter]
    fn realized_pnl(&self) -> f64 {
        self.account.realized_pnl()
    }

    /// Fees paid (rebates count negative).
    #[getter]
    fn fees_paid(&self) -> f64 {
        self.account.fees_paid()
    }

    /// Traded base volume.
    #[getter]
    fn volume(&self) -> f64 {
        self.account.volume()
    }

    /// Fills applied.
    #[getter]
    fn fill_count(&self) -> u64 {
        self.account.fill_count()
    }

    /// PnL of the open position at ``mark``.
    fn unrealized_pnl(&self, mark: f64) -> f64 {
        self.account.unrealized_pnl(mark)
    }

    /// Records an order being sent.
    #[pyo3(signature = (client_order_id, side, price, size))]
    fn add_order(
        &mut self,
        client_order_id: &str,
        side: &Bound<'_, PyAny>,
        price: f64,
        size: f64,
    ) -> PyResult<()> {
        Ok(self
            .account
            .add_order(Order::new(client_order_id, side_of(side)?, price, size))?)
    }

    /// The venue acknowledged an order; returns whether it is one of ours.
    #[pyo3(signature = (client_order_id, venue_order_id = None))]
    fn acknowledge_order(
        &mut self,
        client_order_id: &str,
        venue_order_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let venue_order_id = venue_order_id.map(trade_id_of).transpose()?;
        Ok(self
            .account
            .acknowledge_order(client_order_id, venue_order_id))
    }

    /// An order left the book without further fills (``CANCELED``, ``REJECTED``,
    /// ``EXPIRED``); returns it, or None if it was not open.
    #[pyo3(signature = (client_order_id, status = None))]
    fn close_order(
        &mut self,
        client_order_id: &str,
        status: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyOrder>> {
        let status = status
            .map(status_of)
            .transpose()?
            .unwrap_or(OrderStatus::Canceled);
        Ok(self
            .account
            .close_order(client_order_id, status)
            .as_ref()
            .map(PyOrder::from))
    }

    /// Applies one of our executions, once per ``trade_id``.
    #[pyo3(signature = (trade_id, side, price, size, *, client_order_id = None, fee = 0.0, is_maker = true, exchange_time_ns = 0))]
    #[allow(clippy::too_many_arguments)]
    fn apply_fill(
        &mut self,
        trade_id: &Bound<'_, PyAny>,
        side: &Bound<'_, PyAny>,
        price: f64,
        size: f64,
        client_order_id: Option<String>,
        fee: f64,
        is_maker: bool,
        exchange_time_ns: i64,
    ) -> PyResult<PyFillOutcome> {
        let fill = Fill {
            trade_id: trade_id_of(trade_id)?,
            client_order_id,
            side: side_of(side)?,
            price,
            size,
            fee,
            is_maker,
            exchange_time_ns,
        };
        Ok(self.account.apply_fill(&fill)?.into())
    }

    /// Open orders, by client order id.
    #[getter]
    fn open_orders(&self) -> Vec<PyOrder> {
        self.account
            .open_orders()
            .values()
            .map(PyOrder::from)
            .collect()
    }

    /// An open or recently closed order, or None.
    fn order(&self, client_order_id: &str) -> Option<PyOrder> {
        self.account.order(client_order_id).map(PyOrder::from)
    }

    /// Fills that matched no order of ours.
    #[getter]
    fn unmatched_fills(&self) -> Vec<PyFill> {
        self.account
            .unmatched_fills()
            .iter()
            .map(PyFill::from)
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Account(balance={}, position={}, entry_price={}, realized_pnl={}, fees_paid={}, open_orders={})",
            self.account.balance(),
            self.account.position(),
            self.account.entry_price(),
            self.account.realized_pnl(),
            self.account.fees_paid(),
            self.account.open_orders().len()
        )
    }
}

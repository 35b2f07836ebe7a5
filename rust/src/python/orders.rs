//! `OrderPlanner`, `OrderAction`, `RateLimiter` and `RiskGate` for Python.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::account::{PyAccount, PyOrder};
use super::quotes::PyQuotes;
use super::side::{side_of, PySide};
use crate::orders::{
    self, ClientOrderIds, DiffRules, LiveOrder, OrderAction, RateLimiter, Traffic,
};
use crate::risk::{HaltReason, RiskGate, RiskLimits, RiskState};
use crate::side::Side;

/// One thing to send to the venue: ``kind`` is ``"cancel"``, ``"amend"`` or ``"place"``.
#[pyclass(name = "OrderAction", module = "marketmaker._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyOrderAction {
    pub(crate) action: OrderAction,
}

#[pymethods]
impl PyOrderAction {
    /// ``"cancel"``, ``"amend"`` or ``"place"``.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.action {
            OrderAction::Cancel { .. } => "cancel",
            OrderAction::Amend { .. } => "amend",
            OrderAction::Place { .. } => "place",
        }
    }

    /// The order's client order id (a fresh one for a place).
    #[getter]
    fn client_order_id(&self) -> &str {
        match &self.action {
            OrderAction::Cancel {
                client_order_id, ..
            }
            | OrderAction::Amend {
                client_order_id, ..
            }
            | OrderAction::Place {
                client_order_id, ..
            } => client_order_id,
        }
    }

    /// Buy or sell.
    #[getter]
    fn side(&self) -> PySide {
        self.action.side().into()
    }

    /// The price (the order's current price for a cancel).
    #[getter]
    fn price(&self) -> f64 {
        match &self.action {
            OrderAction::Cancel { price, .. }
            | OrderAction::Amend { price, .. }
            | OrderAction::Place { price, .. } => *price,
        }
    }

    /// The size (None for a cancel).
    #[getter]
    fn size(&self) -> Option<f64> {
        match &self.action {
            OrderAction::Cancel { .. } => None,
            OrderAction::Amend { size, .. } | OrderAction::Place { size, .. } => Some(*size),
        }
    }

    fn __repr__(&self) -> String {
        let side = Side::from(self.side()).as_str();
        match &self.action {
            OrderAction::Cancel {
                client_order_id,
                price,
                ..
            } => format!(
                "OrderAction(kind='cancel', client_order_id={}, side=Side.{side}, price={price})",
                super::quoted(client_order_id)
            ),
            OrderAction::Amend {
                client_order_id,
                price,
                size,
                ..
            } => {
                format!("OrderAction(kind='amend', client_order_id={}, side=Side.{side}, price={price}, size={size})", super::quoted(client_order_id))
            }
            OrderAction::Place {
                client_order_id,
                price,
                size,
                ..
            } => {
                format!("OrderAction(kind='place', client_order_id={}, side=Side.{side}, price={price}, size={size})", super::quoted(client_order_id))
            }
        }
    }
}

/// Reads `live` (an Account, Order objects or tuples) into `out`, reusing its entries.
fn read_live_orders(live: &Bound<'_, PyAny>, out: &mut Vec<LiveOrder>) -> PyResult<()> {
    if let Ok(account) = live.cast::<PyAccount>() {
        account.borrow().account.read_live_orders(out);
        return Ok(());
    }
    out.clear();
    for item in live.try_iter()? {
        let item = item?;
        if let Ok(order) = item.cast::<PyOrder>() {
            let order = order.get();
            out.push(order.live());
        } else if let Ok(tuple) = item.cast::<PyTuple>() {
            let (id, side, price, size): (String, Bound<'_, PyAny>, f64, f64) = tuple.extract()?;
            out.push(LiveOrder {
                client_order_id: id,
                side: side_of(&side)?,
                price,
                size,
            });
        } else {
            return Err(PyTypeError::new_err("live orders must be an Account, Order objects or (client_order_id, side, price, size) tuples"));
        }
    }
    Ok(())
}

/// Turns a desired ladder and our live orders into the smallest set of actions: orders within
/// ``requote_tolerance_bps`` of a wanted price and ``size_tolerance`` of its size are kept,
/// others amended (if the venue supports it), cancelled or placed; never two of our orders at
/// one price and side. New orders get client order ids ``<prefix><counter>`` (≤ 36 chars of
/// ``[A-Za-z0-9_-]``, valid on Binance and Bybit).
///
/// Examples
/// --------
/// >>> from marketmaker import OrderPlanner, QuoteGenerator
/// >>> planner = OrderPlanner("mm1-", requote_tolerance_bps=1.0, batch_size=5)
/// >>> quotes = QuoteGenerator("ladder", tick_size=0.1, lot_size=0.001, bps=10, orders_per_side=2).quote(1000.0, balance=10_000)
/// >>> [a.kind for a in planner.plan(quotes, [])]
/// ['place', 'place', 'place', 'place']
/// >>> [a.kind for a in planner.plan(quotes, [("old-1", "buy", 990.0, 1.0)])][:1]
/// ['cancel']
#[pyclass(name = "OrderPlanner", module = "marketmaker._core")]
pub struct PyOrderPlanner {
    pub(crate) ids: ClientOrderIds,
    pub(crate) rules: DiffRules,
    batch_size: usize,
    diff_scratch: orders::DiffScratch,
    /// The live orders of the last `plan`, reused.
    live: Vec<LiveOrder>,
}

#[pymethods]
impl PyOrderPlanner {
    #[new]
    #[pyo3(signature = (prefix, *, requote_tolerance_bps = 1.0, size_tolerance = 0.25, supports_amend = false, batch_size = 5))]
    fn new(
        prefix: &str,
        requote_tolerance_bps: f64,
        size_tolerance: f64,
        supports_amend: bool,
        batch_size: usize,
    ) -> PyResult<Self> {
        let rules = DiffRules {
            requote_tolerance_bps,
            size_tolerance,
            supports_amend,
        };
        rules.validate()?;
        if batch_size == 0 {
            return Err(super::error::InvalidParameterError::new_err(
                "batch_size must be at least 1",
            ));
        }
        Ok(Self {
            ids: ClientOrderIds::new(prefix)?,
            rules,
            batch_size,
            diff_scratch: orders::DiffScratch::default(),
            live: Vec::new(),
        })
    }

    /// The run's client order id prefix.
    #[getter]
    fn prefix(&self) -> &str {
        self.ids.prefix()
    }

    /// Whether a client order id was made by this planner's prefix (an order of this run).
    fn is_ours(&self, client_order_id: &str) -> bool {
        self.ids.is_ours(client_order_id)
    }

    /// A fresh client order id.
    fn next_client_order_id(&mut self) -> String {
        self.ids.next_id()
    }

    /// Changes the tolerances (a hot reload).
    #[pyo3(signature = (*, requote_tolerance_bps = None, size_tolerance = None))]
    fn set_tolerances(
        &mut self,
        requote_tolerance_bps: Option<f64>,
        size_tolerance: Option<f64>,
    ) -> PyResult<()> {
        let rules = DiffRules {
            requote_tolerance_bps: requote_tolerance_bps
                .unwrap_or(self.rules.requote_tolerance_bps),
            size_tolerance: size_tolerance.unwrap_or(self.rules.size_tolerance),
            supports_amend: self.rules.supports_amend,
        };
        rules.validate()?;
        self.rules = rules;
        Ok(())
    }

    /// The actions that turn ``live`` (an :class:`Account`, :class:`Order` objects, or
    /// ``(client_order_id, side, price, size)`` tuples) into ``quotes``: cancels first, then
    /// amends, then places.
    fn plan(
        &mut self,
        quotes: PyRef<'_, PyQuotes>,
        live: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<PyOrderAction>> {
        read_live_orders(live, &mut self.live)?;
        Ok(orders::diff_with(
            &quotes.ladder,
            &self.live,
            &self.rules,
            &mut self.ids,
            &mut self.diff_scratch,
        )
        .into_iter()
        .map(|action| PyOrderAction { action })
        .collect())
    }

    /// The actions in venue-sized batches of one kind each, cancels first.
    fn batches<'py>(
        &self,
        py: Python<'py>,
        actions: Vec<PyRef<'py, PyOrderAction>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let actions: Vec<OrderAction> =
            actions.iter().map(|action| action.action.clone()).collect();
        let batches = orders::batches(&actions, self.batch_size);
        let out = PyList::empty(py);
        for batch in batches {
            out.append(
                batch
                    .into_iter()
                    .map(|action| PyOrderAction { action })
                    .collect::<Vec<_>>(),
            )?;
        }
        Ok(out)
    }
}

/// Paces order traffic with token buckets: batch calls per second (the seed's ``rate_limit``),
/// request weight per minute and orders per 10 seconds. New orders never use the last
/// ``cancel_reserve`` share of a bucket, so cancels get through first. Tell it the venue's usage
/// headers with :meth:`observe_usage`, and a 429/418 with :meth:`block_for`.
///
/// Examples
/// --------
/// >>> from marketmaker import RateLimiter
/// >>> limiter = RateLimiter(calls_per_s=2, cancel_reserve=0.5)
/// >>> limiter.try_send(0, "orders", orders=5, weight=5), limiter.try_send(0, "orders", orders=5, weight=5)
/// (True, False)
/// >>> limiter.try_send(0, "cancels", orders=5, weight=1)
/// True
#[pyclass(name = "RateLimiter", module = "marketmaker._core")]
pub struct PyRateLimiter {
    limiter: RateLimiter,
}

#[pymethods]
impl PyRateLimiter {
    #[new]
    #[pyo3(signature = (
        calls_per_s,
        *,
        weight_per_min = 2400.0,
        orders_per_10s = 300.0,
        cancel_reserve = 0.2,
        orders_per_min = 1200.0,
    ))]
    fn new(
        calls_per_s: f64,
        weight_per_min: f64,
        orders_per_10s: f64,
        cancel_reserve: f64,
        orders_per_min: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            limiter: RateLimiter::new(calls_per_s, weight_per_min, orders_per_10s, cancel_reserve)?
                .with_orders_per_minute(orders_per_min)?,
        })
    }

    /// Whether a batch call of ``kind`` ("cancels" or "orders") with ``orders`` orders and
    /// request ``weight`` may go at ``now_ns``; if so, its tokens are taken. ``orders_1m`` is
    /// what the call counts against the per-minute order limit when the venue counts it
    /// otherwise than ``orders`` (Binance: a ``batchOrders`` request counts 1 there).
    #[pyo3(signature = (now_ns, kind, *, orders = 1, weight = 1.0, orders_1m = None))]
    fn try_send(
        &mut self,
        now_ns: i64,
        kind: &str,
        orders: u32,
        weight: f64,
        orders_1m: Option<u32>,
    ) -> PyResult<bool> {
        let traffic = match kind {
            "cancels" | "cancel" => Traffic::Cancels,
            "orders" | "order" | "places" | "amends" => Traffic::Orders,
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind {other:?} is not 'cancels' or 'orders'"
                )))
            }
        };
        Ok(self.limiter.try_send_counted(
            now_ns,
            traffic,
            orders,
            orders_1m.unwrap_or(orders),
            weight,
        ))
    }

    /// The venue's own counters (``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``,
    /// ``X-MBX-ORDER-COUNT-1M``).
    #[pyo3(signature = (now_ns, *, used_weight_1m = None, order_count_10s = None, order_count_1m = None))]
    fn observe_usage(
        &mut self,
        now_ns: i64,
        used_weight_1m: Option<f64>,
        order_count_10s: Option<f64>,
        order_count_1m: Option<f64>,
    ) {
        self.limiter
            .observe_usage(now_ns, used_weight_1m, order_count_10s);
        if let Some(used) = order_count_1m {
            self.limiter.observe_order_count_per_minute(now_ns, used);
        }
    }

    /// Sends nothing for ``pause_ns`` (after HTTP 429/418).
    fn block_for(&mut self, now_ns: i64, pause_ns: i64) {
        self.limiter.block_for(now_ns, pause_ns);
    }

    /// Headroom of each bucket as a share of its capacity: ``(calls, weight, orders)``.
    fn headroom(&mut self, now_ns: i64) -> (f64, f64, f64) {
        self.limiter.headroom(now_ns)
    }
}

fn reason_of(name: &str) -> PyResult<HaltReason> {
    Ok(match name {
        "drawdown" => HaltReason::Drawdown,
        "stale_book" => HaltReason::StaleBook,
        "volatility" => HaltReason::Volatility,
        "crossed_book" => HaltReason::CrossedBook,
        "book_resync" => HaltReason::BookResync,
        "manual" => HaltReason::Manual,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown halt reason {other:?}"
            )))
        }
    })
}

/// The risk gate: every action passes it before it is sent. Limits (0 turns one off):
/// ``max_position``, ``max_position_notional``, ``max_order_size``, ``max_open_orders``; halts
/// that latch until :meth:`reset`: ``max_drawdown``, ``stale_book_ms``, ``max_volatility``,
/// a crossed book, a book needing resync, or :meth:`halt`. A halted gate passes only cancels
/// (and orders that reduce the position, with ``allow_reduce_only_when_halted``).
///
/// Examples
/// --------
/// >>> from marketmaker import RiskGate
/// >>> gate = RiskGate(max_order_size=1.0)
/// >>> gate.check(now_ns=0, book_updated_ns=0, equity=1000.0) is None
/// True
/// >>> gate.check(now_ns=10_000_000_000, book_updated_ns=0, equity=1000.0)
/// 'stale_book'
#[pyclass(name = "RiskGate", module = "marketmaker._core")]
pub struct PyRiskGate {
    pub(crate) gate: RiskGate,
}

#[pymethods]
impl PyRiskGate {
    #[new]
    #[pyo3(signature = (*, max_position = 0.0, max_position_notional = 0.0, max_order_size = 0.0, max_open_orders = 0, max_drawdown = 0.0, stale_book_ms = 5000.0, max_volatility = 0.0, allow_reduce_only_when_halted = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_position: f64,
        max_position_notional: f64,
        max_order_size: f64,
        max_open_orders: usize,
        max_drawdown: f64,
        stale_book_ms: f64,
        max_volatility: f64,
        allow_reduce_only_when_halted: bool,
    ) -> PyResult<Self> {
        let limits = RiskLimits {
            max_position,
            max_position_notional,
            max_order_size,
            max_open_orders,
            max_drawdown,
            stale_book_ms,
            max_volatility,
            allow_reduce_only_when_halted,
        };
        Ok(Self {
            gate: RiskGate::new(limits)?,
        })
    }

    /// Takes ``other``'s limits (a hot reload: build a gate from the new config and pass it
    /// here); this gate's latched halt, if any, stays.
    ///
    /// Examples
    /// --------
    /// >>> from marketmaker import RiskGate
    /// >>> gate = RiskGate(max_position=1.0)
    /// >>> gate.halt("operator", "manual")
    /// True
    /// >>> gate.take_limits(RiskGate(max_position=2.0)); gate.halted
    /// 'manual'
    fn take_limits(&mut self, other: PyRef<'_, PyRiskGate>) -> PyResult<()> {
        Ok(self.gate.set_limits(*other.gate.limits())?)
    }

    /// The latched halt's reason, or None.
    #[getter]
    fn halted(&self) -> Option<&'static str> {
        self.gate.halt().map(|(reason, _)| reason.as_str())
    }

    /// Why it halted, in words, or None.
    #[getter]
    fn halt_detail(&self) -> Option<String> {
        self.gate.halt().map(|(_, detail)| detail.to_owned())
    }

    /// Checks the market and account; latches the first halt found and returns its reason
    /// when this call latched it (then cancel all orders).
    #[pyo3(signature = (*, now_ns, book_updated_ns = None, book_crossed = false, book_needs_resync = false, volatility = 0.0, equity = 0.0, position = 0.0, mid = 0.0, open_orders = 0))]
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        now_ns: i64,
        book_updated_ns: Option<i64>,
        book_crossed: bool,
        book_needs_resync: bool,
        volatility: f64,
        equity: f64,
        position: f64,
        mid: f64,
        open_orders: usize,
    ) -> Option<&'static str> {
        let state = RiskState {
            now_ns,
            book_updated_ns,
            book_crossed,
            book_needs_resync,
            volatility,
            equity,
            position,
            mid,
            open_orders,
        };
        self.gate.check(&state).map(HaltReason::as_str)
    }

    /// Splits actions into ``(allowed, refused)``; refused entries are ``(action, reason)``.
    #[pyo3(signature = (actions, *, position = 0.0, open_orders = 0, mid = 0.0))]
    fn filter(
        &self,
        actions: Vec<PyRef<'_, PyOrderAction>>,
        position: f64,
        open_orders: usize,
        mid: f64,
    ) -> (Vec<PyOrderAction>, Vec<(PyOrderAction, String)>) {
        let state = RiskState {
            position,
            mid,
            open_orders,
            ..RiskState::default()
        };
        let (allowed, refused) = self
            .gate
            .filter(actions.iter().map(|a| a.action.clone()).collect(), &state);
        (
            allowed
                .into_iter()
                .map(|action| PyOrderAction { action })
                .collect(),
            refused
                .into_iter()
                .map(|r| (PyOrderAction { action: r.action }, r.reason))
                .collect(),
        )
    }

    /// Halts by hand (reason "manual" unless given); returns whether it was not halted before.
    #[pyo3(signature = (detail, reason = "manual"))]
    fn halt(&mut self, detail: &str, reason: &str) -> PyResult<bool> {
        Ok(self.gate.halt_now(reason_of(reason)?, detail))
    }

    /// Clears a halt.
    fn reset(&mut self) {
        self.gate.reset();
    }
}

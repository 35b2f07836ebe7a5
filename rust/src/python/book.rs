//! `OrderBook` for Python: the core book plus parsing of venue messages and a batch path.

use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString, PyTuple};

use super::error::SequenceGapError;
use super::side::side_of;
use crate::batch::{self, BatchPrices, Watch};
use crate::book::{ApplyOutcome, BinanceDiff, BookStatus, Level, OrderBook, Sequencing};
use crate::price::{check_size, size_of_text, PriceGrid};
use crate::side::Side;

/// Whether a book can be trusted.
#[pyclass(
    name = "BookStatus",
    module = "marketmaker._core",
    eq,
    eq_int,
    frozen,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyBookStatus {
    /// No snapshot yet; Binance diffs are buffered for bridging.
    AWAITING_SNAPSHOT,
    /// In sync with the venue.
    LIVE,
    /// A gap was seen; not trusted until a new snapshot.
    NEEDS_RESYNC,
}

impl From<BookStatus> for PyBookStatus {
    fn from(status: BookStatus) -> Self {
        match status {
            BookStatus::AwaitingSnapshot => Self::AWAITING_SNAPSHOT,
            BookStatus::Live => Self::LIVE,
            BookStatus::NeedsResync => Self::NEEDS_RESYNC,
        }
    }
}

/// What happened to one depth update.
#[pyclass(
    name = "UpdateOutcome",
    module = "marketmaker._core",
    eq,
    eq_int,
    frozen,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyUpdateOutcome {
    /// Applied to the book.
    APPLIED,
    /// Kept to be bridged to the next snapshot.
    BUFFERED,
    /// Older than the book; ignored.
    STALE,
    /// Does not follow its predecessor: not applied; the book needs a resync.
    GAP,
    /// Not applied because the book waits for a snapshot.
    DROPPED,
}

impl From<ApplyOutcome> for PyUpdateOutcome {
    fn from(outcome: ApplyOutcome) -> Self {
        match outcome {
            ApplyOutcome::Applied => Self::APPLIED,
            ApplyOutcome::Buffered => Self::BUFFERED,
            ApplyOutcome::Stale => Self::STALE,
            ApplyOutcome::Gap => Self::GAP,
            ApplyOutcome::Dropped => Self::DROPPED,
        }
    }
}

/// What a snapshot did: buffered diffs replayed on top of it and dropped as older.
#[pyclass(
    name = "SnapshotApplied",
    module = "marketmaker._core",
    frozen,
    eq,
    get_all
)]
#[derive(Clone, PartialEq)]
pub struct PySnapshotApplied {
    replayed: usize,
    dropped: usize,
    status: PyBookStatus,
}

#[pymethods]
impl PySnapshotApplied {
    fn __repr__(&self) -> String {
        format!(
            "SnapshotApplied(replayed={}, dropped={}, status=BookStatus.{})",
            self.replayed,
            self.dropped,
            status_name(self.status)
        )
    }
}

fn status_name(status: PyBookStatus) -> &'static str {
    match status {
        PyBookStatus::AWAITING_SNAPSHOT => "AWAITING_SNAPSHOT",
        PyBookStatus::LIVE => "LIVE",
        PyBookStatus::NEEDS_RESYNC => "NEEDS_RESYNC",
    }
}

/// Reads a tick size given as a float or as exchange text.
pub fn grid_of(tick_size: &Bound<'_, PyAny>) -> PyResult<PriceGrid> {
    if let Ok(text) = tick_size.cast::<PyString>() {
        return Ok(PriceGrid::from_text(text.to_str()?)?);
    }
    let value: f64 = tick_size.extract().map_err(|_| {
        PyTypeError::new_err("tick_size must be a number or decimal text such as \"0.1\"")
    })?;
    Ok(PriceGrid::from_f64(value)?)
}

fn sequencing_of(name: &str) -> PyResult<Sequencing> {
    match name.to_ascii_lowercase().as_str() {
        "binance" => Ok(Sequencing::Binance),
        "bybit" => Ok(Sequencing::Bybit),
        "unsequenced" | "none" => Ok(Sequencing::Unsequenced),
        _ => Err(PyValueError::new_err(format!(
            "sequencing {name:?} is not one of 'binance', 'bybit', 'unsequenced'"
        ))),
    }
}

pub(crate) fn sequencing_name(sequencing: Sequencing) -> &'static str {
    match sequencing {
        Sequencing::Binance => "binance",
        Sequencing::Bybit => "bybit",
        Sequencing::Unsequenced => "unsequenced",
    }
}

/// Reads a price given as exchange text or a number.
#[inline]
pub fn ticks_of(
    grid: &PriceGrid,
    price: &Bound<'_, PyAny>,
    field: &dyn Fn() -> String,
) -> PyResult<i64> {
    if let Ok(value) = price.cast::<PyFloat>() {
        return Ok(grid.ticks_of_f64(value.value(), field)?);
    }
    if let Ok(text) = price.cast::<PyString>() {
        return Ok(grid.ticks_of_text(text.to_str()?, field)?);
    }
    if price.cast::<PyBool>().is_ok() {
        return Err(super::error::InvalidPriceError::new_err(format!(
            "{}: a bool is not a price",
            field()
        )));
    }
    let value: f64 = price.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{}: price must be a number or decimal text",
            field()
        ))
    })?;
    Ok(grid.ticks_of_f64(value, field)?)
}

/// Reads a size given as exchange text or a number.
#[inline]
pub fn size_of(size: &Bound<'_, PyAny>, field: &dyn Fn() -> String) -> PyResult<f64> {
    if let Ok(value) = size.cast::<PyFloat>() {
        return Ok(check_size(value.value(), field)?);
    }
    if let Ok(text) = size.cast::<PyString>() {
        return Ok(size_of_text(text.to_str()?, field)?);
    }
    if size.cast::<PyBool>().is_ok() {
        return Err(super::error::InvalidSizeError::new_err(format!(
            "{}: a bool is not a size",
            field()
        )));
    }
    match size.extract::<f64>() {
        Ok(value) => Ok(check_size(value, field)?),
        // An int too large for a float is a bad size, not a type error.
        Err(_) if size.cast::<pyo3::types::PyInt>().is_ok() => {
            Err(super::error::InvalidSizeError::new_err(format!(
                "{}: size {size} is out of range",
                field()
            )))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "{}: size must be a number or decimal text",
            field()
        ))),
    }
}

/// Reads `[[price, size], ...]` (strings or numbers) into `out`; all or nothing.
pub fn read_levels(
    grid: &PriceGrid,
    levels: &Bound<'_, PyAny>,
    name: &str,
    out: &mut Vec<Level>,
) -> PyResult<()> {
    out.clear();
    for (index, item) in levels.try_iter()?.enumerate() {
        let item = item?;
        let field = || format!("{name}[{index}]");
        let (price, size) = if let Ok(list) = item.cast::<PyList>() {
            if list.len() != 2 {
                return Err(super::error::MalformedMessageError::new_err(format!(
                    "{}: a level is [price, size], got {} items",
                    field(),
                    list.len()
                )));
            }
            (list.get_item(0)?, list.get_item(1)?)
        } else if let Ok(tuple) = item.cast::<PyTuple>() {
            if tuple.len() != 2 {
                return Err(super::error::MalformedMessageError::new_err(format!(
                    "{}: a level is (price, size), got {} items",
                    field(),
                    tuple.len()
                )));
            }
            (tuple.get_item(0)?, tuple.get_item(1)?)
        } else {
            return Err(super::error::MalformedMessageError::new_err(format!(
                "{}: a level is [price, size]",
                field()
            )));
        };
        out.push((ticks_of(grid, &price, &field)?, size_of(&size, &field)?));
    }
    Ok(())
}

fn required<'py>(
    message: &Bound<'py, PyDict>,
    key: &str,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    message.get_item(key)?.ok_or_else(|| {
        super::error::MalformedMessageError::new_err(format!("{what}: field {key:?} is missing"))
    })
}

fn id_field(message: &Bound<'_, PyDict>, key: &str, what: &str) -> PyResult<u64> {
    required(message, key, what)?.extract::<u64>().map_err(|_| {
        super::error::MalformedMessageError::new_err(format!(
            "{what}: field {key:?} must be a non-negative integer"
        ))
    })
}

fn millis_field(message: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<i64>> {
    match message.get_item(key)? {
        Some(value) if !value.is_none() => Ok(Some(value.extract::<i64>()? * 1_000_000)),
        _ => Ok(None),
    }
}

/// An L2 order book of one instrument, with the venue's sequencing rules.
///
/// Prices are held as integer ticks; prices and sizes may be given as exchange text
/// (``"61800.30"``, converted exactly) or as numbers (checked against the tick grid).
///
/// Parameters
/// ----------
/// symbol : str
///     The instrument, e.g. ``"BTCUSDT"``.
/// tick_size : float | str
///     The price grid, e.g. ``0.1`` or ``"0.10"``.
/// sequencing : {"unsequenced", "binance", "bybit"}
///     Which venue's update-id rules to enforce. Unsequenced books are live at once.
/// watch_depths : sequence of int
///     Depths whose summed sizes :meth:`watch` reads (ascending).
/// strict : bool
///     Raise :class:`~marketmaker.errors.SequenceGapError` on a gap instead of returning
///     ``UpdateOutcome.GAP`` (the book is marked for resync either way).
///
/// Examples
/// --------
/// >>> from marketmaker import OrderBook, Side
/// >>> book = OrderBook("BTCUSDT", tick_size=0.1)
/// >>> book.apply_levels(bids=[["100.0", "1.5"]], asks=[["100.2", "2"]])
/// >>> book.mid, book.spread_ticks
/// (100.1, 2)
/// >>> book.set_level(Side.BUY, 100.1, 0.5)
/// >>> book.best_bid
/// 100.1
#[pyclass(name = "OrderBook", module = "marketmaker._core")]
pub struct PyOrderBook {
    pub(crate) book: OrderBook,
    watch: Watch,
    strict: bool,
    bids_scratch: Vec<Level>,
    asks_scratch: Vec<Level>,
    /// The layouts of the depth messages' levels read lately (see `apply_depth_text`).
    level_layouts: crate::venues::binance::LevelLayouts,
    /// The last watched values and the book's update count when they were read: while nothing
    /// else changed the book, one update only needs its own side read again.
    watched: Vec<f64>,
    watched_at: Option<u64>,
    /// The Python floats of `watched`, reused while their value is unchanged (most updates
    /// change one or two of the values; making floats is most of a per-update call's cost).
    watched_objects: Vec<Py<PyFloat>>,
}

impl PyOrderBook {
    pub(crate) fn create(book: OrderBook, watch_depths: &[usize], strict: bool) -> PyResult<Self> {
        if watch_depths.contains(&0) {
            return Err(PyValueError::new_err("watch_depths must be positive"));
        }
        Ok(Self {
            book,
            watch: Watch::new(watch_depths),
            strict,
            bids_scratch: Vec::with_capacity(64),
            asks_scratch: Vec::with_capacity(64),
            level_layouts: crate::venues::binance::LevelLayouts::default(),
            watched: Vec::new(),
            watched_at: None,
            watched_objects: Vec::new(),
        })
    }

    fn read_both(
        &mut self,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<Level>, Vec<Level>)> {
        let mut bid_levels = std::mem::take(&mut self.bids_scratch);
        let mut ask_levels = std::mem::take(&mut self.asks_scratch);
        let read = read_levels(self.book.grid(), bids, "bids", &mut bid_levels)
            .and_then(|()| read_levels(self.book.grid(), asks, "asks", &mut ask_levels));
        match read {
            Ok(()) => Ok((bid_levels, ask_levels)),
            Err(error) => {
                self.bids_scratch = bid_levels;
                self.asks_scratch = ask_levels;
                Err(error)
            }
        }
    }

    fn give_back(&mut self, bids: Vec<Level>, asks: Vec<Level>) {
        self.bids_scratch = bids;
        self.asks_scratch = asks;
    }

    /// A `depthUpdate`'s websocket text applied with the scratch buffers (no allocation).
    pub(crate) fn apply_depth_text(
        &mut self,
        text: &str,
        receive_time_ns: Option<i64>,
    ) -> crate::error::CoreResult<ApplyOutcome> {
        let mut bids = std::mem::take(&mut self.bids_scratch);
        let mut asks = std::mem::take(&mut self.asks_scratch);
        let result = crate::venues::binance::apply_depth_json(
            &mut self.book,
            text,
            receive_time_ns,
            &mut bids,
            &mut asks,
            &mut self.level_layouts,
        );
        self.give_back(bids, asks);
        result
    }

    pub(crate) fn outcome(&self, outcome: ApplyOutcome) -> PyResult<PyUpdateOutcome> {
        if outcome == ApplyOutcome::Gap && self.strict {
            return Err(SequenceGapError::new_err(format!(
                "{}: {}; the update was not applied and the book needs a new snapshot",
                self.book.symbol(),
                self.book.last_gap().unwrap_or("sequence gap")
            )));
        }
        Ok(outcome.into())
    }

    fn watch_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let mut values = [0.0_f64; 2 + 2 * 8];
        let width = self.watch.width();
        if width <= values.len() {
            self.watch.read(&self.book, &mut values[..width]);
            PyTuple::new(py, &values[..width])
        } else {
            let mut values = vec![0.0; width];
            self.watch.read(&self.book, &mut values);
            PyTuple::new(py, values)
        }
    }

    fn price(&self, ticks: i64) -> f64 {
        self.book.grid().price(ticks)
    }
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (symbol, tick_size, *, sequencing = "unsequenced", watch_depths = vec![5, 20], strict = false))]
    fn new(
        symbol: &str,
        tick_size: &Bound<'_, PyAny>,
        sequencing: &str,
        watch_depths: Vec<usize>,
        strict: bool,
    ) -> PyResult<Self> {
        crate::state::check_symbol(symbol)?;
        let book = OrderBook::new(symbol, grid_of(tick_size)?, sequencing_of(sequencing)?);
        Self::create(book, &watch_depths, strict)
    }

    // ---- identity and state ---------------------------------------------------------------

    /// The instrument.
    #[getter]
    fn symbol(&self) -> &str {
        self.book.symbol()
    }

    /// The tick size as a float.
    #[getter]
    fn tick_size(&self) -> f64 {
        self.book.grid().tick_size()
    }

    /// ``"binance"``, ``"bybit"`` or ``"unsequenced"``.
    #[getter]
    fn sequencing(&self) -> &'static str {
        sequencing_name(self.book.sequencing())
    }

    /// Whether the book can be trusted; see :class:`BookStatus`.
    #[getter]
    fn status(&self) -> PyBookStatus {
        self.book.status().into()
    }

    /// ``status == BookStatus.LIVE``.
    #[getter]
    fn is_live(&self) -> bool {
        self.book.status() == BookStatus::Live
    }

    /// Binance: the snapshot id or last applied ``u``; Bybit: the last ``u``.
    #[getter]
    fn last_update_id(&self) -> Option<u64> {
        self.book.last_update_id()
    }

    /// Why the book last needed a resync, if it did.
    #[getter]
    fn last_gap(&self) -> Option<&str> {
        self.book.last_gap()
    }

    /// Binance diffs waiting for a snapshot.
    #[getter]
    fn buffered_count(&self) -> usize {
        self.book.buffered()
    }

    /// Messages applied (snapshots, diffs, single-level updates).
    #[getter]
    fn update_count(&self) -> u64 {
        self.book.update_count()
    }

    /// Price levels set or removed.
    #[getter]
    fn level_update_count(&self) -> u64 {
        self.book.level_update_count()
    }

    /// Exchange time of the last applied message, in nanoseconds.
    #[getter]
    fn exchange_time_ns(&self) -> Option<i64> {
        self.book.exchange_time_ns()
    }

    /// Receive time of the last applied message, in nanoseconds.
    #[getter]
    fn receive_time_ns(&self) -> Option<i64> {
        self.book.receive_time_ns()
    }

    /// The depths :meth:`watch` reads, ascending.
    #[getter]
    fn watch_depths(&self) -> Vec<usize> {
        self.watch.depths().to_vec()
    }

    /// Marks the book untrusted (e.g. after a reconnect) until a new snapshot.
    fn invalidate(&mut self, reason: &str) {
        self.book.invalidate(reason);
    }

    // ---- updates --------------------------------------------------------------------------

    /// Sets one level's absolute size (0 removes; removing an absent level is fine), with no
    /// sequence check.
    ///
    /// Raises
    /// ------
    /// InvalidPriceError, OffTickError, InvalidSizeError
    ///     The book is left unchanged.
    #[inline]
    fn set_level(
        &mut self,
        side: &Bound<'_, PyAny>,
        price: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let side = side_of(side)?;
        let field = || "level".to_owned();
        let ticks = ticks_of(self.book.grid(), price, &field)?;
        let size = size_of(size, &field)?;
        self.book.set_level(side, ticks, size);
        Ok(())
    }

    /// :meth:`set_level` then :meth:`watch`, in one call.
    #[inline]
    fn set_level_and_watch<'py>(
        &mut self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
        price: &Bound<'py, PyAny>,
        size: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let side = side_of(side)?;
        let field = || "level".to_owned();
        let ticks = ticks_of(self.book.grid(), price, &field)?;
        let size = size_of(size, &field)?;
        let current = self.watched_at == Some(self.book.update_count())
            && self.watched_objects.len() == self.watch.width();
        self.book.set_level(side, ticks, size);
        if current {
            let mut values = [0.0_f64; 2 + 2 * 8];
            let width = self.watched.len();
            if width <= values.len() {
                values[..width].copy_from_slice(&self.watched);
                self.watch.read_side(&self.book, side, &mut values[..width]);
                for (slot, (old, new)) in self.watched.iter_mut().zip(&values[..width]).enumerate()
                {
                    // Bitwise, so that NaN (an empty side) stays NaN without a new object.
                    if old.to_bits() != new.to_bits() {
                        *old = *new;
                        self.watched_objects[slot] = PyFloat::new(py, *new).unbind();
                    }
                }
            } else {
                self.watch.read_side(&self.book, side, &mut self.watched);
                self.watched_objects = self
                    .watched
                    .iter()
                    .map(|v| PyFloat::new(py, *v).unbind())
                    .collect();
            }
        } else {
            self.watched.resize(self.watch.width(), 0.0);
            self.watch.read(&self.book, &mut self.watched);
            self.watched_objects = self
                .watched
                .iter()
                .map(|v| PyFloat::new(py, *v).unbind())
                .collect();
        }
        self.watched_at = Some(self.book.update_count());
        PyTuple::new(
            py,
            self.watched_objects.iter().map(|object| object.bind(py)),
        )
    }

    /// ``(best_bid, best_ask, bid_size[d0], ask_size[d0], bid_size[d1], ...)`` for the
    /// watched depths; a missing best price is NaN.
    fn watch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.watch_tuple(py)
    }

    /// Applies levels with no sequence check. All levels are validated before any is applied.
    #[pyo3(signature = (bids = None, asks = None, *, exchange_time_ns = None, receive_time_ns = None))]
    fn apply_levels(
        &mut self,
        py: Python<'_>,
        bids: Option<&Bound<'_, PyAny>>,
        asks: Option<&Bound<'_, PyAny>>,
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<()> {
        let empty = PyList::empty(py);
        let bids = bids.unwrap_or(empty.as_any());
        let asks = asks.unwrap_or(empty.as_any());
        let (bid_levels, ask_levels) = self.read_both(bids, asks)?;
        self.book
            .apply_levels(&bid_levels, &ask_levels, exchange_time_ns, receive_time_ns);
        self.give_back(bid_levels, ask_levels);
        Ok(())
    }

    /// Replaces the whole book. For Binance books ``last_update_id`` is the REST
    /// ``lastUpdateId`` and buffered diffs are bridged onto it.
    #[pyo3(signature = (bids, asks, *, last_update_id = None, exchange_time_ns = None, receive_time_ns = None))]
    fn apply_snapshot(
        &mut self,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        last_update_id: Option<u64>,
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PySnapshotApplied> {
        let (bid_levels, ask_levels) = self.read_both(bids, asks)?;
        let result = self.book.apply_snapshot(
            last_update_id,
            &bid_levels,
            &ask_levels,
            exchange_time_ns,
            receive_time_ns,
        );
        self.give_back(bid_levels, ask_levels);
        let outcome = result?;
        Ok(PySnapshotApplied {
            replayed: outcome.replayed,
            dropped: outcome.dropped,
            status: outcome.status.into(),
        })
    }

    /// Applies a Binance USDⓈ-M ``depthUpdate`` given by its fields (``U``, ``u``, ``pu``,
    /// ``b``, ``a``).
    #[pyo3(signature = (first_update_id, last_update_id, prev_last_update_id, bids, asks, *, exchange_time_ns = None, receive_time_ns = None))]
    #[allow(clippy::too_many_arguments)]
    fn apply_binance_diff(
        &mut self,
        first_update_id: u64,
        last_update_id: u64,
        prev_last_update_id: u64,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PyUpdateOutcome> {
        let (bid_levels, ask_levels) = self.read_both(bids, asks)?;
        let result = self.book.apply_binance_diff(&BinanceDiff {
            first_update_id,
            last_update_id,
            prev_last_update_id,
            bids: &bid_levels,
            asks: &ask_levels,
            exchange_time_ns,
            receive_time_ns,
        });
        self.give_back(bid_levels, ask_levels);
        self.outcome(result?)
    }

    /// Applies a parsed Binance ``depthUpdate`` event (or its combined-stream envelope).
    #[pyo3(signature = (event, *, receive_time_ns = None))]
    fn apply_binance_event(
        &mut self,
        event: &Bound<'_, PyDict>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PyUpdateOutcome> {
        let event = match event.get_item("data")? {
            Some(data) => data.cast_into::<PyDict>().map_err(|_| {
                super::error::MalformedMessageError::new_err(
                    "depthUpdate: field \"data\" must be an object",
                )
            })?,
            None => event.clone(),
        };
        let what = "depthUpdate";
        let first = id_field(&event, "U", what)?;
        let last = id_field(&event, "u", what)?;
        let prev = id_field(&event, "pu", what)?;
        let exchange_time_ns = millis_field(&event, "E")?;
        self.apply_binance_diff(
            first,
            last,
            prev,
            &required(&event, "b", what)?,
            &required(&event, "a", what)?,
            exchange_time_ns,
            receive_time_ns,
        )
    }

    /// Applies a Binance ``depthUpdate`` given as its raw websocket text (``str`` or ``bytes``;
    /// bare or in the combined-stream envelope), parsed in Rust: the live loop's fast path.
    #[pyo3(signature = (message, *, receive_time_ns = None))]
    fn apply_binance_json(
        &mut self,
        message: &Bound<'_, PyAny>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PyUpdateOutcome> {
        let string = message.cast::<PyString>().ok();
        let bytes = message.cast::<pyo3::types::PyBytes>().ok();
        let text: &str = match (&string, &bytes) {
            (Some(string), _) => string.to_str()?,
            (None, Some(bytes)) => std::str::from_utf8(bytes.as_bytes()).map_err(|_| {
                super::error::MalformedMessageError::new_err(
                    "depthUpdate: the message is not UTF-8",
                )
            })?,
            _ => return Err(PyTypeError::new_err("message must be str or bytes")),
        };
        let outcome = self.apply_depth_text(text, receive_time_ns)?;
        self.outcome(outcome)
    }

    /// Applies a parsed Binance REST depth snapshot (``lastUpdateId``, ``bids``, ``asks``).
    #[pyo3(signature = (snapshot, *, receive_time_ns = None))]
    fn apply_binance_snapshot(
        &mut self,
        snapshot: &Bound<'_, PyDict>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PySnapshotApplied> {
        let what = "depth snapshot";
        let last = id_field(snapshot, "lastUpdateId", what)?;
        let exchange_time_ns = millis_field(snapshot, "E")?;
        self.apply_snapshot(
            &required(snapshot, "bids", what)?,
            &required(snapshot, "asks", what)?,
            Some(last),
            exchange_time_ns,
            receive_time_ns,
        )
    }

    /// Applies a Bybit v5 ``orderbook`` message given by its fields.
    #[pyo3(signature = (is_snapshot, update_id, bids, asks, *, exchange_time_ns = None, receive_time_ns = None))]
    fn apply_bybit(
        &mut self,
        is_snapshot: bool,
        update_id: u64,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        exchange_time_ns: Option<i64>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PyUpdateOutcome> {
        let (bid_levels, ask_levels) = self.read_both(bids, asks)?;
        let result = self.book.apply_bybit(
            is_snapshot,
            update_id,
            &bid_levels,
            &ask_levels,
            exchange_time_ns,
            receive_time_ns,
        );
        self.give_back(bid_levels, ask_levels);
        self.outcome(result?)
    }

    /// Applies a parsed Bybit v5 ``orderbook.{depth}.{symbol}`` message
    /// (``type``, ``ts``, ``data`` with ``b``, ``a``, ``u``).
    #[pyo3(signature = (message, *, receive_time_ns = None))]
    fn apply_bybit_message(
        &mut self,
        message: &Bound<'_, PyDict>,
        receive_time_ns: Option<i64>,
    ) -> PyResult<PyUpdateOutcome> {
        let what = "bybit orderbook message";
        let kind: String = required(message, "type", what)?.extract()?;
        let is_snapshot = match kind.as_str() {
            "snapshot" => true,
            "delta" => false,
            other => {
                return Err(super::error::MalformedMessageError::new_err(format!(
                    "{what}: type {other:?} is not 'snapshot' or 'delta'"
                )))
            }
        };
        let data = required(message, "data", what)?
            .cast_into::<PyDict>()
            .map_err(|_| {
                super::error::MalformedMessageError::new_err(format!(
                    "{what}: field \"data\" must be an object"
                ))
            })?;
        let update_id = id_field(&data, "u", what)?;
        let exchange_time_ns = millis_field(message, "ts")?;
        self.apply_bybit(
            is_snapshot,
            update_id,
            &required(&data, "b", what)?,
            &required(&data, "a", what)?,
            exchange_time_ns,
            receive_time_ns,
        )
    }

    /// Applies ``is_bid[i], prices[i], sizes[i]`` for every ``i`` in one call (the GIL is
    /// released), with no sequence check, and returns the :meth:`watch` values after each
    /// update as a ``(len, 2 + 2 × len(watch_depths))`` float64 array. ``prices`` may be
    /// float64 prices or int64 ticks. The whole batch is validated first: if any entry is
    /// invalid, nothing is applied.
    fn apply_levels_batch<'py>(
        &mut self,
        py: Python<'py>,
        is_bid: PyReadonlyArray1<'py, bool>,
        prices: &Bound<'py, PyAny>,
        sizes: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (mut is_bid_copy, mut sizes_copy, mut float_copy, mut tick_copy) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let is_bid = super::slice_of(&is_bid, &mut is_bid_copy);
        let sizes = super::slice_of(&sizes, &mut sizes_copy);
        let float_prices = prices.extract::<PyReadonlyArray1<'py, f64>>();
        let tick_prices = prices.extract::<PyReadonlyArray1<'py, i64>>();
        let count = is_bid.len();
        let width = self.watch.width();
        // numpy allocates the result (large allocations get huge pages there) and Rust fills it.
        let result = PyArray2::<f64>::zeros(py, [count, width], false);
        let mut writable = result.readwrite();
        let out = writable.as_slice_mut()?;
        let book = &mut self.book;
        let watch = &self.watch;
        match (&float_prices, &tick_prices) {
            (Ok(float_prices), _) => {
                let float_prices = super::slice_of(float_prices, &mut float_copy);
                check_lengths(count, float_prices.len(), sizes.len())?;
                py.detach(|| {
                    batch::apply_levels(
                        book,
                        is_bid,
                        BatchPrices::Prices(float_prices),
                        sizes,
                        watch,
                        out,
                    )
                })?;
            }
            (_, Ok(tick_prices)) => {
                let tick_prices = super::slice_of(tick_prices, &mut tick_copy);
                check_lengths(count, tick_prices.len(), sizes.len())?;
                py.detach(|| {
                    batch::apply_levels(
                        book,
                        is_bid,
                        BatchPrices::Ticks(tick_prices),
                        sizes,
                        watch,
                        out,
                    )
                })?;
            }
            _ => {
                return Err(PyTypeError::new_err(
                    "prices must be a 1-d float64 (prices) or int64 (ticks) array",
                ))
            }
        }
        drop(writable);
        Ok(result)
    }

    // ---- reads ----------------------------------------------------------------------------

    /// Best bid price, or None when there are no bids.
    #[getter]
    fn best_bid(&self) -> Option<f64> {
        self.book.best_bid_price()
    }

    /// Best ask price, or None when there are no asks.
    #[getter]
    fn best_ask(&self) -> Option<f64> {
        self.book.best_ask_price()
    }

    /// Size at the best bid (0 when empty).
    #[getter]
    fn best_bid_size(&self) -> f64 {
        self.book.best_bid().map_or(0.0, |(_, size)| size)
    }

    /// Size at the best ask (0 when empty).
    #[getter]
    fn best_ask_size(&self) -> f64 {
        self.book.best_ask().map_or(0.0, |(_, size)| size)
    }

    /// Mid price, or None when a side is empty.
    #[getter]
    fn mid(&self) -> Option<f64> {
        self.book.mid()
    }

    /// Best ask minus best bid, or None when a side is empty.
    #[getter]
    fn spread(&self) -> Option<f64> {
        self.book.spread()
    }

    /// Spread in ticks, or None when a side is empty.
    #[getter]
    fn spread_ticks(&self) -> Option<i64> {
        self.book.spread_ticks()
    }

    /// ``(bid × ask_size + ask × bid_size) / (bid_size + ask_size)``, or None.
    #[getter]
    fn microprice(&self) -> Option<f64> {
        self.book.microprice()
    }

    /// Whether the best bid is at or above the best ask.
    #[getter]
    fn is_crossed(&self) -> bool {
        self.book.is_crossed()
    }

    /// Number of levels on a side.
    fn level_count(&self, side: &Bound<'_, PyAny>) -> PyResult<usize> {
        Ok(self.book.level_count(side_of(side)?))
    }

    /// Summed size of the best ``depth`` levels of a side.
    fn top_size(&self, side: &Bound<'_, PyAny>, depth: usize) -> PyResult<f64> {
        Ok(self.book.top_size(side_of(side)?, depth))
    }

    /// Summed size of a side's levels within ``bps`` basis points of the mid (0 when a side
    /// is empty).
    fn size_within_bps(&self, side: &Bound<'_, PyAny>, bps: f64) -> PyResult<f64> {
        if !(bps.is_finite() && bps >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "bps must be finite and >= 0, got {bps}"
            )));
        }
        Ok(self.book.size_within_bps(side_of(side)?, bps))
    }

    /// Size resting at a price (0 when there is no level).
    fn size_at(&self, side: &Bound<'_, PyAny>, price: &Bound<'_, PyAny>) -> PyResult<f64> {
        let ticks = ticks_of(self.book.grid(), price, &|| "price".to_owned())?;
        Ok(self.book.size_at(side_of(side)?, ticks))
    }

    /// A side's levels from the best outward as ``(price, size)``, at most ``depth`` of them.
    #[pyo3(signature = (side, depth = None))]
    fn levels(&self, side: &Bound<'_, PyAny>, depth: Option<usize>) -> PyResult<Vec<(f64, f64)>> {
        let side = side_of(side)?;
        Ok(self
            .book
            .levels(side)
            .take(depth.unwrap_or(usize::MAX))
            .map(|(ticks, size)| (self.price(ticks), size))
            .collect())
    }

    /// Bid levels from the best down, as ``(price, size)``.
    #[pyo3(signature = (depth = None))]
    fn bids(&self, depth: Option<usize>) -> Vec<(f64, f64)> {
        self.book
            .levels(Side::Buy)
            .take(depth.unwrap_or(usize::MAX))
            .map(|(t, s)| (self.price(t), s))
            .collect()
    }

    /// Ask levels from the best up, as ``(price, size)``.
    #[pyo3(signature = (depth = None))]
    fn asks(&self, depth: Option<usize>) -> Vec<(f64, f64)> {
        self.book
            .levels(Side::Sell)
            .take(depth.unwrap_or(usize::MAX))
            .map(|(t, s)| (self.price(t), s))
            .collect()
    }

    /// The tick count of a price on this book's grid.
    fn price_to_ticks(&self, price: &Bound<'_, PyAny>) -> PyResult<i64> {
        ticks_of(self.book.grid(), price, &|| "price".to_owned())
    }

    /// The price of a tick count on this book's grid.
    fn ticks_to_price(&self, ticks: i64) -> f64 {
        self.price(ticks)
    }

    fn __repr__(&self) -> String {
        let show = |price: Option<f64>| price.map_or_else(|| "None".to_owned(), |p| format!("{p}"));
        format!(
            "OrderBook({}, tick_size={}, sequencing={}, status=BookStatus.{}, best_bid={}, best_ask={}, levels=({}, {}))",
            super::quoted(self.book.symbol()),
            super::quoted(&self.book.grid().tick_size_text()),
            super::quoted(sequencing_name(self.book.sequencing())),
            status_name(self.book.status().into()),
            show(self.book.best_bid_price()),
            show(self.book.best_ask_price()),
            self.book.level_count(Side::Buy),
            self.book.level_count(Side::Sell),
        )
    }
}

fn check_lengths(sides: usize, prices: usize, sizes: usize) -> PyResult<()> {
    if sides == prices && prices == sizes {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "is_bid, prices and sizes must have the same length, got {sides}, {prices}, {sizes}"
        )))
    }
}

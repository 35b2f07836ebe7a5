"""TradeTape, Account, SharedState with credentials, sides, errors and the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import marketmaker
import pytest
from marketmaker import (
    Account,
    ApiCredentials,
    BookStatus,
    FillOutcome,
    OrderBook,
    OrderStatus,
    SharedState,
    Side,
    TradeTape,
    UpdateOutcome,
    errors,
)
from marketmaker.credentials import key_id_of, resolve_secret

MS = 1_000_000  # nanoseconds


# ---- TradeTape ------------------------------------------------------------------------------


def test_trade_windows_by_count_and_time() -> None:
    tape = TradeTape(capacity=100)
    tape.push(100.0, 1.0, Side.BUY, exchange_time_ns=0 * MS, trade_id=1)
    tape.push(101.0, 3.0, "sell", exchange_time_ns=500 * MS, trade_id=2)
    tape.push(102.0, 2.0, True, exchange_time_ns=1_000 * MS, trade_id=3)

    everything = tape.window(trades=10)
    assert everything.count == 3
    assert everything.buy_volume == 3.0  # 1 + 2
    assert everything.sell_volume == 3.0
    assert everything.volume == 6.0
    assert everything.notional == 100.0 + 303.0 + 204.0
    assert everything.vwap == pytest.approx(607.0 / 6.0, rel=1e-15)
    assert everything.imbalance == 0.0
    assert (everything.first_time_ns, everything.last_time_ns) == (0, 1_000 * MS)

    last_two = tape.window(trades=2)
    assert (last_two.count, last_two.buy_volume, last_two.sell_volume) == (2, 2.0, 3.0)
    assert last_two.imbalance == pytest.approx((2.0 - 3.0) / 5.0)
    assert last_two.first_time_ns == 500 * MS

    # (now - span, now] with now = the newest trade's time: the left edge is excluded.
    assert tape.window(ms=400).count == 1
    assert tape.window(ms=500).count == 1
    assert tape.window(ms=501).count == 2
    assert tape.window(ms=1_000).count == 2
    assert tape.window(ms=1_000.5).count == 3
    assert tape.window(ms=0).count == 0
    # An explicit `now` ignores later trades.
    window = tape.window(ms=600, now_ns=700 * MS)
    assert (window.count, window.sell_volume, window.vwap) == (1, 3.0, 101.0)
    assert tape.window(ms=10, now_ns=2_000 * MS).count == 0


def test_trade_tape_ring_keeps_the_newest() -> None:
    tape = TradeTape(capacity=3)
    assert len(tape) == 0 and tape.last is None
    empty = tape.window(trades=5)
    assert (empty.count, empty.vwap, empty.volume, empty.imbalance) == (0, None, 0.0, 0.0)
    assert tape.window(ms=1_000).count == 0
    for i in range(5):
        tape.push(100.0 + i, 1.0 + i, Side.SELL if i % 2 else Side.BUY, exchange_time_ns=i * MS, trade_id=i)
    assert len(tape) == 3
    assert tape.capacity == 3
    assert tape.total_count == 5
    assert [t.price for t in tape.trades()] == [102.0, 103.0, 104.0]
    assert [t.trade_id for t in tape.trades()] == [2, 3, 4]
    assert tape.last is not None and tape.last.price == 104.0 and tape.last.aggressor == Side.BUY
    window = tape.window(trades=100)
    assert window.count == 3
    assert window.buy_volume == 3.0 + 5.0
    assert window.sell_volume == 4.0
    assert tape.window(ms=10**6).count == 3


def test_trade_tape_binance_events_and_bad_input() -> None:
    tape = TradeTape(capacity=10)
    # m = true: the buyer was the maker, so the seller was the aggressor.
    tape.push_binance_trade({"e": "trade", "T": 5, "t": 77, "p": "61800.30", "q": "0.006", "m": True})
    tape.push_binance_trade(
        {"stream": "x@aggTrade", "data": {"e": "aggTrade", "T": 6, "a": 9, "p": "61800.4", "q": "1", "m": False}}
    )
    first, second = tape.trades()
    assert (first.price, first.size, first.aggressor, first.exchange_time_ns, first.trade_id) == (
        61800.3,
        0.006,
        Side.SELL,
        5 * MS,
        77,
    )
    assert (second.aggressor, second.trade_id) == (Side.BUY, 9)
    with pytest.raises(errors.MalformedMessageError):
        tape.push_binance_trade({"T": 5, "p": "1", "q": "1"})
    with pytest.raises(errors.MalformedMessageError):
        tape.push_binance_trade({"T": 5, "p": "x", "q": "1", "m": True})
    with pytest.raises(errors.InvalidPriceError):
        tape.push(-1.0, 1.0, Side.BUY, exchange_time_ns=0)
    with pytest.raises(errors.InvalidPriceError):
        tape.push(float("nan"), 1.0, Side.BUY, exchange_time_ns=0)
    with pytest.raises(errors.InvalidSizeError):
        tape.push(1.0, 0.0, Side.BUY, exchange_time_ns=0)
    with pytest.raises(errors.InvalidSizeError):
        tape.push_binance_trade({"T": 5, "p": "1", "q": "-1", "m": True})
    assert len(tape) == 2 and tape.total_count == 2
    with pytest.raises(ValueError):
        tape.window()
    with pytest.raises(ValueError):
        tape.window(trades=1, ms=1)
    with pytest.raises(ValueError):
        tape.window(ms=-1)
    with pytest.raises(ValueError):
        TradeTape(capacity=0)


# ---- Account --------------------------------------------------------------------------------


def test_order_lifecycle_and_partial_fills() -> None:
    account = Account(balance=1_000.0)
    account.add_order("mm-1", Side.BUY, price=100.0, size=3.0)
    order = account.order("mm-1")
    assert order is not None
    assert (order.status, order.filled, order.remaining, order.venue_order_id) == (
        OrderStatus.PENDING_NEW,
        0.0,
        3.0,
        None,
    )
    assert account.acknowledge_order("mm-1", 123456789) is True
    assert account.acknowledge_order("nobody", "1") is False
    order = account.order("mm-1")
    assert order is not None and order.status == OrderStatus.NEW and order.venue_order_id == "123456789"

    assert account.apply_fill("t1", Side.BUY, 100.0, 1.0, client_order_id="mm-1") == FillOutcome.APPLIED
    order = account.order("mm-1")
    assert order is not None
    assert (order.status, order.filled, order.remaining) == (OrderStatus.PARTIALLY_FILLED, 1.0, 2.0)
    assert [o.client_order_id for o in account.open_orders] == ["mm-1"]

    assert account.apply_fill("t2", Side.BUY, 100.0, 2.0, client_order_id="mm-1") == FillOutcome.APPLIED
    order = account.order("mm-1")
    assert order is not None and order.status == OrderStatus.FILLED and order.remaining == 0.0
    assert account.open_orders == []
    assert account.position == 3.0

    # Closing: cancel, reject, expire.
    account.add_order("mm-2", "sell", price=110.0, size=1.0)
    account.add_order("mm-3", "ask", price=111.0, size=1.0)
    account.add_order("mm-4", Side.SELL, price=112.0, size=1.0)
    closed = account.close_order("mm-2")
    assert closed is not None and closed.status == OrderStatus.CANCELED
    assert account.close_order("mm-3", "rejected").status == OrderStatus.REJECTED  # type: ignore[union-attr]
    assert account.close_order("mm-4", OrderStatus.EXPIRED).status == OrderStatus.EXPIRED  # type: ignore[union-attr]
    assert account.close_order("mm-2") is None  # no longer open
    assert account.order("mm-3").status == OrderStatus.REJECTED  # type: ignore[union-attr]
    account.add_order("mm-5", Side.SELL, price=112.0, size=1.0)
    with pytest.raises(ValueError):
        account.close_order("mm-5", "NEW")
    assert account.order("mm-5").status == OrderStatus.PENDING_NEW  # type: ignore[union-attr]


def test_invalid_orders_and_fills_change_nothing() -> None:
    account = Account(balance=50.0)
    account.add_order("a", Side.BUY, price=10.0, size=1.0)
    for bad in [
        lambda: account.add_order("a", Side.BUY, price=10.0, size=1.0),  # already open
        lambda: account.add_order("b", Side.BUY, price=10.0, size=0.0),
        lambda: account.add_order("b", Side.BUY, price=float("nan"), size=1.0),
        lambda: account.add_order("b", Side.BUY, price=-1.0, size=1.0),
        lambda: account.apply_fill("f", Side.BUY, 10.0, -1.0),
        lambda: account.apply_fill("f", Side.BUY, 0.0, 1.0),
        lambda: account.apply_fill("f", Side.BUY, 10.0, 1.0, fee=float("inf")),
    ]:
        with pytest.raises(errors.InvalidOrderError):
            bad()
    assert (account.position, account.fill_count, account.balance, account.fees_paid) == (0.0, 0, 50.0, 0.0)
    assert [o.client_order_id for o in account.open_orders] == ["a"]
    # A rejected fill's trade id was not consumed: the real fill with that id applies.
    assert account.apply_fill("f", Side.BUY, 10.0, 1.0, client_order_id="a") == FillOutcome.APPLIED
    with pytest.raises(ValueError):
        Account(balance=float("nan"))


def test_fills_are_idempotent_by_trade_id() -> None:
    account = Account(balance=0.0)
    account.add_order("b1", Side.BUY, price=50.0, size=2.0)
    assert account.apply_fill(7001, Side.BUY, 50.0, 1.0, client_order_id="b1", fee=0.01) == FillOutcome.APPLIED
    state = (
        account.position,
        account.entry_price,
        account.balance,
        account.fees_paid,
        account.volume,
        account.fill_count,
    )
    order = account.order("b1")
    # The same execution reported again (a reconnect replays it; int and text ids are one id).
    assert account.apply_fill(7001, Side.BUY, 50.0, 1.0, client_order_id="b1", fee=0.01) == FillOutcome.DUPLICATE
    assert account.apply_fill("7001", Side.BUY, 50.0, 1.0, client_order_id="b1", fee=0.01) == FillOutcome.DUPLICATE
    assert (
        account.position,
        account.entry_price,
        account.balance,
        account.fees_paid,
        account.volume,
        account.fill_count,
    ) == state
    assert account.order("b1") == order
    assert account.unmatched_fills == []


def test_unknown_order_fill_is_recorded_and_moves_the_position() -> None:
    account = Account(balance=0.0)
    outcome = account.apply_fill(
        "x1", "sell", 50.0, 1.5, client_order_id="ghost", fee=0.02, is_maker=False, exchange_time_ns=9
    )
    assert outcome == FillOutcome.UNMATCHED
    assert account.apply_fill("x2", Side.SELL, 50.0, 0.5) == FillOutcome.UNMATCHED  # no order id at all
    assert account.position == -2.0
    assert account.entry_price == 50.0
    assert account.fill_count == 2
    unmatched = account.unmatched_fills
    assert [f.trade_id for f in unmatched] == ["x1", "x2"]
    first = unmatched[0]
    assert (
        first.client_order_id,
        first.side,
        first.price,
        first.size,
        first.fee,
        first.is_maker,
        first.exchange_time_ns,
    ) == ("ghost", Side.SELL, 50.0, 1.5, 0.02, False, 9)
    assert unmatched[1].client_order_id is None
    # Replayed, it is a duplicate and is not recorded twice.
    assert account.apply_fill("x1", Side.SELL, 50.0, 1.5, client_order_id="ghost") == FillOutcome.DUPLICATE
    assert len(account.unmatched_fills) == 2 and account.position == -2.0


def test_fill_racing_a_cancel_still_finds_its_order() -> None:
    account = Account()
    account.add_order("c1", Side.BUY, price=99.0, size=2.0)
    account.add_order("c2", Side.BUY, price=98.0, size=1.0)
    account.acknowledge_order("c1", "v1")
    account.close_order("c1")
    account.close_order("c2", "CANCELLED")
    # The venue filled part of c1 before the cancel took effect.
    assert account.apply_fill("r1", Side.BUY, 99.0, 1.0, client_order_id="c1") == FillOutcome.APPLIED
    order = account.order("c1")
    assert order is not None
    assert (order.status, order.filled, order.remaining) == (OrderStatus.CANCELED, 1.0, 1.0)
    # ... and all of c2.
    assert account.apply_fill("r2", Side.BUY, 98.0, 1.0, client_order_id="c2") == FillOutcome.APPLIED
    assert account.order("c2").status == OrderStatus.FILLED  # type: ignore[union-attr]
    assert account.unmatched_fills == []
    assert account.open_orders == []
    assert account.position == 2.0
    assert account.entry_price == pytest.approx((99.0 + 98.0) / 2, abs=1e-12)


def test_position_pnl_and_fees_balance_to_the_cent() -> None:
    """A hand-worked session (fees: 2 bp of notional; the last one a maker rebate).

    ===  =====================  ==========  =========  =====  ==============  =======
    #    fill                   position    entry      fee    realized        balance
    ===  =====================  ==========  =========  =====  ==============  =======
    0    start                  0           0          0      0               10000
    t1   BUY 1 @ 100 (b1)       +1          100        .0200  0               9999.98
    t2   BUY 3 @ 102 (b2)       +4          101.5 (a)  .0612  0               9999.9188
    t3   SELL 6 @ 103 (s1)      -2          103 (b)    .1236  +6 (c)          10005.7952
    t4   BUY 1 @ 101 (ghost)    -1          103        .0202  +2 (d) = 8      10007.775
    t4   again                  unchanged (duplicate)
    t5   BUY 1 @ 104 (b3)       0           0          -.0104 -1 (e) = 7      10006.7854
    ===  =====================  ==========  =========  =====  ==============  =======

    (a) (1 × 100 + 3 × 102) / 4 = 406 / 4 = 101.5
    (b) selling 6 closes the 4 long and opens 2 short at the fill price
    (c) 4 × (103 − 101.5) = 6
    (d) buying 1 back from a short at 103: 1 × (103 − 101) = 2
    (e) 1 × (103 − 104) = −1
    fees = .02 + .0612 + .1236 + .0202 − .0104 = .2146
    balance = 10000 + 7 − .2146 = 10006.7854 → 10006.79 to the cent
    """
    account = Account(balance=10_000.0)
    account.add_order("b1", Side.BUY, price=100.0, size=4.0)
    account.add_order("b2", Side.BUY, price=102.0, size=3.0)
    account.add_order("s1", Side.SELL, price=103.0, size=6.0)
    account.add_order("b3", Side.BUY, price=104.0, size=1.0)

    assert account.apply_fill("t1", Side.BUY, 100.0, 1.0, client_order_id="b1", fee=0.02) == FillOutcome.APPLIED
    assert (account.position, account.entry_price) == (1.0, 100.0)
    assert account.balance == pytest.approx(9_999.98, abs=1e-9)

    assert account.apply_fill("t2", Side.BUY, 102.0, 3.0, client_order_id="b2", fee=0.0612) == FillOutcome.APPLIED
    assert account.position == 4.0
    assert account.entry_price == pytest.approx(101.5, abs=1e-12)
    assert account.realized_pnl == 0.0
    assert account.unrealized_pnl(103.0) == pytest.approx(6.0, abs=1e-9)

    assert account.apply_fill("t3", Side.SELL, 103.0, 6.0, client_order_id="s1", fee=0.1236) == FillOutcome.APPLIED
    assert account.position == -2.0
    assert account.entry_price == 103.0
    assert account.realized_pnl == pytest.approx(6.0, abs=1e-9)
    assert account.unrealized_pnl(100.0) == pytest.approx(6.0, abs=1e-9)  # (100 − 103) × −2
    assert account.balance == pytest.approx(10_005.7952, abs=1e-9)

    assert account.apply_fill("t4", Side.BUY, 101.0, 1.0, client_order_id="ghost", fee=0.0202) == FillOutcome.UNMATCHED
    assert account.position == -1.0
    assert account.entry_price == 103.0
    assert account.realized_pnl == pytest.approx(8.0, abs=1e-9)
    assert account.apply_fill("t4", Side.BUY, 101.0, 1.0, client_order_id="ghost", fee=0.0202) == FillOutcome.DUPLICATE
    assert account.position == -1.0
    assert account.balance == pytest.approx(10_007.775, abs=1e-9)

    assert account.apply_fill("t5", Side.BUY, 104.0, 1.0, client_order_id="b3", fee=-0.0104) == FillOutcome.APPLIED
    assert account.position == 0.0
    assert account.entry_price == 0.0
    assert account.realized_pnl == pytest.approx(7.0, abs=1e-9)
    assert account.fees_paid == pytest.approx(0.2146, abs=1e-12)
    assert account.volume == 12.0  # 1 + 3 + 6 + 1 + 1
    assert account.fill_count == 5
    assert account.balance == pytest.approx(10_006.7854, abs=1e-9)
    assert round(account.balance, 2) == 10_006.79
    # Balance = start + realized − fees, to the cent.
    assert round(10_000.0 + account.realized_pnl - account.fees_paid, 2) == round(account.balance, 2)
    assert account.unrealized_pnl(120.0) == 0.0
    b1 = account.order("b1")
    assert b1 is not None and b1.status == OrderStatus.PARTIALLY_FILLED and b1.remaining == 3.0
    assert [o.client_order_id for o in account.open_orders] == ["b1"]


def test_tiny_decimal_residue_is_flat_and_start_up_position() -> None:
    account = Account()
    for trade_id, size in enumerate((0.1, 0.2)):
        account.apply_fill(trade_id, Side.BUY, 10.0, size)
    account.apply_fill("close", Side.SELL, 11.0, 0.3)
    assert account.position == 0.0  # 0.1 + 0.2 − 0.3 is 5.6e-17 in floats
    assert account.entry_price == 0.0
    assert account.realized_pnl == pytest.approx(0.3, abs=1e-12)
    account.set_position(-2.5, 200.0)
    assert (account.position, account.entry_price) == (-2.5, 200.0)
    account.set_position(0.0, 200.0)
    assert (account.position, account.entry_price) == (0.0, 0.0)
    with pytest.raises(ValueError):
        account.set_position(1.0, -5.0)
    account.balance = 123.0
    assert account.balance == 123.0
    with pytest.raises(ValueError):
        account.balance = float("inf")


# ---- SharedState ----------------------------------------------------------------------------


def test_add_symbols_with_a_mapping_or_one_tick_size() -> None:
    state = SharedState("binance")
    state.add_symbols(["BTCUSDT", "ETHUSDT"], {"BTCUSDT": "0.1", "ETHUSDT": 0.01})
    state.add_symbols(["SOLUSDT", "XRPUSDT"], "0.0001")
    state.add_symbols(["DOGEUSDT"], 0.00001)
    assert state.symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]
    assert len(state) == 5
    assert "ETHUSDT" in state and "ADAUSDT" not in state
    ticks = {symbol: state.book(symbol).tick_size for symbol in state.symbols}
    assert ticks == {"BTCUSDT": 0.1, "ETHUSDT": 0.01, "SOLUSDT": 0.0001, "XRPUSDT": 0.0001, "DOGEUSDT": 0.00001}
    assert state.book("BTCUSDT").symbol == "BTCUSDT"
    assert state.book("BTCUSDT").price_to_ticks("61800.30") == 618_003
    state.add_symbol("BNBUSDT", "0.01", balance=250.0)
    assert state.account("BNBUSDT").balance == 250.0
    assert state.account("BTCUSDT").balance == 0.0


@pytest.mark.parametrize(
    ("symbols", "tick_sizes", "error"),
    [
        (["ADAUSDT", "BTCUSDT"], 0.1, errors.DuplicateSymbolError),  # already added
        (["ADAUSDT", "LTCUSDT", "ADAUSDT"], 0.1, errors.DuplicateSymbolError),  # twice in one call
        (["ADAUSDT", "LTCUSDT"], {"ADAUSDT": 0.1}, KeyError),  # no tick size for LTCUSDT
        (["ADAUSDT", "LTCUSDT"], {"ADAUSDT": 0.1, "LTCUSDT": "-0.1"}, errors.InvalidTickSizeError),
        (["ADAUSDT", "bad symbol"], 0.1, errors.MalformedMessageError),
        (["ADAUSDT"], "abc", errors.InvalidTickSizeError),
    ],
)
def test_add_symbols_is_all_or_nothing(symbols: list[str], tick_sizes: Any, error: type[Exception]) -> None:
    state = SharedState("binance")
    state.add_symbols(["BTCUSDT"], 0.1)
    book = state.book("BTCUSDT")
    with pytest.raises(error):
        state.add_symbols(symbols, tick_sizes)
    assert state.symbols == ["BTCUSDT"]
    assert "ADAUSDT" not in state
    assert state.book("BTCUSDT") is book
    with pytest.raises(errors.DuplicateSymbolError):
        state.add_symbol("BTCUSDT", 0.1)


def test_unknown_symbols_raise() -> None:
    state = SharedState("bybit")
    state.add_symbols(["XRPUSDT"], "0.0001")
    for call in (state.book, state.tape, state.account, state.key_id, state.credentials_for):
        with pytest.raises(errors.UnknownSymbolError, match="BTCUSDT"):
            call("BTCUSDT")
    with pytest.raises(errors.UnknownSymbolError):
        state.assign_key("BTCUSDT", "key-00000000")
    with pytest.raises(errors.MalformedMessageError):
        SharedState("  ")


def test_book_tape_and_account_are_the_same_live_objects() -> None:
    state = SharedState("sim", tape_capacity=5, watch_depths=[1, 3])
    state.add_symbols(["BTCUSDT"], 0.1)
    book = state.book("BTCUSDT")
    assert state.book("BTCUSDT") is book
    assert book.watch_depths == [1, 3]
    book.apply_snapshot([["100.0", "1"]], [["100.2", "2"]], last_update_id=10)
    assert state.book("BTCUSDT").best_bid == 100.0
    assert state.book("BTCUSDT").status == BookStatus.LIVE
    state.book("BTCUSDT").apply_binance_diff(9, 11, 8, [["100.1", "4"]], [])
    assert book.best_bid == 100.1 and book.best_bid_size == 4.0

    tape = state.tape("BTCUSDT")
    assert tape is state.tape("BTCUSDT") and tape.capacity == 5
    for i in range(7):
        tape.push(100.0, 1.0, Side.BUY, exchange_time_ns=i)
    assert len(state.tape("BTCUSDT")) == 5

    account = state.account("BTCUSDT")
    assert account is state.account("BTCUSDT")
    account.apply_fill("t", Side.SELL, 100.0, 1.0)
    assert state.account("BTCUSDT").position == -1.0


@pytest.mark.parametrize(
    ("exchange", "sequencing", "status"),
    [
        ("binance", "binance", BookStatus.AWAITING_SNAPSHOT),
        ("Binance-USDM", "binance", BookStatus.AWAITING_SNAPSHOT),
        ("sim", "binance", BookStatus.AWAITING_SNAPSHOT),
        ("bybit", "bybit", BookStatus.AWAITING_SNAPSHOT),
        ("BYBIT", "bybit", BookStatus.AWAITING_SNAPSHOT),
        ("paper", "unsequenced", BookStatus.LIVE),
    ],
)
def test_books_follow_the_exchange_sequencing(exchange: str, sequencing: str, status: BookStatus) -> None:
    state = SharedState(exchange)
    assert state.exchange == exchange
    assert state.sequencing == sequencing
    state.add_symbols(["BTCUSDT"], 0.1)
    book = state.book("BTCUSDT")
    assert book.sequencing == sequencing
    assert book.status == status
    if sequencing == "binance":
        assert book.apply_binance_diff(1, 2, 0, [], []) == UpdateOutcome.BUFFERED
    elif sequencing == "bybit":
        assert book.apply_bybit(True, 5, [["100.0", "1"]], []) == UpdateOutcome.APPLIED
        assert book.apply_bybit(False, 7, [], []) == UpdateOutcome.GAP


API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_add_clients_keeps_the_secret_out_of_the_core_and_every_text() -> None:
    state = SharedState("binance")
    state.add_symbols(["BTCUSDT", "ETHUSDT"], 0.1)
    state.add_clients(API_KEY, SECRET, "BTCUSDT")

    key_id = state.key_id("BTCUSDT")
    assert key_id is not None and re.fullmatch(r"key-[0-9a-f]{8}", key_id)
    assert key_id == key_id_of(API_KEY)
    assert state.key_id("ETHUSDT") is None
    credentials = state.credentials_for("BTCUSDT")
    assert credentials is not None
    assert credentials.api_key == API_KEY and credentials.secret == SECRET  # for the order client
    assert credentials.key_id == key_id
    assert state.credentials_for("ETHUSDT") is None

    texts = [repr(state), str(state), repr(credentials), str(credentials), f"{credentials}", repr(vars(state))]
    for text in texts:
        assert SECRET not in text
        assert API_KEY not in text
    assert key_id in repr(credentials)

    # Errors while adding credentials name neither.
    for bad in [
        lambda: state.add_clients(API_KEY, SECRET, "XRPUSDT"),  # unknown symbol
        lambda: state.add_clients(API_KEY, "", "BTCUSDT"),
        lambda: state.add_clients("", SECRET, "BTCUSDT"),
    ]:
        with pytest.raises(errors.MarketMakerError) as raised:
            bad()
        message = f"{raised.value!s} {raised.value!r} {raised.value.args!r}"
        assert SECRET not in message and API_KEY not in message

    # A label replaces the derived id.
    state.add_clients(API_KEY, SECRET, "ETHUSDT", label="desk-7")
    assert state.key_id("ETHUSDT") == "desk-7"


def test_api_credentials_and_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = ApiCredentials(API_KEY, SECRET)
    assert SECRET not in repr(credentials) and API_KEY not in str(credentials)
    assert credentials.key_id == key_id_of(API_KEY)
    assert key_id_of(API_KEY) != key_id_of(API_KEY + "x")
    with pytest.raises(errors.ConfigError):
        ApiCredentials(API_KEY, "")
    monkeypatch.setenv("MARKETMAKER_TEST_SECRET", SECRET)
    assert resolve_secret("env:MARKETMAKER_TEST_SECRET", where="binance.secret") == SECRET
    assert resolve_secret("plain", where="binance.secret") == "plain"
    monkeypatch.delenv("MARKETMAKER_TEST_SECRET")
    with pytest.raises(errors.ConfigError, match="MARKETMAKER_TEST_SECRET") as raised:
        resolve_secret("env:MARKETMAKER_TEST_SECRET", where="binance.secret")
    assert "binance.secret" in str(raised.value)


# ---- sides, errors, the command line --------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "side"),
    [
        (Side.BUY, Side.BUY),
        ("buy", Side.BUY),
        ("BUY", Side.BUY),
        ("bid", Side.BUY),
        ("Bids", Side.BUY),
        ("b", Side.BUY),
        (True, Side.BUY),
        (Side.SELL, Side.SELL),
        ("sell", Side.SELL),
        ("ASK", Side.SELL),
        ("asks", Side.SELL),
        ("a", Side.SELL),
        ("s", Side.SELL),
        (False, Side.SELL),
    ],
)
def test_side_spellings(given: Any, side: Side) -> None:
    book = OrderBook("BTCUSDT", "0.1")
    book.set_level(given, "100.0", "1.5")
    if side == Side.BUY:
        assert book.bids() == [(100.0, 1.5)] and book.asks() == []
    else:
        assert book.asks() == [(100.0, 1.5)] and book.bids() == []
    tape = TradeTape()
    tape.push(100.0, 1.0, given, exchange_time_ns=0)
    assert tape.last is not None and tape.last.aggressor == side


@pytest.mark.parametrize("given", ["middle", "", "long", 1, 0, None, 1.0])
def test_unknown_sides_are_rejected(given: Any) -> None:
    book = OrderBook("BTCUSDT", "0.1")
    with pytest.raises((TypeError, ValueError)):
        book.set_level(given, "100.0", "1")
    assert book.bids() == [] and book.asks() == []


def test_side_enum() -> None:
    assert Side.BUY.opposite() == Side.SELL and Side.SELL.opposite() == Side.BUY
    assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)
    assert Side.BUY != Side.SELL
    assert len({Side.BUY, Side.BUY, Side.SELL}) == 2


def test_error_classes_share_one_base() -> None:
    names = [
        "InvalidInputError",
        "InvalidPriceError",
        "OffTickError",
        "InvalidSizeError",
        "InvalidTickSizeError",
        "MalformedMessageError",
        "SequenceGapError",
        "UnknownSymbolError",
        "DuplicateSymbolError",
        "InvalidOrderError",
        "ConfigError",
    ]
    assert set(names) | {"MarketMakerError"} <= set(errors.__all__)
    assert issubclass(errors.MarketMakerError, Exception)
    for name in names:
        assert issubclass(getattr(errors, name), errors.MarketMakerError), name
    assert issubclass(errors.OffTickError, errors.InvalidPriceError)
    assert issubclass(errors.InvalidPriceError, errors.InvalidInputError)
    assert not issubclass(errors.SequenceGapError, errors.InvalidInputError)
    # What the core raises is these classes.
    with pytest.raises(errors.MarketMakerError):
        OrderBook("BTCUSDT", "0")
    with pytest.raises(errors.InvalidTickSizeError):
        OrderBook("BTCUSDT", "-0.1")
    with pytest.raises(errors.MalformedMessageError):
        OrderBook("BTC USDT", "0.1")


def test_public_names() -> None:
    for name in marketmaker.__all__:
        assert hasattr(marketmaker, name), name
    assert isinstance(marketmaker.__version__, str) and marketmaker.__version__


def cli_command() -> list[str]:
    script = shutil.which("marketmaker-cli") or shutil.which("marketmaker-cli", path=str(Path(sys.executable).parent))
    assert script is not None, "the marketmaker-cli console script is not installed"
    return [script]


@pytest.mark.parametrize(
    "command", [cli_command, lambda: [sys.executable, "-m", "marketmaker.cli"]], ids=["script", "module"]
)
def test_cli_version_and_help(command: object) -> None:
    base = command()  # type: ignore[operator]
    version = subprocess.run([*base, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"marketmaker {marketmaker.__version__}"
    usage = subprocess.run([*base, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 0, usage.stderr
    assert "usage: marketmaker-cli" in usage.stdout
    assert "--version" in usage.stdout
    wrong = subprocess.run([*base, "--no-such-option"], capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode != 0

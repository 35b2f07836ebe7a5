"""The local venue's matching engine: priority, fills, order rules and their Binance codes,
fees, positions and PnL that balance exactly, margin, funding, and the events it publishes."""

from __future__ import annotations

import doctest
from decimal import Decimal
from typing import Any

import marketmaker.sim.engine
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marketmaker.sim import (
    AccountEvent,
    BookDelta,
    Event,
    Exchange,
    Instrument,
    MarkPriceEvent,
    OrderEvent,
    TradePrint,
    VenueError,
)

D = Decimal
SYMBOL = "BTCUSDT"


def make_venue(balance: str = "100000", **options: Any) -> tuple[Exchange, list[Event]]:
    venue = Exchange(
        [Instrument(SYMBOL, tick_size=D("0.1"), step_size=D("0.001"), min_notional=D("5"), price_precision=2)],
        **options,
    )
    events: list[Event] = []
    venue.subscribe(events.append)
    for account in ("alice", "bob", "carol"):
        venue.add_account(account, D(balance))
    return venue, events


def limit(venue: Exchange, account: str, side: str, qty: str, price: str, now_ms: int, **options: Any) -> Any:
    return venue.place_order(
        account, SYMBOL, side=side, order_type="LIMIT", quantity=D(qty), price=D(price), now_ms=now_ms, **options
    )


def order_events(events: list[Event], **match: Any) -> list[OrderEvent]:
    return [
        e for e in events if isinstance(e, OrderEvent) and all(getattr(e, key) == value for key, value in match.items())
    ]


def test_makers_at_one_price_fill_in_arrival_order_and_better_prices_first() -> None:
    venue, events = make_venue()
    first = limit(venue, "alice", "SELL", "0.010", "60000.5", 1)
    second = limit(venue, "bob", "SELL", "0.010", "60000.5", 2)
    better = limit(venue, "carol", "SELL", "0.010", "60000.4", 3)
    taker = limit(venue, "carol", "BUY", "0.015", "60001.0", 4)
    fills = [
        (e.order_id, e.last_filled_qty, e.last_filled_price)
        for e in order_events(events, execution_type="TRADE", is_maker=True)
    ]
    assert fills == [(better.order_id, D("0.010"), D("60000.4")), (first.order_id, D("0.005"), D("60000.5"))]
    assert venue.query_order("bob", SYMBOL, order_id=second.order_id).executed_qty == 0
    assert venue.query_order("carol", SYMBOL, order_id=taker.order_id).status == "FILLED"
    # the taker paid each maker's price, not its limit
    assert venue.query_order("carol", SYMBOL, order_id=taker.order_id).cumulative_quote == D("600.004") + D("300.0025")


def test_partial_fills_report_remaining_status_and_cumulative_quantity() -> None:
    venue, events = make_venue()
    maker = limit(venue, "alice", "BUY", "0.050", "60000.0", 1)
    for now_ms, qty in ((2, "0.020"), (3, "0.020"), (4, "0.010")):
        venue.market_order_background(SYMBOL, "SELL", D(qty), now_ms)
    trades = order_events(events, order_id=maker.order_id, execution_type="TRADE")
    assert [(e.status, e.last_filled_qty, e.cumulative_filled_qty) for e in trades] == [
        ("PARTIALLY_FILLED", D("0.020"), D("0.020")),
        ("PARTIALLY_FILLED", D("0.020"), D("0.040")),
        ("FILLED", D("0.010"), D("0.050")),
    ]
    _, bids, _ = venue.depth(SYMBOL)
    assert bids == []
    assert venue.open_orders("alice") == []
    # a partially filled order rests with what is left of it
    venue.add_background(SYMBOL, "SELL", D("60010.0"), D("0.004"), 5)
    partial = limit(venue, "bob", "BUY", "0.010", "60010.0", 6)
    assert (partial.status, partial.executed_qty) == ("PARTIALLY_FILLED", D("0.004"))
    assert venue.depth(SYMBOL)[1] == [(D("60010.0"), D("0.006"))]


def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    venue, events = make_venue()
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.004"), 1)
    venue.add_background(SYMBOL, "SELL", D("60000.2"), D("0.004"), 1)
    report = limit(venue, "alice", "BUY", "0.010", "60000.1", 2, time_in_force="IOC")
    assert (report.status, report.executed_qty) == ("EXPIRED", D("0.004"))
    assert [e.execution_type for e in order_events(events, order_id=report.order_id)] == ["NEW", "TRADE", "EXPIRED"]
    assert venue.depth(SYMBOL)[2] == [(D("60000.2"), D("0.004"))]  # nothing of it rests
    market = venue.place_order("alice", SYMBOL, side="BUY", order_type="MARKET", quantity=D("0.010"), now_ms=3)
    assert (market.status, market.executed_qty, market.average_price) == ("EXPIRED", D("0.004"), D("60000.2"))


def test_fok_fills_entirely_across_levels_or_is_rejected_without_a_trace() -> None:
    venue, events = make_venue()
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.004"), 1)
    venue.add_background(SYMBOL, "SELL", D("60000.1"), D("0.004"), 1)
    before = len(events)
    with pytest.raises(VenueError) as rejected:
        limit(venue, "alice", "BUY", "0.009", "60000.1", 2, time_in_force="FOK")
    assert rejected.value.code == -5021
    with pytest.raises(VenueError):  # enough in the book, but not within the limit
        limit(venue, "alice", "BUY", "0.008", "60000.0", 2, time_in_force="FOK")
    assert events[before:] == [] and venue.open_orders("alice") == []
    report = limit(venue, "alice", "BUY", "0.008", "60000.1", 3, time_in_force="FOK")
    assert (report.status, report.executed_qty) == ("FILLED", D("0.008"))


def test_post_only_that_would_take_is_rejected_5022_and_one_that_would_not_rests() -> None:
    venue, events = make_venue()
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.010"), 1)
    venue.add_background(SYMBOL, "BUY", D("59999.0"), D("0.010"), 1)
    before = len(events)
    for side, price in (("BUY", "60000.0"), ("BUY", "60005.0"), ("SELL", "59999.0")):
        with pytest.raises(VenueError) as rejected:
            limit(venue, "alice", side, "0.010", price, 2, time_in_force="GTX")
        assert rejected.value.code == -5022
    assert events[before:] == []
    resting = limit(venue, "alice", "BUY", "0.010", "59999.9", 3, time_in_force="GTX")
    assert resting.status == "NEW"
    assert venue.best_bid_ask(SYMBOL)[0] == (D("59999.9"), D("0.010"))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": D("60000.05")}, -4014),  # on precision (2 decimals), off the 0.1 tick
        ({"price": D("60000.001")}, -1111),  # beyond the price precision
        ({"quantity": D("0.0105")}, -1111),  # beyond the quantity precision
        ({"price": D("0")}, -4001),
        ({"quantity": D("0")}, -4003),
        ({"quantity": D("0.0001")}, -1111),
        ({"quantity": D("0.001"), "price": D("1000.0")}, -4164),  # 1 USDT notional < 5
        ({"client_order_id": "has space"}, -1100),
        ({"client_order_id": "x" * 37}, -4015),
        ({"client_order_id": ""}, -1100),
        ({"side": "LONG"}, -1117),
        ({"order_type": "STOP"}, -1116),
        ({"time_in_force": "GTD"}, -1115),
        ({"price": None}, -1102),
        ({"order_type": "MARKET"}, -1106),  # a MARKET order with a price
        ({"symbol": "DOGEUSDT"}, -1121),
        ({"account_id": "mallory"}, -1109),
    ],
)
def test_orders_breaking_a_rule_are_rejected_with_binances_code_and_change_nothing(
    change: dict[str, Any], code: int
) -> None:
    venue, events = make_venue()
    order: dict[str, Any] = {
        "account_id": "alice",
        "symbol": SYMBOL,
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": D("0.010"),
        "price": D("60000.0"),
        "now_ms": 1,
    }
    order.update(change)
    before = len(events)
    with pytest.raises(VenueError) as rejected:
        venue.place_order(**order)
    assert rejected.value.code == code
    assert events[before:] == []
    assert venue.open_orders("alice") == []
    assert venue.depth(SYMBOL) == (0, [], [])


def test_quantity_off_the_step_and_below_min_qty() -> None:
    venue = Exchange([Instrument(SYMBOL, tick_size=D("0.1"), step_size=D("0.002"), min_qty=D("0.004"))])
    venue.add_account("alice", D("100000"))
    for quantity, code in (("0.003", -4023), ("0.002", -4004)):
        with pytest.raises(VenueError) as rejected:
            venue.place_order(
                "alice", SYMBOL, side="BUY", order_type="LIMIT", quantity=D(quantity), price=D("60000.0"), now_ms=1
            )
        assert rejected.value.code == code


def test_client_ids_are_unique_among_open_orders_and_generated_when_absent() -> None:
    venue, _ = make_venue()
    first = limit(venue, "alice", "BUY", "0.010", "60000.0", 1, client_order_id="quote.bid:1/a_b-C")
    with pytest.raises(VenueError) as duplicate:
        limit(venue, "alice", "BUY", "0.010", "59000.0", 2, client_order_id="quote.bid:1/a_b-C")
    assert duplicate.value.code == -4116
    # another account may use it; the same account may once the first is no longer open
    limit(venue, "bob", "BUY", "0.010", "59000.0", 3, client_order_id="quote.bid:1/a_b-C")
    venue.cancel_order("alice", SYMBOL, client_order_id="quote.bid:1/a_b-C", now_ms=4)
    again = limit(venue, "alice", "BUY", "0.010", "59000.0", 5, client_order_id="quote.bid:1/a_b-C")
    assert again.order_id > first.order_id
    generated = limit(venue, "alice", "BUY", "0.010", "58000.0", 6)
    assert generated.client_order_id == f"sim-{generated.order_id}"
    assert generated.order_id > again.order_id


def test_cancel_of_unknown_filled_or_cancelled_orders_is_2011_and_query_of_none_is_2013() -> None:
    venue, _ = make_venue()
    with pytest.raises(VenueError) as unknown:
        venue.cancel_order("alice", SYMBOL, order_id=12345, now_ms=1)
    assert unknown.value.code == -2011
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.010"), 1)
    filled = limit(venue, "alice", "BUY", "0.010", "60000.0", 2)
    assert filled.status == "FILLED"
    with pytest.raises(VenueError) as too_late:  # a fill that beat the cancel
        venue.cancel_order("alice", SYMBOL, order_id=filled.order_id, now_ms=3)
    assert too_late.value.code == -2011
    resting = limit(venue, "alice", "BUY", "0.010", "59000.0", 4)
    cancelled = venue.cancel_order("alice", SYMBOL, order_id=resting.order_id, now_ms=5)
    assert cancelled.status == "CANCELED"
    with pytest.raises(VenueError) as twice:
        venue.cancel_order("alice", SYMBOL, order_id=resting.order_id, now_ms=6)
    assert twice.value.code == -2011
    with pytest.raises(VenueError):  # another account's order is unknown to this one
        venue.cancel_order("bob", SYMBOL, order_id=resting.order_id, now_ms=6)
    assert venue.query_order("alice", SYMBOL, order_id=filled.order_id).status == "FILLED"
    with pytest.raises(VenueError) as never:
        venue.query_order("alice", SYMBOL, order_id=999_999)
    assert never.value.code == -2013


def test_cancel_all_cancels_only_that_accounts_orders_on_that_symbol() -> None:
    venue, events = make_venue()
    mine = [limit(venue, "alice", "BUY", "0.010", price, 1) for price in ("59000.0", "59000.0", "58000.0")]
    theirs = limit(venue, "bob", "BUY", "0.010", "59000.0", 1)
    cancelled = venue.cancel_all("alice", SYMBOL, 2)
    assert [r.order_id for r in cancelled] == [r.order_id for r in mine]
    assert [r.order_id for r in venue.open_orders("bob", SYMBOL)] == [theirs.order_id]
    assert venue.depth(SYMBOL)[1] == [(D("59000.0"), D("0.010"))]
    assert len(order_events(events, execution_type="CANCELED")) == 3


def test_fees_maker_and_taker_on_each_fill_in_usdt() -> None:
    venue, events = make_venue()
    maker = limit(venue, "alice", "SELL", "0.100", "60000.0", 1)
    taker = limit(venue, "bob", "BUY", "0.100", "60000.0", 2)
    maker_fill = order_events(events, order_id=maker.order_id, execution_type="TRADE")[0]
    taker_fill = order_events(events, order_id=taker.order_id, execution_type="TRADE")[0]
    assert (maker_fill.is_maker, maker_fill.commission, maker_fill.commission_asset) == (True, D("1.2"), "USDT")
    assert (taker_fill.is_maker, taker_fill.commission) == (False, D("3.0"))
    assert venue.balances("alice").wallet_balance == D("99998.8")
    assert venue.balances("bob").wallet_balance == D("99997.0")
    assert maker_fill.trade_id == taker_fill.trade_id


def test_accounting_balances_exactly_through_a_flip_and_funding() -> None:
    """The scripted sequence and its hand computation:

    ====  ===============================================  =========  ========  ========
    t     fill                                             fee        rp        funding
    ====  ===============================================  =========  ========  ========
    1     buy 0.100 @ 60000.0 taker                        3.0000
    2     buy 0.100 @ 60300.0 taker (market) → +0.2 @ 60150 3.0150
    3     sell 0.300 @ 60500.0 maker: close 0.2, flip -0.1  3.6300     +70.000
    60k   funding, mark mid 60400.0, short 0.1 receives                         +0.604
    60k+1 buy 0.100 @ 60410.0 taker: close the short       3.0205     +9.000
    ====  ===============================================  =========  ========  ========
    """
    venue, events = make_venue(funding_interval_ms=60_000, funding_rate=D("0.0001"))
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.100"), 1)
    limit(venue, "alice", "BUY", "0.100", "60000.0", 1)
    venue.add_background(SYMBOL, "SELL", D("60300.0"), D("0.100"), 2)
    venue.place_order("alice", SYMBOL, side="BUY", order_type="MARKET", quantity=D("0.100"), now_ms=2)
    position = venue.positions("alice")[0]
    assert (position.size, position.entry_price) == (D("0.200"), D("60150"))
    limit(venue, "alice", "SELL", "0.300", "60500.0", 3)
    venue.market_order_background(SYMBOL, "BUY", D("0.300"), 3)
    position = venue.positions("alice")[0]
    assert (position.size, position.entry_price) == (D("-0.100"), D("60500.0"))
    venue.add_background(SYMBOL, "BUY", D("60390.0"), D("1.000"), 4)
    venue.add_background(SYMBOL, "SELL", D("60410.0"), D("1.000"), 4)
    venue.advance(60_000)
    limit(venue, "alice", "BUY", "0.100", "60410.0", 60_001)
    assert venue.positions("alice")[0].size == 0

    fills = order_events(events, account_id="alice", execution_type="TRADE")
    realized = sum((e.realized_pnl for e in fills), D(0))
    fees = sum((e.commission for e in fills), D(0))
    funding = sum(
        (
            e.balance_change
            for e in events
            if isinstance(e, AccountEvent) and e.account_id == "alice" and e.reason == "FUNDING_FEE"
        ),
        D(0),
    )
    wallet = venue.balances("alice").wallet_balance
    assert D("100000") + realized - fees + funding == wallet
    assert (realized, fees, funding) == (D("79"), D("12.6655"), D("0.604"))
    hand = D("100000") - D("3") - D("3.015") - D("3.63") + D("70") + D("0.604") - D("3.0205") + D("9")
    assert wallet == hand == D("100066.9385")
    assert venue.positions("alice")[0].accumulated_realized == D("79")
    last_account_event = [e for e in events if isinstance(e, AccountEvent) and e.account_id == "alice"][-1]
    assert last_account_event.balance.wallet_balance == wallet


def test_funding_is_paid_at_each_interval_longs_to_shorts_at_mark() -> None:
    venue, events = make_venue(funding_interval_ms=1_000, funding_rate=D("0.0002"), mark_price_interval_ms=500)
    venue.add_background(SYMBOL, "BUY", D("59999.0"), D("1.000"), 0)
    limit(venue, "alice", "SELL", "0.100", "59999.0", 10)  # alice short 0.1, the background long
    limit(venue, "bob", "BUY", "0.010", "59990.0", 11)
    venue.add_background(SYMBOL, "SELL", D("60001.0"), D("1.000"), 12)
    bob_filled = limit(venue, "bob", "BUY", "0.050", "60001.0", 13)  # bob long 0.05
    assert bob_filled.status == "FILLED"
    venue.advance(2_999)
    payments = [
        (e.account_id, e.balance_change, e.time_ms)
        for e in events
        if isinstance(e, AccountEvent) and e.reason == "FUNDING_FEE"
    ]
    # mark = mid of 59999.0 / 60001.0 = 60000; 0.1 × 60000 × 0.0002 = 1.2, 0.05 × … = 0.6
    assert payments == [
        ("alice", D("1.2"), 1000),
        ("bob", D("-0.6"), 1000),
        ("alice", D("1.2"), 2000),
        ("bob", D("-0.6"), 2000),
    ]
    marks = [(e.time_ms, e.mark_price, e.next_funding_time_ms) for e in events if isinstance(e, MarkPriceEvent)]
    # one advance over many slots: the last slot before each funding, then the last before now
    assert marks == [(1000, D("60000"), 1000), (2000, D("60000"), 2000), (2500, D("60000"), 3000)]
    assert venue.mark_price(SYMBOL) == D("60000")


def test_margin_insufficient_is_2019_and_leverage_sets_how_much_is_needed() -> None:
    venue, _ = make_venue(balance="100")
    with pytest.raises(VenueError) as short_of_margin:  # 2,400 notional / 20 = 120 > 100
        limit(venue, "alice", "BUY", "0.040", "60000.0", 1)
    assert short_of_margin.value.code == -2019
    limit(venue, "alice", "BUY", "0.030", "60000.0", 2)  # 90 of margin
    assert venue.balances("alice").available_balance == D("10")
    with pytest.raises(VenueError):
        limit(venue, "alice", "SELL", "0.010", "70000.0", 3)  # a sell needs margin of its own: 35
    assert venue.set_leverage("alice", SYMBOL, 50) == 50
    assert venue.balances("alice").available_balance == D("64")  # 100 - 1800/50
    limit(venue, "alice", "SELL", "0.010", "70000.0", 4)
    assert venue.leverage("alice", SYMBOL) == 50


@pytest.mark.parametrize("leverage", [0, 126, -1])
def test_leverage_outside_its_bounds_is_4028(leverage: int) -> None:
    venue, _ = make_venue()
    with pytest.raises(VenueError) as rejected:
        venue.set_leverage("alice", SYMBOL, leverage)
    assert rejected.value.code == -4028
    assert venue.leverage("alice", SYMBOL) == 20


def test_reduce_only_is_rejected_unless_it_reduces_and_never_goes_beyond_flat() -> None:
    venue, events = make_venue(balance="1000")
    with pytest.raises(VenueError) as flat:
        limit(venue, "alice", "SELL", "0.010", "60000.0", 1, reduce_only=True)
    assert flat.value.code == -2022
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.300"), 2)
    limit(venue, "alice", "BUY", "0.300", "60000.0", 2)  # long 0.3, 900 of margin: 100 available
    with pytest.raises(VenueError) as same_side:
        limit(venue, "alice", "BUY", "0.010", "59000.0", 3, reduce_only=True)
    assert same_side.value.code == -2022
    with pytest.raises(VenueError):  # an ordinary sell this size would need margin
        limit(venue, "alice", "SELL", "0.500", "61000.0", 3)
    venue.add_background(SYMBOL, "BUY", D("59900.0"), D("1.000"), 4)
    closing = limit(venue, "alice", "SELL", "0.500", "59900.0", 4, reduce_only=True, time_in_force="IOC")
    assert (closing.status, closing.executed_qty) == ("EXPIRED", D("0.300"))
    assert venue.positions("alice")[0].size == 0
    # a reduce-only order that rests expires, unfilled, when the position it reduced is gone
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.100"), 5)
    limit(venue, "alice", "BUY", "0.100", "60000.0", 5)
    resting = limit(venue, "alice", "SELL", "0.100", "60100.0", 6, reduce_only=True)
    limit(venue, "alice", "SELL", "0.100", "59900.0", 7)  # closes the long against the bid
    venue.market_order_background(SYMBOL, "BUY", D("0.100"), 8)
    assert venue.query_order("alice", SYMBOL, order_id=resting.order_id).status == "EXPIRED"
    assert venue.positions("alice")[0].size == 0
    assert order_events(events, order_id=resting.order_id)[-1].execution_type == "EXPIRED"
    # a reduce-only GTC limit that closes the position part way through its matching expires
    # the rest instead of resting it against the bids it was taking
    venue.add_background(SYMBOL, "SELL", D("60000.0"), D("0.010"), 9)
    limit(venue, "alice", "BUY", "0.010", "60000.0", 9)
    venue.add_background(SYMBOL, "BUY", D("59990.0"), D("0.030"), 10)
    closing = limit(venue, "alice", "SELL", "0.020", "59990.0", 11, reduce_only=True)
    assert (closing.status, closing.executed_qty) == ("EXPIRED", D("0.010"))
    assert venue.best_bid_ask(SYMBOL)[0] == (D("59990.0"), D("0.020"))
    assert venue.best_bid_ask(SYMBOL)[1] != (D("59990.0"), D("0.010"))


def test_order_events_carry_the_fields_of_order_trade_update() -> None:
    venue, events = make_venue()
    maker = limit(venue, "alice", "SELL", "0.020", "60000.0", 1, client_order_id="ask-1")
    venue.market_order_background(SYMBOL, "BUY", D("0.005"), 7)
    new, trade = order_events(events, order_id=maker.order_id)
    assert (new.execution_type, new.status, new.trade_id, new.last_filled_qty) == ("NEW", "NEW", 0, D(0))
    assert trade.account_id == "alice" and trade.client_order_id == "ask-1"
    assert (trade.side, trade.order_type, trade.time_in_force, trade.reduce_only) == ("SELL", "LIMIT", "GTC", False)
    assert (trade.quantity, trade.price, trade.average_price) == (D("0.020"), D("60000.0"), D("60000.0"))
    assert (trade.execution_type, trade.status) == ("TRADE", "PARTIALLY_FILLED")
    assert (trade.last_filled_qty, trade.last_filled_price, trade.cumulative_filled_qty) == (
        D("0.005"),
        D("60000.0"),
        D("0.005"),
    )
    assert (trade.commission, trade.is_maker, trade.realized_pnl, trade.time_ms) == (D("0.06"), True, D(0), 7)
    prints = [e for e in events if isinstance(e, TradePrint)]
    assert len(prints) == 1 and prints[0].trade_id == trade.trade_id
    assert (prints[0].taker_side, prints[0].maker_order_id, prints[0].qty) == ("BUY", maker.order_id, D("0.005"))
    position_update = [e for e in events if isinstance(e, AccountEvent)][-1]
    assert (position_update.reason, position_update.positions[0].size) == ("ORDER", D("-0.005"))


def test_trade_ids_are_unique_and_one_taker_sweeping_levels_shares_its_order_id() -> None:
    venue, events = make_venue()
    for price in ("60000.0", "60000.1", "60000.2"):
        venue.add_background(SYMBOL, "SELL", D(price), D("0.010"), 1)
    taker = venue.place_order("alice", SYMBOL, side="BUY", order_type="MARKET", quantity=D("0.025"), now_ms=2)
    prints = [e for e in events if isinstance(e, TradePrint)]
    assert [p.price for p in prints] == [D("60000.0"), D("60000.1"), D("60000.2")]
    assert {p.taker_order_id for p in prints} == {taker.order_id}
    ids = [p.trade_id for p in prints]
    assert ids == sorted(set(ids))
    assert taker.average_price == (D("600.000") + D("600.001") + D("300.001")) / D("0.025")


def apply_deltas(deltas: list[BookDelta]) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for delta in deltas:
        for book, levels in ((bids, delta.bids), (asks, delta.asks)):
            for price, qty in levels:
                if qty == 0:
                    book.pop(price, None)
                else:
                    book[price] = qty
    return bids, asks


def check_deltas_rebuild_depth(venue: Exchange, events: list[Event]) -> None:
    deltas = [e for e in events if isinstance(e, BookDelta)]
    assert [d.update_id for d in deltas] == list(range(1, len(deltas) + 1))
    assert all(d.prev_update_id == d.update_id - 1 for d in deltas)
    bids, asks = apply_deltas(deltas)
    last_update_id, depth_bids, depth_asks = venue.depth(SYMBOL, 10_000)
    assert last_update_id == (deltas[-1].update_id if deltas else 0)
    assert depth_bids == sorted(bids.items(), reverse=True)
    assert depth_asks == sorted(asks.items())


def test_book_deltas_increase_by_one_and_rebuild_the_depth_snapshot() -> None:
    venue, events = make_venue()
    limit(venue, "alice", "BUY", "0.010", "59999.0", 1)
    venue.add_background(SYMBOL, "BUY", D("59999.0"), D("0.020"), 2)
    handle = venue.add_background(SYMBOL, "SELL", D("60001.0"), D("0.020"), 3)
    limit(venue, "bob", "SELL", "0.040", "59999.0", 4)  # takes the bids, rests 0.01 as the best ask
    venue.cancel_background(handle, 5)
    deltas = [e for e in events if isinstance(e, BookDelta)]
    assert len(deltas) == 5
    assert (deltas[3].bids, deltas[3].asks) == (((D("59999.0"), D("0")),), ((D("59999.0"), D("0.010")),))
    check_deltas_rebuild_depth(venue, events)


def test_a_subscriber_that_calls_back_in_sees_events_in_order() -> None:
    venue, events = make_venue()
    seen: list[str] = []

    def requote(event: Event) -> None:
        seen.append(type(event).__name__)
        if isinstance(event, OrderEvent) and event.execution_type == "TRADE" and event.account_id == "alice":
            limit(venue, "alice", "BUY", "0.010", "59000.0", event.time_ms)

    venue.subscribe(requote)
    limit(venue, "alice", "BUY", "0.010", "60000.0", 1)
    venue.market_order_background(SYMBOL, "SELL", D("0.010"), 2)
    assert seen == [
        "OrderEvent",
        "BookDelta",
        "TradePrint",
        "OrderEvent",
        "AccountEvent",
        "BookDelta",
        "OrderEvent",
        "BookDelta",
    ]
    check_deltas_rebuild_depth(venue, events)


@st.composite
def actions(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    steps = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(
            st.sampled_from(
                ["limit", "limit", "market", "background", "background_market", "cancel", "cancel_background"]
            )
        )
        side = draw(st.sampled_from(["BUY", "SELL"]))
        ticks = draw(st.integers(599_990, 600_010))
        lots = draw(st.integers(1, 30))
        account = draw(st.sampled_from(["alice", "bob"]))
        tif = draw(st.sampled_from(["GTC", "GTC", "IOC", "FOK", "GTX"]))
        pick = draw(st.integers(0, 1000))
        reduce_only = draw(st.booleans())
        steps.append((kind, side, ticks, lots, account, tif, pick, reduce_only))
    return steps


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions())
def test_random_flows_keep_the_book_uncrossed_fills_conserved_and_accounts_balanced(
    steps: list[tuple[Any, ...]],
) -> None:
    venue, events = make_venue(funding_interval_ms=10, funding_rate=D("0.0003"))
    handles: list[int] = []
    orders: list[tuple[str, int]] = []
    tick, step = D("0.1"), D("0.001")
    for now_ms, (kind, side, ticks, lots, account, tif, pick, reduce_only) in enumerate(steps, start=1):
        price, qty = ticks * tick, lots * step
        try:
            if kind == "limit":
                report = venue.place_order(
                    account,
                    SYMBOL,
                    side=side,
                    order_type="LIMIT",
                    quantity=qty,
                    price=price,
                    time_in_force=tif,
                    reduce_only=reduce_only and pick % 2 == 0,
                    now_ms=now_ms,
                )
                orders.append((account, report.order_id))
            elif kind == "market":
                venue.place_order(
                    account,
                    SYMBOL,
                    side=side,
                    order_type="MARKET",
                    quantity=qty,
                    reduce_only=reduce_only,
                    now_ms=now_ms,
                )
            elif kind == "background":
                handles.append(venue.add_background(SYMBOL, side, price, qty, now_ms))
            elif kind == "background_market":
                venue.market_order_background(SYMBOL, side, qty, now_ms)
            elif kind == "cancel" and orders:
                owner, order_id = orders[pick % len(orders)]
                venue.cancel_order(owner, SYMBOL, order_id=order_id, now_ms=now_ms)
            elif kind == "cancel_background" and handles:
                venue.cancel_background(handles[pick % len(handles)], now_ms)
        except VenueError as error:
            assert error.code in (-5021, -5022, -2011, -2019, -2022)
        bid, ask = venue.best_bid_ask(SYMBOL)
        assert bid is None or ask is None or bid[0] < ask[0]
        _, bids, asks = venue.depth(SYMBOL, 10_000)
        assert all(q > 0 for _, q in bids + asks)

    check_deltas_rebuild_depth(venue, events)
    fills = [e for e in events if isinstance(e, OrderEvent) and e.execution_type == "TRADE"]
    participant_orders = {e.order_id for e in events if isinstance(e, OrderEvent)}
    by_trade: dict[int, list[OrderEvent]] = {}
    for fill in fills:
        by_trade.setdefault(fill.trade_id, []).append(fill)
    prints = [e for e in events if isinstance(e, TradePrint)]
    assert len({p.trade_id for p in prints}) == len(prints)
    for trade in prints:
        sides = by_trade.pop(trade.trade_id, [])
        expected = [trade.maker_order_id in participant_orders, trade.taker_order_id in participant_orders]
        assert sorted(f.is_maker for f in sides) == sorted(
            flag for flag, there in zip((True, False), expected) if there
        )
        assert all(f.last_filled_qty == trade.qty and f.last_filled_price == trade.price for f in sides)
    assert by_trade == {}
    for account in ("alice", "bob", "carol"):
        mine = [f for f in fills if f.account_id == account]
        funding = sum(
            (
                e.balance_change
                for e in events
                if isinstance(e, AccountEvent) and e.account_id == account and e.reason == "FUNDING_FEE"
            ),
            D(0),
        )
        total = D("100000") + sum((f.realized_pnl - f.commission for f in mine), D(0)) + funding
        assert total == venue.balances(account).wallet_balance
        position = sum(((f.last_filled_qty if f.side == "BUY" else -f.last_filled_qty) for f in mine), D(0))
        assert position == venue.positions(account)[0].size


def test_a_long_gap_emits_one_mark_price_per_funding_period_and_pays_every_funding() -> None:
    venue, events = make_venue(funding_interval_ms=10_000, mark_price_interval_ms=1_000)
    venue.add_background(SYMBOL, "BUY", D("59999.0"), D("1.000"), 0)
    venue.add_background(SYMBOL, "SELL", D("60001.0"), D("1.000"), 0)
    venue.place_order("alice", SYMBOL, side="BUY", order_type="MARKET", quantity=D("0.010"), now_ms=1)
    venue.advance(35_500)
    timed = [
        (type(e).__name__, e.time_ms) for e in events if isinstance(e, (MarkPriceEvent, AccountEvent)) and e.time_ms > 1
    ]
    assert timed == [
        ("MarkPriceEvent", 10_000),
        ("AccountEvent", 10_000),
        ("MarkPriceEvent", 20_000),
        ("AccountEvent", 20_000),
        ("MarkPriceEvent", 30_000),
        ("AccountEvent", 30_000),
        ("MarkPriceEvent", 35_000),
    ]


def test_a_failing_subscriber_neither_fails_the_order_nor_starves_the_others(caplog: pytest.LogCaptureFixture) -> None:
    venue, events = make_venue()

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    venue.unsubscribe(events.append)
    venue.subscribe(broken)
    venue.subscribe(events.append)
    report = limit(venue, "alice", "BUY", "0.010", "60000.0", 1)
    assert report.status == "NEW"
    assert [type(e).__name__ for e in events] == ["OrderEvent", "BookDelta"]
    assert "subscriber bug" in caplog.text


@st.composite
def replay_flows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Recorded updates (bids 99.0–99.9, asks 100.0–100.9: the recording is never crossed),
    recorded trades anywhere, and our limit orders anywhere (some crossing)."""
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["depth", "depth", "trade", "order", "cancel"]))
        if kind == "depth":
            bids = draw(st.dictionaries(st.integers(990, 999), st.integers(0, 50), max_size=4))
            asks = draw(st.dictionaries(st.integers(1000, 1009), st.integers(0, 50), max_size=4))
            steps.append((kind, sorted(bids.items()), sorted(asks.items())))
        elif kind == "trade":
            steps.append(
                (kind, draw(st.integers(990, 1009)), draw(st.integers(1, 60)), draw(st.sampled_from(["BUY", "SELL"])))
            )
        elif kind == "order":
            steps.append(
                (kind, draw(st.integers(990, 1009)), draw(st.integers(1, 20)), draw(st.sampled_from(["BUY", "SELL"])))
            )
        else:
            steps.append((kind, draw(st.integers(0, 100))))
    return steps


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replay_flows())
def test_replayed_levels_publish_recorded_plus_ours_and_never_cross(steps: list[tuple[Any, ...]]) -> None:
    venue = Exchange([Instrument(SYMBOL, tick_size=D("0.1"), step_size=D("0.1"), min_notional=D("0"))])
    venue.add_account("us", D("1000000"))
    events: list[Event] = []
    venue.subscribe(events.append)
    placed: list[int] = []
    tick = lot = D("0.1")

    def ours_at(side: str, price: Decimal) -> Decimal:
        return sum(
            (o.quantity - o.executed_qty for o in venue.open_orders("us") if o.side == side and o.price == price), D(0)
        )

    for now_ms, step in enumerate(steps, start=1):
        if step[0] == "depth":
            bids = [(t * tick, q * lot) for t, q in step[1]]
            asks = [(t * tick, q * lot) for t, q in step[2]]
            venue.replay_depth_update(SYMBOL, bids, asks, now_ms)
            _, book_bids, book_asks = venue.depth(SYMBOL, 1000)
            published = {("BUY", p): q for p, q in book_bids} | {("SELL", p): q for p, q in book_asks}
            for side, levels in (("BUY", bids), ("SELL", asks)):
                for price, recorded in levels:
                    assert published.get((side, price), D(0)) == recorded + ours_at(side, price)
        elif step[0] == "trade":
            _, ticks, lots, taker_side = step
            venue.replay_trade(SYMBOL, ticks * tick, lots * lot, taker_side, now_ms)
        elif step[0] == "order":
            _, ticks, lots, side = step
            placed.append(
                venue.place_order(
                    "us", SYMBOL, side=side, order_type="LIMIT", quantity=lots * lot, price=ticks * tick, now_ms=now_ms
                ).order_id
            )
        elif placed:
            try:
                venue.cancel_order("us", SYMBOL, order_id=placed[step[1] % len(placed)], now_ms=now_ms)
            except VenueError as error:
                assert error.code == -2011
        bid, ask = venue.best_bid_ask(SYMBOL)
        assert bid is None or ask is None or bid[0] < ask[0]
        _, book_bids, book_asks = venue.depth(SYMBOL, 1000)
        assert all(q > 0 for _, q in book_bids + book_asks)
        for side, levels in (("BUY", book_bids), ("SELL", book_asks)):
            assert all(q >= ours_at(side, p) for p, q in levels)
    check_deltas_rebuild_depth(venue, events)
    fills = [e for e in events if isinstance(e, OrderEvent) and e.execution_type == "TRADE"]
    position = sum(((f.last_filled_qty if f.side == "BUY" else -f.last_filled_qty) for f in fills), D(0))
    assert position == venue.positions("us")[0].size
    prints = [e for e in events if isinstance(e, TradePrint)]
    assert len({p.trade_id for p in prints}) == len(prints)


def test_the_engine_docstring_examples_run() -> None:
    result = doctest.testmod(marketmaker.sim.engine, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

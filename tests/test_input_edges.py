"""Edge inputs found while testing: each must be refused with the right error, or read exactly."""

from __future__ import annotations

import math

import pytest
from marketmaker import OrderBook, SharedState, Side
from marketmaker.errors import InvalidParameterError, InvalidPriceError, InvalidSizeError


def test_a_bool_is_neither_a_price_nor_a_size() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    with pytest.raises(InvalidPriceError, match="bool"):
        book.set_level(Side.BUY, True, 1.0)
    with pytest.raises(InvalidSizeError, match="bool"):
        book.set_level(Side.BUY, 100.0, True)
    assert book.bids() == []


def test_an_int_too_large_for_a_float_is_a_bad_size() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    with pytest.raises(InvalidSizeError, match="out of range"):
        book.set_level(Side.BUY, 100.0, 10**400)
    assert book.bids() == []


def test_an_empty_side_sums_to_positive_zero() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    for side in (Side.BUY, Side.SELL):
        total = book.top_size(side, 5)
        assert total == 0.0 and math.copysign(1.0, total) == 1.0
        within = book.size_within_bps(side, 10.0)
        assert math.copysign(1.0, within) == 1.0


def test_shared_state_refuses_a_zero_watch_depth_at_once() -> None:
    with pytest.raises(InvalidParameterError, match="watch_depths"):
        SharedState("binance", watch_depths=[0])

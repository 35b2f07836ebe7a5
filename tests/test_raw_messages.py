"""The raw-text fast path: ``OrderBook.apply_binance_json`` parses the websocket message in Rust
and must do exactly what the dict path does, on the real recording and on bad input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from marketmaker import BookStatus, OrderBook, UpdateOutcome
from marketmaker.errors import MalformedMessageError, OffTickError, SequenceGapError


def raw_lines(path: Path) -> list[tuple[int, str]]:
    with gzip.open(path, "rt") as lines:
        return [(int(stamp), payload.strip()) for stamp, _, payload in (line.partition(" ") for line in lines)]


@pytest.mark.data
@pytest.mark.parametrize("name", ["btcusdt_20240808.gz", "ethusdt_20240808.gz"])
def test_raw_text_builds_the_same_book_as_parsed_events(data_file: Callable[[str], Path], name: str) -> None:
    tick = "0.1" if name.startswith("btc") else "0.01"
    from_text = OrderBook("X", tick, sequencing="binance")
    from_dict = OrderBook("X", tick, sequencing="binance")
    ticker_checks = 0
    for stamp, payload in raw_lines(data_file(f"binance-usdm/{name}")):
        message = json.loads(payload)
        if "lastUpdateId" in message:
            from_text.apply_binance_snapshot(message)
            from_dict.apply_binance_snapshot(message)
            continue
        data = message["data"]
        if data.get("e") == "depthUpdate":
            # Half the messages as str, half as bytes; both enveloped as recorded.
            text: str | bytes = payload if stamp % 2 else payload.encode()
            outcome = from_text.apply_binance_json(text, receive_time_ns=stamp)
            assert outcome == from_dict.apply_binance_event(data, receive_time_ns=stamp)
            assert outcome in (UpdateOutcome.APPLIED, UpdateOutcome.BUFFERED, UpdateOutcome.STALE)
            assert from_text.last_update_id == from_dict.last_update_id
        elif data.get("e") == "bookTicker" and from_text.last_update_id == data["u"]:
            assert (from_text.best_bid, from_text.best_bid_size) == (float(data["b"]), float(data["B"]))
            assert (from_text.best_ask, from_text.best_ask_size) == (float(data["a"]), float(data["A"]))
            ticker_checks += 1
    assert from_text.status == BookStatus.LIVE
    assert from_text.bids() == from_dict.bids() and from_text.asks() == from_dict.asks()
    assert from_text.exchange_time_ns == from_dict.exchange_time_ns
    # Only the bookTickers that arrive after their depth update can be checked this way (the
    # full 629-of-629 check is in test_recorded_data.py): 126 for BTCUSDT, 80 for ETHUSDT.
    assert ticker_checks > 50


def test_bad_raw_messages_are_refused_whole() -> None:
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance", strict=True)
    book.apply_snapshot([["100.0", "1"]], [["100.2", "1"]], last_update_id=10)
    before = (book.bids(), book.asks(), book.last_update_id)
    with pytest.raises(OffTickError, match=r"asks\[0\]"):
        book.apply_binance_json(
            '{"e":"depthUpdate","E":1,"U":9,"u":11,"pu":8,"b":[["100.1","2"]],"a":[["100.25","1"]]}'
        )
    with pytest.raises(MalformedMessageError):
        book.apply_binance_json('{"e":"depthUpdate","U":9}')
    with pytest.raises(MalformedMessageError):
        book.apply_binance_json(b"\xff\xfe")
    with pytest.raises(TypeError):
        book.apply_binance_json(42)  # type: ignore[arg-type]
    assert (book.bids(), book.asks(), book.last_update_id) == before
    assert (
        book.apply_binance_json('{"e":"depthUpdate","E":1,"U":9,"u":11,"pu":8,"b":[["100.1","2"]],"a":[]}')
        == UpdateOutcome.APPLIED
    )
    with pytest.raises(SequenceGapError):
        book.apply_binance_json('{"e":"depthUpdate","E":2,"U":20,"u":21,"pu":19,"b":[],"a":[]}')
    assert book.status == BookStatus.NEEDS_RESYNC

"""Reading recorded market data: the raw Binance USDⓈ-M websocket capture format.

A capture is gzip text, one message per line: ``<local receive time, ns> <raw JSON>``. Stream
messages are combined-stream envelopes (``{"stream": ..., "data": {...}}``) carrying
``depthUpdate``, ``trade``, ``aggTrade`` and ``bookTicker`` events; a REST depth snapshot sits
inline as a bare object with ``lastUpdateId``. Exchange times (``E``/``T``, ms) are event time;
the local stamps are receive times.

:func:`replay_binance_capture` rebuilds the book exactly as the live engine does (buffer,
snapshot, bridge) and :func:`binance_feature_stream` turns a capture into the arrays that
:meth:`marketmaker.FeatureEngine.run_levels` replays.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from marketmaker._core import OrderBook, UpdateOutcome
from marketmaker.errors import MalformedMessageError

__all__ = [
    "BinanceFeatureStream",
    "CaptureMessage",
    "binance_feature_stream",
    "read_binance_capture",
    "replay_binance_capture",
]


@dataclass(frozen=True)
class CaptureMessage:
    """One line of a capture: when it was received, what it is, and its payload."""

    receive_time_ns: int
    kind: str  # "depthUpdate", "trade", "aggTrade", "bookTicker", "snapshot", or the event's "e"
    data: dict[str, Any]
    line: int


def read_binance_capture(path: str | Path) -> Iterator[CaptureMessage]:
    """Yields every message of a capture in file order.

    Raises
    ------
    MalformedMessageError
        For a line that is not ``<integer> <JSON object>``; the message names the file and line.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as lines:
        for number, text in enumerate(lines, start=1):
            stamp, _, payload = text.partition(" ")
            try:
                receive_time_ns = int(stamp)
                message = json.loads(payload)
            except ValueError as error:
                raise MalformedMessageError(f"{path}:{number}: not '<ns> <json>': {error}") from None
            if not isinstance(message, dict):
                raise MalformedMessageError(f"{path}:{number}: expected a JSON object")
            if "lastUpdateId" in message:
                yield CaptureMessage(receive_time_ns, "snapshot", message, number)
                continue
            data = message.get("data", message)
            yield CaptureMessage(receive_time_ns, str(data.get("e", "unknown")), data, number)


def replay_binance_capture(path: str | Path, book: OrderBook) -> Iterator[tuple[CaptureMessage, UpdateOutcome | None]]:
    """Feeds a capture's depth messages and snapshot to ``book`` (Binance sequencing), yielding
    each message with the outcome of a depth update (None for other messages)."""
    for message in read_binance_capture(path):
        if message.kind == "depthUpdate":
            yield message, book.apply_binance_event(message.data, receive_time_ns=message.receive_time_ns)
        elif message.kind == "snapshot":
            book.apply_binance_snapshot(message.data, receive_time_ns=message.receive_time_ns)
            yield message, None
        else:
            yield message, None


@dataclass(frozen=True)
class BinanceFeatureStream:
    """A capture as arrays: the book's snapshot levels, then every level update that the book
    applied after it (flattened; ``message_ends`` marks each message's last level) and every
    trade."""

    snapshot_bids: list[tuple[str, str]]
    snapshot_asks: list[tuple[str, str]]
    times_ns: npt.NDArray[np.int64]
    is_bid: npt.NDArray[np.bool_]
    prices: npt.NDArray[np.float64]
    sizes: npt.NDArray[np.float64]
    message_ends: npt.NDArray[np.bool_]
    trade_times_ns: npt.NDArray[np.int64]
    trade_prices: npt.NDArray[np.float64]
    trade_sizes: npt.NDArray[np.float64]
    trade_is_buy: npt.NDArray[np.bool_]

    @property
    def message_count(self) -> int:
        return int(self.message_ends.sum())


def binance_feature_stream(path: str | Path, tick_size: float | str) -> BinanceFeatureStream:
    """Reads a capture into a :class:`BinanceFeatureStream`. The stream starts at the snapshot:
    depth messages are kept only from the one that bridges it on, exactly as a live book applies
    them; times are exchange times (``E`` for depth, ``T`` for trades) in nanoseconds."""
    book = OrderBook("CAPTURE", tick_size, sequencing="binance")
    snapshot: dict[str, Any] | None = None
    times: list[int] = []
    sides: list[bool] = []
    prices: list[float] = []
    sizes: list[float] = []
    ends: list[bool] = []
    trades: list[tuple[int, float, float, bool]] = []
    for message, outcome in replay_binance_capture(path, book):
        data = message.data
        if message.kind == "snapshot":
            snapshot = data
        elif message.kind == "depthUpdate" and outcome == UpdateOutcome.APPLIED:
            time_ns = int(data["E"]) * 1_000_000
            levels = [(True, p, q) for p, q in data["b"]] + [(False, p, q) for p, q in data["a"]]
            for index, (is_bid, price, size) in enumerate(levels):
                times.append(time_ns)
                sides.append(is_bid)
                prices.append(float(price))
                sizes.append(float(size))
                ends.append(index == len(levels) - 1)
        elif message.kind in ("trade", "aggTrade") and snapshot is not None:
            trades.append((int(data["T"]) * 1_000_000, float(data["p"]), float(data["q"]), not data["m"]))
    if snapshot is None:
        raise MalformedMessageError(f"{path}: no depth snapshot (an object with lastUpdateId) in the capture")
    trade_array = np.array(trades, dtype=np.float64).reshape(-1, 4)
    return BinanceFeatureStream(
        snapshot_bids=[tuple(level) for level in snapshot["bids"]],
        snapshot_asks=[tuple(level) for level in snapshot["asks"]],
        times_ns=np.array(times, dtype=np.int64),
        is_bid=np.array(sides, dtype=np.bool_),
        prices=np.array(prices, dtype=np.float64),
        sizes=np.array(sizes, dtype=np.float64),
        message_ends=np.array(ends, dtype=np.bool_),
        trade_times_ns=np.array([t[0] for t in trades], dtype=np.int64),
        trade_prices=trade_array[:, 1].copy(),
        trade_sizes=trade_array[:, 2].copy(),
        trade_is_buy=trade_array[:, 3].astype(np.bool_),
    )

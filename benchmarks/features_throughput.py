"""Feature-engine cost (issue 3): per tick from Python on the real BTCUSDT stream, and the
batch path (book + all features inside Rust) on the 1M-update synthetic stream of
``book_throughput.py``.

    python benchmarks/features_throughput.py                 # both parts, ~1 min
    python benchmarks/features_throughput.py --repeats 9 --json /tmp/features.json

Per tick: every depth message of ``../shared/data/binance-usdm/btcusdt_20240808.gz`` after the
snapshot (6,545 messages) is applied with ``book.apply_binance_event`` and the recorded trades
are pushed to a tape, once without and once with ``engine.update(book, tape)`` after each
message (depths [5, 50]); the cost the feature update adds is the difference per message. The
two loops alternate, repeated; medians are reported. The batch part times
``FeatureEngine.run_levels`` over the whole synthetic stream (a feature update after every
level update) next to ``OrderBook.apply_levels_batch`` on the same stream (book only).

Targets: under 1 µs per depth message added by the features; at least 5M updates/s in batch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import marketmaker
from book_throughput import make_stream, to_price
from marketmaker import FeatureEngine, OrderBook, TradeTape
from marketmaker.recordings import read_binance_capture

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm" / "btcusdt_20240808.gz"


def recorded_messages() -> tuple[list[dict], dict, list[tuple[str, dict]]]:
    """The depth events before the snapshot, the snapshot, and every later depth or trade
    event, in file order."""
    snapshot: dict | None = None
    before: list[dict] = []
    events: list[tuple[str, dict]] = []
    for message in read_binance_capture(DATA):
        if message.kind == "snapshot":
            snapshot = message.data
        elif message.kind == "depthUpdate" and snapshot is None:
            before.append(message.data)
        elif message.kind == "depthUpdate":
            events.append(("depth", message.data))
        elif message.kind == "trade" and snapshot is not None:
            events.append(("trade", message.data))
    assert snapshot is not None
    return before, snapshot, events


def fresh_book(recording: tuple[list[dict], dict, list]) -> OrderBook:
    """A book synced as the live engine syncs it: buffered diffs, then the snapshot."""
    before, snapshot, _ = recording
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    for event in before:
        book.apply_binance_event(event)
    book.apply_binance_snapshot(snapshot)
    assert book.is_live
    return book


def run_book_only(recording: tuple) -> float:
    book = fresh_book(recording)
    events = recording[2]
    tape = TradeTape(10_000)
    apply = book.apply_binance_event
    push = tape.push_binance_trade
    start = time.perf_counter()
    for kind, data in events:
        if kind == "depth":
            apply(data)
        else:
            push(data)
    return time.perf_counter() - start


def run_with_features(recording: tuple) -> float:
    book = fresh_book(recording)
    events = recording[2]
    tape = TradeTape(10_000)
    engine = FeatureEngine(depths=[5, 50], tick_window=100)
    apply = book.apply_binance_event
    push = tape.push_binance_trade
    update = engine.update
    start = time.perf_counter()
    for kind, data in events:
        if kind == "depth":
            apply(data)
            update(book, tape)
        else:
            push(data)
    elapsed = time.perf_counter() - start
    assert engine.ready and engine.tick_count > 6000 and book.is_live
    return elapsed


def timed_updates(recording: tuple) -> tuple[list[int], int]:
    """Each ``engine.update`` timed on its own with ``perf_counter_ns`` (the book and tape work is
    outside the timed span), and the timer's own cost (median of empty spans)."""
    book = fresh_book(recording)
    tape = TradeTape(10_000)
    engine = FeatureEngine(depths=[5, 50], tick_window=100)
    apply = book.apply_binance_event
    push = tape.push_binance_trade
    update = engine.update
    clock = time.perf_counter_ns
    spans: list[int] = []
    empty: list[int] = []
    for kind, data in recording[2]:
        if kind == "depth":
            apply(data)
            start = clock()
            update(book, tape)
            spans.append(clock() - start)
            start = clock()
            empty.append(clock() - start)
        else:
            push(data)
    return spans, int(statistics.median(empty))


def per_tick(repeats: int) -> dict:
    if not DATA.exists():
        return {"skipped": f"{DATA} is absent"}
    recording = recorded_messages()
    events = recording[2]
    depth_messages = sum(1 for kind, _ in events if kind == "depth")
    book_only: list[float] = []
    with_features: list[float] = []
    for _ in range(repeats):
        book_only.append(run_book_only(recording))
        with_features.append(run_with_features(recording))
    added = [(w - b) / depth_messages * 1e9 for w, b in zip(with_features, book_only)]
    spans: list[int] = []
    timer = []
    for _ in range(repeats):
        run_spans, run_timer = timed_updates(recording)
        spans.extend(run_spans)
        timer.append(run_timer)
    timer_ns = statistics.median(timer)
    spans.sort()
    return {
        "update_ns_median": spans[len(spans) // 2] - timer_ns,
        "update_ns_p99": spans[int(len(spans) * 0.99)] - timer_ns,
        "timer_ns": timer_ns,
        "depth_messages": depth_messages,
        "trades": len(events) - depth_messages,
        "book_only_ns_per_message": statistics.median(book_only) / depth_messages * 1e9,
        "with_features_ns_per_message": statistics.median(with_features) / depth_messages * 1e9,
        "features_added_ns_per_message_median": statistics.median(added),
        "features_added_ns_per_message_runs": added,
    }


def batch(n: int, repeats: int, seed: int) -> dict:
    stream = make_stream(n, seed)
    bids = list(zip(to_price(stream.snap_bid_ticks).tolist(), stream.snap_bid_size.tolist()))
    asks = list(zip(to_price(stream.snap_ask_ticks).tolist(), stream.snap_ask_size.tolist()))
    times = np.arange(n, dtype=np.int64) * 1_000_000  # one update per millisecond

    def book() -> OrderBook:
        b = OrderBook("SYN", 0.1, watch_depths=[5, 20])
        b.apply_levels(bids=bids, asks=asks)
        return b

    features_rates: list[float] = []
    book_rates: list[float] = []
    for _ in range(repeats):
        b = book()
        engine = FeatureEngine(depths=[5, 50], tick_window=100)
        start = time.perf_counter()
        out = engine.run_levels(b, times, stream.is_bid, stream.ticks, stream.size)
        features_rates.append(n / (time.perf_counter() - start))
        assert len(out["skew"]) == n and np.isfinite(out["skew"]).all()
        b = book()
        start = time.perf_counter()
        b.apply_levels_batch(stream.is_bid, stream.ticks, stream.size)
        book_rates.append(n / (time.perf_counter() - start))
    return {
        "updates": n,
        "features_updates_per_s_median": statistics.median(features_rates),
        "features_updates_per_s_runs": features_rates,
        "book_only_updates_per_s_median": statistics.median(book_rates),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240808)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor(),
        "marketmaker": marketmaker.__version__,
    }
    tick = per_tick(args.repeats)
    bulk = batch(args.updates, max(3, args.repeats // 2), args.seed)
    print(f"machine: {machine}")
    if "skipped" in tick:
        print(f"per tick: skipped ({tick['skipped']})")
    else:
        print(
            f"per tick on real BTCUSDT ({tick['depth_messages']} depth messages, {tick['trades']} trades, median of {args.repeats}):\n"
            f"  book only          {tick['book_only_ns_per_message']:8.0f} ns/message\n"
            f"  book + features    {tick['with_features_ns_per_message']:8.0f} ns/message\n"
            f"  added by features  {tick['features_added_ns_per_message_median']:8.0f} ns/message (difference of the loops)\n"
            f"  engine.update      {tick['update_ns_median']:8.0f} ns median, {tick['update_ns_p99']:.0f} ns p99, each call timed"
            f" (timer's own {tick['timer_ns']:.0f} ns taken off)  (target < 1000)"
        )
    print(
        f"batch on {bulk['updates']:,} synthetic updates (median):\n"
        f"  book + features    {bulk['features_updates_per_s_median'] / 1e6:6.2f} M updates/s  (target >= 5)\n"
        f"  book only          {bulk['book_only_updates_per_s_median'] / 1e6:6.2f} M updates/s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "per_tick": tick, "batch": bulk}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Quote + diff cost per tick, and the whole tick (issue 4), called from Python.

    python benchmarks/tick_throughput.py
    python benchmarks/tick_throughput.py --repeats 9 --json /tmp/tick.json

1. ``quote() + plan()``: the ladder model with 5 levels a side on every depth message's best
   bid/ask of the real BTCUSDT stream, planned against the account that holds our live orders
   (every action acknowledged at once, untimed), so the diff works against a realistic, mostly
   unchanged set of our orders. Target: under 2 µs per tick.
2. The whole tick per depth message on the real BTCUSDT stream: ``book.apply_binance_event``,
   ``engine.update``, ``generator.quote_from`` and ``planner.plan``. Target: under 5 µs median
   per message. Measured twice: from parsed dicts, and from the message's text handed to
   ``book.apply_binance_json`` (parsed in Rust, the live loop's fast path).

Each message is timed on its own (``perf_counter_ns``); medians and 99th percentiles over all
messages and repeats are reported, so the cost of the timer itself (~50 ns) is included.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import marketmaker
from features_throughput import DATA, fresh_book, recorded_messages
from marketmaker import Account, FeatureEngine, MarketMaker, OrderPlanner, QuoteGenerator, RiskGate, TradeTape


def ladder() -> QuoteGenerator:
    return QuoteGenerator(
        "ladder",
        tick_size=0.1,
        lot_size=0.001,
        min_notional=5.0,
        bps=2.0,
        orders_per_side=5,
        final_order_distance=5.0,
        leverage=5.0,
        size_fraction=0.05,
    )


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(share * len(ordered)))])


def acknowledge(account: Account, actions: list) -> None:
    """The venue acknowledges every action at once (not timed): the account holds our live
    orders, as in the live loop."""
    for action in actions:
        if action.kind == "cancel":
            account.close_order(action.client_order_id)
        elif action.kind == "place":
            account.add_order(action.client_order_id, action.side, action.price, action.size)
            account.acknowledge_order(action.client_order_id)


def quote_and_plan(recording: tuple, repeats: int) -> dict:
    book = fresh_book(recording)
    mids = []
    for kind, data in recording[2]:
        if kind == "depth":
            book.apply_binance_event(data)
            mids.append((book.best_bid, book.best_ask, book.mid))
    durations: list[int] = []
    actions_total = 0
    for _ in range(repeats):
        generator = ladder()
        planner = OrderPlanner("bench-", requote_tolerance_bps=1.0)
        account = Account(balance=100_000.0)
        quote = generator.quote
        plan = planner.plan
        clock = time.perf_counter_ns
        for best_bid, best_ask, mid in mids:
            start = clock()
            actions = plan(quote(mid, best_bid=best_bid, best_ask=best_ask, balance=100_000.0, skew=0.1), account)
            durations.append(clock() - start)
            actions_total += len(actions)
            acknowledge(account, actions)
    return {
        "ticks": len(durations),
        "median_ns": statistics.median(durations),
        "p99_ns": percentile(durations, 0.99),
        "actions_per_tick": actions_total / len(durations),
    }


def whole_tick(recording: tuple, repeats: int, raw: bool = False) -> dict:
    """With ``raw``, each depth message is handed over as its websocket text
    (``apply_binance_json``, parsed in Rust) instead of a parsed dict."""
    texts = (
        {id(data): json.dumps(data, separators=(",", ":")) for kind, data in recording[2] if kind == "depth"}
        if raw
        else {}
    )
    durations: list[int] = []
    for _ in range(repeats):
        book = fresh_book(recording)
        tape = TradeTape(10_000)
        engine = FeatureEngine(depths=[5, 50], tick_window=100)
        generator = ladder()
        planner = OrderPlanner("bench-", requote_tolerance_bps=1.0)
        account = Account(balance=100_000.0)
        apply = book.apply_binance_event
        apply_text = book.apply_binance_json
        push = tape.push_binance_trade
        update = engine.update
        quote_from = generator.quote_from
        plan = planner.plan
        clock = time.perf_counter_ns
        for kind, data in recording[2]:
            if kind != "depth":
                push(data)
                continue
            if raw:
                text = texts[id(data)]
                start = clock()
                apply_text(text)
            else:
                start = clock()
                apply(data)
            update(book, tape)
            actions = plan(quote_from(book, engine, account), account)
            durations.append(clock() - start)
            acknowledge(account, actions)
    return {
        "messages": len(durations),
        "median_ns": statistics.median(durations),
        "p99_ns": percentile(durations, 0.99),
    }


def fused_tick(recording: tuple, repeats: int, risk: bool = False) -> dict:
    """The whole tick as one call: ``MarketMaker.on_depth_message(text)`` applies the message
    (parsed in Rust), updates the features, quotes, diffs against the account's open orders and
    (with ``risk``) passes the risk gate, inside the core."""
    texts = {id(data): json.dumps(data, separators=(",", ":")) for kind, data in recording[2] if kind == "depth"}
    durations: list[int] = []
    quoted = 0
    for _ in range(repeats):
        book = fresh_book(recording)
        tape = TradeTape(10_000)
        account = Account(balance=100_000.0)
        gate = RiskGate(max_position=1.0, max_order_size=1.0, max_open_orders=20, stale_book_ms=0.0) if risk else None
        maker = MarketMaker(
            book,
            FeatureEngine(depths=[5, 50], tick_window=100),
            ladder(),
            OrderPlanner("bench-", requote_tolerance_bps=1.0),
            account,
            tape=tape,
            risk=gate,
        )
        on_depth = maker.on_depth_message
        push = tape.push_binance_trade
        clock = time.perf_counter_ns
        for kind, data in recording[2]:
            if kind != "depth":
                push(data)
                continue
            text = texts[id(data)]
            start = clock()
            actions = on_depth(text, now_ns=0)
            durations.append(clock() - start)
            quoted += maker.decision == "quoted"
            acknowledge(account, actions)
    return {
        "messages": len(durations),
        "quoted_share": quoted / len(durations),
        "median_ns": statistics.median(durations),
        "p99_ns": percentile(durations, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent")
        return 0
    recording = recorded_messages()
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "marketmaker": marketmaker.__version__}
    qp = quote_and_plan(recording, args.repeats)
    tick = whole_tick(recording, args.repeats)
    tick_raw = whole_tick(recording, args.repeats, raw=True)
    fused = fused_tick(recording, args.repeats)
    fused_risk = fused_tick(recording, args.repeats, risk=True)
    print(f"machine: {machine}")
    print(
        f"quote() + plan(), ladder 5 a side, {qp['ticks']:,} ticks: median {qp['median_ns'] / 1000:.2f} µs, "
        f"p99 {qp['p99_ns'] / 1000:.2f} µs, {qp['actions_per_tick']:.2f} actions/tick  (target < 2 µs)"
    )
    print(
        f"whole tick (book + features + quote + plan), {tick['messages']:,} messages: median {tick['median_ns'] / 1000:.2f} µs, "
        f"p99 {tick['p99_ns'] / 1000:.2f} µs  (target < 5 µs median)"
    )
    print(
        f"whole tick from the raw message text (apply_binance_json), {tick_raw['messages']:,} messages: median {tick_raw['median_ns'] / 1000:.2f} µs, "
        f"p99 {tick_raw['p99_ns'] / 1000:.2f} µs  (target < 5 µs median)"
    )
    for label, result in (("", fused), (" + risk gate", fused_risk)):
        print(
            f"whole tick as one call (MarketMaker.on_depth_message{label}), {result['messages']:,} messages "
            f"({result['quoted_share']:.0%} quoted): median {result['median_ns'] / 1000:.2f} µs, "
            f"p99 {result['p99_ns'] / 1000:.2f} µs  (target < 5 µs median)"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine,
                    "quote_and_plan": qp,
                    "whole_tick": tick,
                    "whole_tick_raw": tick_raw,
                    "whole_tick_one_call": fused,
                    "whole_tick_one_call_risk": fused_risk,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

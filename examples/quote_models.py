"""Run the three quoting models on a simulated mid price and print (or plot) their quotes.

    python examples/quote_models.py            # prints a table every 50 steps
    python examples/quote_models.py --plot q.png   # also plots, if matplotlib is installed

The mid is a seeded random walk; a toy fill model (a quote at distance d fills with probability
A·exp(−κ d)·dt, as in Avellaneda–Stoikov's simulation) moves the inventory so that the models'
inventory handling shows.
"""

from __future__ import annotations

import argparse
import math
import random

from marketmaker import QuoteGenerator

# Avellaneda–Stoikov's simulation: S0 = 100, T = 1, sigma = 2, dt = 0.005, gamma = 0.1, k = 1.5, A = 140
S0, T, SIGMA, DT, GAMMA, KAPPA, A = 100.0, 1.0, 2.0, 0.005, 0.1, 1.5, 140.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", metavar="PNG")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    models = {
        "avellaneda_stoikov": QuoteGenerator(
            "avellaneda_stoikov",
            tick_size=0.01,
            lot_size=1,
            gamma=GAMMA,
            kappa=KAPPA,
            horizon=T,
            rolling=False,
            order_size=1,
            max_inventory=50,
        ),
        "glft": QuoteGenerator(
            "glft",
            tick_size=0.01,
            lot_size=1,
            gamma=GAMMA,
            kappa=KAPPA,
            arrival_rate=A,
            order_size=1,
            max_inventory=50,
        ),
        "ladder": QuoteGenerator(
            "ladder",
            tick_size=0.01,
            lot_size=1,
            bps=70,
            orders_per_side=3,
            final_order_distance=3,
            leverage=1,
            size_fraction=0.06,
            inventory_limit=0.5,
        ),
    }
    inventory = {name: 0.0 for name in models}
    history: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in models}
    mid = S0
    steps = int(T / DT)
    print(f"{'step':>4} {'mid':>8}  " + "  ".join(f"{name:>28}" for name in models))
    for step in range(steps):
        time_left = T - step * DT
        row = []
        for name, generator in models.items():
            quotes = generator.quote(
                mid, inventory=inventory[name], volatility=SIGMA, time_left=time_left, balance=10_000
            )
            bid = quotes.bids[0][0] if quotes.bids else math.nan
            ask = quotes.asks[0][0] if quotes.asks else math.nan
            if quotes.bids and rng.random() < A * math.exp(-KAPPA * (mid - bid)) * DT:
                inventory[name] += quotes.bids[0][1]
            if quotes.asks and rng.random() < A * math.exp(-KAPPA * (ask - mid)) * DT:
                inventory[name] -= quotes.asks[0][1]
            history[name].append((mid, bid, ask, inventory[name]))
            row.append(f"{bid:8.2f} {ask:8.2f} q={inventory[name]:+5.0f}")
        if step % 50 == 0:
            print(f"{step:>4} {mid:8.2f}  " + "  ".join(f"{cell:>28}" for cell in row))
        mid += SIGMA * math.sqrt(DT) * rng.choice((-1.0, 1.0))
    for name in models:
        print(f"{name}: final inventory {inventory[name]:+.0f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(len(models), 1, sharex=True, figsize=(9, 8))
        for axis, (name, rows) in zip(axes, history.items()):
            axis.plot([r[0] for r in rows], label="mid", color="black", linewidth=0.8)
            axis.plot([r[1] for r in rows], label="bid", linewidth=0.8)
            axis.plot([r[2] for r in rows], label="ask", linewidth=0.8)
            axis.set_title(name)
            axis.legend(loc="upper left")
        figure.tight_layout()
        figure.savefig(args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()

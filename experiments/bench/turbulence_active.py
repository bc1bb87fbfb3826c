"""Runs chosen by committee on a cheap proxy against uniform n, on the error of predicted n.

    python -m experiments.bench.turbulence_active                        # hydro 32^3, proxy 16^3
    python -m experiments.bench.turbulence_active --surrogate --budget 16 --seeds 1

An image-valued simulator cannot be scored before it runs, so the committee strategy runs each
candidate n first at low resolution (`oracle.with_resolution(proxy_grid)`: same seed, same
large-scale modes, same image size), scores it by the spread of the members' predicted n on
that proxy image, and spends full runs on the candidates with the largest spread. Each proxy
run is charged (proxy_grid / grid)^4 of a full run (cells x steps). The uniform strategy spends
the same budget on full runs at uniformly drawn n. Both refit a `CNNCommittee` regressor of n
(the four flips of each run's map as training images) after every round and are scored by the
RMSE of predicted n on a fixed set of full runs spread over [3, 4.5].

Writes results/bench/turbulence_active/curves.json and curves.png (RMSE against cost).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from alframe.learners import CNNCommittee
from simulators.turbulence import CloudSetup, InvalidSetting, make_oracle

STRATEGIES = ("uniform", "committee_proxy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="turbulence_active", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=32)
    parser.add_argument("--proxy-grid", type=int, default=16)
    parser.add_argument("--surrogate", action="store_true", help="lognormal surrogate instead of the solver")
    parser.add_argument("--duration-myr", type=float, default=0.5)
    parser.add_argument("--budget", type=float, default=32.0, help="cost in full runs")
    parser.add_argument("--initial", type=int, default=8, help="uniform full runs to start from")
    parser.add_argument("--batch", type=int, default=4, help="full runs per round")
    parser.add_argument("--candidates", type=int, default=16, help="proxy runs per round")
    parser.add_argument("--test-runs", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600, help="steps of a fit from scratch")
    parser.add_argument("--out", type=Path, default=Path("results/bench/turbulence_active"))
    args = parser.parse_args(argv)
    for name in ("initial", "batch", "candidates", "test_runs", "seeds", "members", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.budget < args.initial:
        parser.error(f"--budget must be >= --initial ({args.initial}), got {args.budget}")
    return args


def flips(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rows (n, H*W) -> the four flips of each, (4n, H*W)."""
    square = images.reshape(-1, *shape)
    return np.concatenate([square, square[:, ::-1], square[:, :, ::-1], square[:, ::-1, ::-1]]).reshape(
        4 * len(images), -1)


def run_strategy(strategy: str, args: argparse.Namespace, seed: int, full, proxy, test) -> list[dict]:
    """One learning curve: [{cost, full_runs, rmse}] after every refit."""
    rng = np.random.default_rng(seed)
    shape = full.image_shape
    low, high = full.space.lower[0], full.space.upper[0]
    capacity = 4 * (int(args.budget) + args.batch)
    committee = CNNCommittee(image_shape=shape, members=args.members, conv_features=(8, 16, 16),
                             dense=(32, 16), task="regression", n_classes=None, steps_first=args.steps,
                             steps_per_sample=None, steps_warm=max(args.steps // 4, 1), capacity=capacity)
    proxy_cost = (args.proxy_grid / args.grid) ** 4
    queries = rng.uniform(low, high, (args.initial, 1))
    outcome = full.run(queries)
    x, n_values, cost = outcome.y, queries[:, 0], float(args.initial)
    curve = []
    key = jax.random.key(seed)
    while True:
        keep = np.all(np.isfinite(x), axis=1)
        key, fit_key = jax.random.split(key)
        committee = committee.fit(flips(x[keep], shape), np.tile(n_values[keep], 4), key=fit_key)
        predicted = np.asarray(committee.predict_members(test["x"])).mean(axis=0)[:, 0]
        curve.append({"cost": cost, "full_runs": len(x),
                      "rmse": float(np.sqrt(np.mean((predicted - test["n"]) ** 2)))})
        step_cost = args.batch + (args.candidates * proxy_cost if strategy == "committee_proxy" else 0)
        if cost + step_cost > args.budget + 1e-9:
            return curve
        if strategy == "uniform":
            chosen = rng.uniform(low, high, (args.batch, 1))
        else:
            candidates = rng.uniform(low, high, (args.candidates, 1))
            cheap = proxy.run(candidates).y
            spread = np.full(len(candidates), -np.inf)
            ok = np.all(np.isfinite(cheap), axis=1)
            spread[ok] = np.asarray(committee.predict_members(cheap[ok])).std(axis=0)[:, 0]
            chosen = candidates[np.argsort(-spread)[:args.batch]]
        new = full.run(chosen)
        x, n_values, cost = np.concatenate([x, new.y]), np.concatenate([n_values, chosen[:, 0]]), cost + step_cost


def cost_to_reach(curve: list[dict], target: float) -> float | None:
    """Least cost at which the RMSE is at or below `target`; None if never."""
    hits = [point["cost"] for point in curve if point["rmse"] <= target]
    return min(hits) if hits else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        full = make_oracle(args.grid, model="lognormal" if args.surrogate else "hydro",
                           image_size=args.proxy_grid, setup=CloudSetup(duration_myr=args.duration_myr))
        proxy = full.with_resolution(args.proxy_grid)
    except InvalidSetting as exc:
        print(f"turbulence_active: error: {exc}", file=sys.stderr)
        return 2
    # A separate oracle seed: no test run shares a velocity field with a training run.
    test_oracle = make_oracle(args.grid, model=full.simulator.model, image_size=args.proxy_grid,
                              setup=full.simulator.setup, seed=full.simulator.seed + 1)
    test_n = np.linspace(3.0, 4.5, args.test_runs)
    test = {"x": test_oracle.run(test_n[:, None]).y, "n": test_n}
    start = time.perf_counter()
    curves = {name: [] for name in STRATEGIES}
    for seed in tqdm(range(args.seeds), desc="seeds"):
        for name in STRATEGIES:
            curves[name].append(run_strategy(name, args, seed, full, proxy, test))
    # Target: the uniform strategy's median final error; cost to reach it per seed.
    target = float(np.median([c[-1]["rmse"] for c in curves["uniform"]]))
    reach = {name: [cost_to_reach(c, target) for c in runs] for name, runs in curves.items()}
    summary = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "proxy_cost": (args.proxy_grid / args.grid) ** 4, "target_rmse": target,
               "cost_to_reach": reach, "prior_rmse": float(np.std(test_n)), "curves": curves,
               "wall_s": time.perf_counter() - start}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(json.dumps(summary, indent=2))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for colour, (name, runs) in zip(("C0", "C1"), curves.items()):
        for i, curve in enumerate(runs):
            ax.plot([p["cost"] for p in curve], [p["rmse"] for p in curve], "o-", color=colour,
                    alpha=0.7, label=name if i == 0 else None)
    ax.axhline(summary["prior_rmse"], color="grey", ls=":", label="std of test n")
    ax.set_xlabel("cost (full runs; a proxy run counts (proxy/grid)^4)")
    ax.set_ylabel("RMSE of predicted n")
    ax.set_title(f"{'surrogate' if args.surrogate else 'hydro'} {args.grid}^3, proxy "
                 f"{args.proxy_grid}^3, {args.duration_myr:g} Myr", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "curves.png", dpi=120)
    plt.close(fig)
    print(f"target RMSE {target:.3f} (uniform's median final); cost to reach it: {reach}")
    print(f"wrote {args.out}/curves.json, curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

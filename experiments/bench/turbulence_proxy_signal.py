"""Does a committee's view of a cheap proxy run tell where its error on the full run is? The
check behind the turbulence strategies' choice of rating and proxy grid.

    python -m experiments.bench.turbulence_proxy_signal [--grid 64] [--proxies 32 16] [--train 16 32]
    python -m experiments.bench.turbulence_proxy_signal -- learner.committee.members=8

Simulates --pool runs of uniformly random n on the full grid and on every proxy grid (same
seeds), fits the `turbulence_active` preset's committee (`learner=cnn_index`) on --train of
them, --reps times each (arguments after `--` are Hydra overrides of that preset), and on the held-out rest measures the Spearman rank correlation of
the committee's squared error on the full maps with each rating a strategy could use:

- the members' variance on the full map (what query by committee would see if the full run
  were free), and on each proxy map (`committee_proxy`);
- the expected error on each proxy map, the debiased miss plus variance (`committee_proxy_error`).

Also the RMSE of n on the full and proxy maps, the proxy's shift (mean of proxy minus full
prediction) and the full-map RMSE by fifth of the n range. Writes
results/bench/turbulence_proxy_signal.json and prints one line per fit and a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from scipy.stats import spearmanr

from alframe.strategies.proxy import ProxyDisagreement, ProxyInverseError
from simulators.turbulence import resolution_cost, resolution_proxy

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.turbulence_proxy_signal",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=64, help="full runs' cells per side")
    parser.add_argument("--proxies", nargs="+", type=int, default=[32, 16], help="proxy grids")
    parser.add_argument("--train", nargs="+", type=int, default=[16, 32], help="training runs per fit")
    parser.add_argument("--reps", type=int, default=3, help="fits per training size")
    parser.add_argument("--pool", type=int, default=160, help="runs simulated; those not trained on are held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "turbulence_proxy_signal.json")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the preset (after --)")
    args = parser.parse_args(argv)
    if max(args.train) >= args.pool:
        parser.error(f"--pool must exceed the largest --train {max(args.train)}, got {args.pool}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=turbulence_active", f"simulator.n_cells={args.grid}",
                                                       f"budget={max(args.train)}", *args.overrides])
    oracle = instantiate(cfg.simulator)
    learner = instantiate(cfg.learner)
    rng = np.random.default_rng(args.seed)
    low, high = oracle.space.lower[0], oracle.space.upper[0]
    n = rng.uniform(low, high, size=(args.pool, 1))
    start = time.perf_counter()
    full = oracle.run(n)
    proxies = {cells: resolution_proxy(oracle, cells).run(n) for cells in args.proxies}
    print(f"simulated {args.pool} runs at {args.grid}^3 and {args.proxies} in {time.perf_counter() - start:.0f} s",
          flush=True)
    if not full.ok.all() or not all(p.ok.all() for p in proxies.values()):
        print("turbulence_proxy_signal: error: a simulation failed", file=sys.stderr)
        return 2
    disagreement, inverse = ProxyDisagreement(proxy=oracle, cost=1.0), ProxyInverseError(proxy=oracle, cost=1.0)
    fits = []
    for size in args.train:
        for rep in range(args.reps):
            order = rng.permutation(args.pool)
            train, held = order[:size], order[size:]
            committee = learner.fit(n[train], full.y[train], key=jax.random.key(rep))
            truth = n[held]
            members = np.asarray(committee.predict_members(full.y[held]))
            error = (members.mean(axis=0) - truth)[:, 0] ** 2
            fifths = np.minimum(((truth[:, 0] - low) / (high - low) * 5).astype(int), 4)
            fit = {"train": size, "rep": rep, "rmse": float(np.sqrt(error.mean())),
                   "rmse_by_fifth": [float(np.sqrt(error[fifths == f].mean())) for f in range(5)],
                   "spearman_variance_full": float(spearmanr(disagreement.rate(members, truth), error)[0])}
            for cells, proxy in proxies.items():
                on_proxy = np.asarray(committee.predict_members(proxy.y[held]))
                fit[f"rmse_proxy{cells}"] = float(np.sqrt(np.mean((on_proxy.mean(axis=0) - truth) ** 2)))
                fit[f"shift_proxy{cells}"] = float(np.mean(on_proxy.mean(axis=0) - members.mean(axis=0)))
                fit[f"spearman_variance_proxy{cells}"] = float(spearmanr(disagreement.rate(on_proxy, truth), error)[0])
                fit[f"spearman_error_proxy{cells}"] = float(spearmanr(inverse.rate(on_proxy, truth), error)[0])
            fits.append(fit)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in fit.items()
                           if k != "rmse_by_fifth"), flush=True)
    keys = [k for k in fits[0] if k.startswith(("spearman", "shift", "rmse_proxy"))]
    summary = {k: float(np.mean([f[k] for f in fits])) for k in keys}
    summary["proxy_cost"] = {str(c): resolution_cost(args.grid, c) for c in args.proxies}
    print("mean over fits: " + " ".join(f"{k}={v:.3f}" for k, v in summary.items() if isinstance(v, float)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"grid": args.grid, "proxies": args.proxies, "pool": args.pool,
                                    "seed": args.seed, "summary": summary, "fits": fits}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

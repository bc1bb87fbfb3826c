"""Labelling campaigns on the demo pool: committee-chosen items against random ones.

Each campaign is the one `alframe label RUN_DIR experiment=label_demo` serves, answered by a
script with the true class of every map (a labeller who never errs), through the same
`LabelSession` the page talks to. After every label the script waits for the background fit,
as a person slower than the fit would. Held-out accuracy after each label is read back from
the store, per strategy and seed.

    python -m experiments.bench.labelling [--labels 60] [--seeds 0 1 2 3]

Writes results/bench/labelling.json and results/bench/labelling.png and prints the mean
held-out accuracy per strategy at a few label counts, with the number of labels each needs to
reach the accuracy random items reach at the end (the budget-censored ones marked >).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = ("qbc_vote_entropy", "random")


def campaign(strategy: str, seed: int, labels: int, work: Path, pool: dict | None = None,
             n_initial: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n_labeled per round, accuracy per round) of one scripted campaign; `pool` holds demo
    settings (runs_per_class, test_runs_per_class, cache_dir) other than the preset's."""
    from experiments.cli import open_campaign
    from experiments.label_server import LabelSession
    from simulators.turbulence.label_demo import demo_truth

    pool = dict(pool or {})
    truth = demo_truth(**pool)
    run_dir = work / f"{strategy}-seed{seed}"
    overrides = ["experiment=label_demo", f"strategy={strategy}", f"seed={seed}", f"budget={labels}", "progress=false",
                 *(f"simulator.{k}={v}" for k, v in pool.items()),
                 *([f"n_initial={n_initial}"] if n_initial is not None else [])]
    with open_campaign(run_dir, overrides, create=True) as opened:
        session = LabelSession(opened)
        try:
            while True:
                item = session.next_item()
                if item.get("done"):
                    break
                if item["query_id"] is None:
                    time.sleep(0.02)
                    continue
                session.label(item["query_id"], truth[item["item"]])
                session.wait_for_fits()
        finally:
            session.close()
    data = xr.open_zarr(run_dir / "run.zarr")
    return data["n_labeled"].values.astype(int), data["accuracy"].values.astype(float)


def labels_to_reach(n: np.ndarray, accuracy: np.ndarray, target: float) -> tuple[int, bool]:
    """First label count whose accuracy is at least `target`, and whether it was reached."""
    reached = np.flatnonzero(accuracy >= target - 1e-12)
    return (int(n[reached[0]]), True) if len(reached) else (int(n[-1]), False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=60, help="labels per campaign (the budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "labelling.json")
    parser.add_argument("--pool-runs", type=int, default=None, help="demo runs per class in the pool (preset: 80)")
    parser.add_argument("--test-runs", type=int, default=None, help="held-out demo runs per class (preset: 30)")
    parser.add_argument("--cache", default=None, help="where the demo pool is built (default: the preset's)")
    parser.add_argument("--n-initial", type=int, default=None, help="labels before the first fit (preset's default)")
    args = parser.parse_args(argv)
    pool = {k: v for k, v in (("runs_per_class", args.pool_runs), ("test_runs_per_class", args.test_runs),
                              ("cache_dir", args.cache)) if v is not None}
    curves: dict[str, dict[int, list]] = {s: {} for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            for strategy in STRATEGIES:
                start = time.perf_counter()
                n, accuracy = campaign(strategy, seed, args.labels, Path(work), pool, args.n_initial)
                curves[strategy][seed] = [n.tolist(), accuracy.tolist()]
                print(f"{strategy} seed {seed}: accuracy {accuracy[-1]:.3f} after {n[-1]} labels "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    grid = np.arange(6, args.labels + 1)
    mean = {s: np.mean([np.interp(grid, *curves[s][seed]) for seed in args.seeds], axis=0) for s in STRATEGIES}
    summary = {}
    for seed in args.seeds:
        target = curves["random"][seed][1][-1]
        summary[seed] = {s: labels_to_reach(np.array(curves[s][seed][0]), np.array(curves[s][seed][1]), target)
                         for s in STRATEGIES}
    for s in STRATEGIES:
        shown = ", ".join(f"{k} labels {np.interp(k, grid, mean[s]):.3f}" for k in (10, 20, 40, args.labels)
                          if k <= args.labels)
        reach = ", ".join(f"{summary[seed][s][0]}{'' if summary[seed][s][1] else '>'}" for seed in args.seeds)
        print(f"{s}: mean held-out accuracy {shown}; labels to reach random's final accuracy per seed: {reach}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"labels": args.labels, "seeds": args.seeds, "curves": curves,
                                    "labels_to_reach_random_final": summary,
                                    "mean_accuracy": {s: dict(zip(grid.tolist(), mean[s].tolist()))
                                                      for s in STRATEGIES}}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in STRATEGIES:
        for seed in args.seeds:
            ax.plot(*curves[s][seed], color="C0" if s != "random" else "C1", alpha=0.25, lw=0.8)
        ax.plot(grid, mean[s], color="C0" if s != "random" else "C1", lw=2, label=f"{s} (mean of {len(args.seeds)})")
    ax.set_xlabel("labels")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Kolmogorov or Burgers? scripted labeller on the demo pool")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The verdict of a sweep: how many simulations each strategy needs, against passive sampling.

    python -m experiments.compare SWEEP_DIR [--passive random] [--metric mse] [--targets 1e-2 1e-3]

Gathers every `run.zarr` under SWEEP_DIR into one Dataset (dims `strategy`, `seed`,
`n_labeled`), saved as `SWEEP_DIR/comparison.zarr`, and writes beside it:

- `summary.csv`, `summary.json`: for each target error and strategy, the simulations needed
  (median and quartiles over seeds), the ratio passive/strategy, and a one-sided Wilcoxon
  signed-rank test over paired seeds (is the strategy's need smaller than passive's?);
- `retrain.csv`: every strategy's final training set refitted from scratch with the same
  recipe, scored on the same test set (the gain is in the data, not in the training path);
- `learning_curves.png` (median and 16-84 % band over seeds), `queried_points.png`, and for
  the 1-D potential `query_energy.png` (where in energy each strategy spent its runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import wilcoxon

from alframe import plots
from alframe.loop import score_committee
from alframe.metrics import simulations_to_reach
from alframe.store import read_run
from alframe.store import write_zarr

LOWER_IS_BETTER = {"mse", "rmse", "mae", "max_abs_error", "log_loss"}


class SweepError(ValueError):
    """The sweep directory cannot be compared; the message says why."""


def load_runs(sweep_dir: Path) -> dict[tuple[str, int], xr.Dataset]:
    """Every finished run store under `sweep_dir`, keyed by (strategy, seed)."""
    paths = sorted(sweep_dir.rglob("run.zarr"))
    if not paths:
        raise SweepError(f"no run.zarr found under {sweep_dir}")
    runs: dict[tuple[str, int], xr.Dataset] = {}
    where: dict[tuple[str, int], Path] = {}
    for path in paths:
        ds = read_run(path)
        config = json.loads(ds.attrs.get("config", "{}"))
        key = (str(config.get("strategy_name", ds.attrs.get("label", "?"))), int(ds.attrs["seed"]))
        if "stop_reason" not in ds.attrs:
            print(f"skipping unfinished run {path}", file=sys.stderr)
            continue
        if key in runs:
            raise SweepError(f"two runs for strategy {key[0]!r}, seed {key[1]}: {where[key]} and {path}")
        runs[key], where[key] = ds, path
    if not runs:
        raise SweepError(f"no finished run under {sweep_dir}")
    return runs


def combine(runs: dict[tuple[str, int], xr.Dataset], metrics: list[str]) -> xr.Dataset:
    """One Dataset with dims (strategy, seed, n_labeled): each metric after n simulations.

    The value at n is that of the last committee fitted on at most n simulations; NaN
    beyond a run's budget.
    """
    strategies = sorted({s for s, _ in runs})
    seeds = sorted({seed for _, seed in runs})
    grid = np.unique(np.concatenate([ds["n_runs"].values for ds in runs.values()])).astype(np.int64)
    data = {m: np.full((len(strategies), len(seeds), len(grid)), np.nan) for m in metrics}
    for (strategy, seed), ds in runs.items():
        n_runs = ds["n_runs"].values
        idx = np.searchsorted(n_runs, grid, side="right") - 1
        valid = (idx >= 0) & (grid <= n_runs[-1])
        for m in metrics:
            data[m][strategies.index(strategy), seeds.index(seed), valid] = ds[m].values[idx[valid]]
    return xr.Dataset(
        {m: (("strategy", "seed", "n_labeled"), v) for m, v in data.items()},
        coords={"strategy": np.array(strategies, dtype=object), "seed": seeds, "n_labeled": grid},
    )


def default_targets(comp: xr.Dataset, metric: str, passive: str) -> list[float]:
    """Passive's final error (median over seeds) and round values between it and the start."""
    final = float(np.nanmedian(comp[metric].sel(strategy=passive).values[:, -1]))
    start = float(np.nanmedian(comp[metric].values[..., 0]))
    if metric not in LOWER_IS_BETTER:
        return [final]
    decades = [m * 10.0**k for k in range(-8, 4) for m in (1.0, 3.0)]
    between = [t for t in decades if final < t < start]
    return sorted(set([final, *between[:3]]), reverse=True)


def sims_needed(comp: xr.Dataset, metric: str, target: float) -> xr.DataArray:
    """Simulations each (strategy, seed) needs to reach `target` for good; NaN if never."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    grid = comp["n_labeled"].values
    out = np.full(comp[metric].shape[:2], np.nan)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            curve = comp[metric].values[i, j]
            valid = np.isfinite(curve)
            if valid.any():
                out[i, j] = simulations_to_reach(grid[valid], sign * curve[valid], sign * target)
    return xr.DataArray(out, dims=("strategy", "seed"), coords={"strategy": comp.strategy, "seed": comp.seed})


def summarise(comp: xr.Dataset, *, metric: str, passive: str, targets: list[float], budget: int) -> pd.DataFrame:
    """One row per (target, strategy): simulations needed, ratio to passive, paired test."""
    if passive not in comp.strategy.values:
        raise SweepError(f"passive strategy {passive!r} not in the sweep (strategies: {list(comp.strategy.values)})")
    rows = []
    for target in targets:
        need = sims_needed(comp, metric, target)
        # A run that never reaches the target needed more than its whole budget: count it as
        # budget + 1 in the paired test (conservative for whoever missed).
        censored = need.fillna(budget + 1)
        base = censored.sel(strategy=passive).values
        base_median = float(np.median(base))
        for strategy in comp.strategy.values:
            values = censored.sel(strategy=strategy).values
            reached = int(np.isfinite(need.sel(strategy=strategy).values).sum())
            median = float(np.median(values))
            p_value = float("nan")
            if strategy != passive:
                diff = base - values
                if np.any(diff != 0):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        p_value = float(wilcoxon(base, values, alternative="greater", zero_method="zsplit").pvalue)
                else:
                    p_value = 1.0
            rows.append({
                "target": target,
                "strategy": str(strategy),
                "median_simulations": median,
                "q25_simulations": float(np.percentile(values, 25)),
                "q75_simulations": float(np.percentile(values, 75)),
                "seeds_reached": reached,
                "seeds": len(values),
                "ratio_vs_passive": base_median / median,
                "p_value": p_value,
            })
    return pd.DataFrame(rows)


def retrain_from_scratch(runs: dict[tuple[str, int], xr.Dataset], *, metric: str) -> pd.DataFrame:
    """Refit each run's final training set from scratch with its own learner config, scored by
    the run's own `scorer` when its config has one (a committee that predicts inputs from
    outputs, say), else at the test inputs like the loop's default."""
    from hydra.utils import instantiate

    rows = []
    for (strategy, seed), ds in sorted(runs.items()):
        config = json.loads(ds.attrs["config"])
        committee = instantiate(config["learner"])
        ok = ds["ok"].values
        fitted = committee.fit(ds["x"].values[ok], ds["y"].values[ok], key=jax.random.key(10_000 + seed))
        x_test, y_test = ds["x_test"].values, ds["y_test"].values
        if config.get("scorer") is not None:
            scores = dict(instantiate(config["scorer"])(fitted, x_test, y_test))
        else:
            scores = score_committee(fitted, x_test, y_test, classification=ds.attrs.get("task") == "classification")
        rows.append({"strategy": strategy, "seed": seed, "n_labeled": int(ok.sum()),
                     f"{metric}_in_loop": float(ds[metric].values[-1]), f"{metric}_from_scratch": scores[metric]})
    return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _potential1d_energy_plot(runs: dict[tuple[str, int], xr.Dataset], path: Path) -> Path | None:
    """Histogram of the queried particles' energy per strategy (the 1-D potential only)."""
    first = next(iter(runs.values()))
    sim = json.loads(first.attrs["config"]).get("simulator", {})
    if sim.get("_target_") != "simulators.potential1d.make_oracle":
        return None
    import matplotlib.pyplot as plt

    from simulators.potential1d import energy

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    by_strategy: dict[str, list[np.ndarray]] = {}
    for (strategy, _), ds in runs.items():
        x = ds["x"].sel(input=["x0", "v0"]).values[ds["round_of"].values > 0]
        by_strategy.setdefault(strategy, []).append(np.asarray(energy(x[:, 0], x[:, 1], sim.get("potential", "anharmonic"))))
    all_e = np.concatenate([np.concatenate(v) for v in by_strategy.values()])
    bins = np.linspace(0, np.percentile(all_e, 99.5), 40)
    for strategy, parts in sorted(by_strategy.items()):
        ax.hist(np.concatenate(parts), bins=bins, density=True, histtype="step", lw=1.8, label=strategy)
    ax.set_xlabel("particle energy E = v0²/2 + V(x0)")
    ax.set_ylabel("query density (after the initial design)")
    ax.set_title("where the simulations went, by energy")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare(sweep_dir: Path, *, passive: str = "random", metric: str | None = None,
            targets: list[float] | None = None, retrain: bool = True) -> pd.DataFrame:
    """Write the sweep's verdict files into `sweep_dir`; return the summary table."""
    runs = load_runs(sweep_dir)
    first = next(iter(runs.values()))
    metric = metric or ("f1" if first.attrs.get("task") == "classification" else "mse")
    if metric not in first:
        raise SweepError(f"metric {metric!r} is not in the run stores")
    round_metrics = [m for m in ("mse", "rmse", "mae", "max_abs_error", "mean_variance",
                                 "accuracy", "f1", "log_loss") if m in first]
    comp = combine(runs, round_metrics)
    comp.attrs.update(metric=metric, passive=passive, sweep_dir=str(sweep_dir))
    write_zarr(comp, sweep_dir / "comparison.zarr", mode="w")
    budget = int(max(ds.attrs["budget"] for ds in runs.values()))
    targets = targets or default_targets(comp, metric, passive)
    table = summarise(comp, metric=metric, passive=passive, targets=targets, budget=budget)
    table.to_csv(sweep_dir / "summary.csv", index=False)
    (sweep_dir / "summary.json").write_text(json.dumps(table.to_dict(orient="records"), indent=2))

    groups: dict[str, list[xr.Dataset]] = {}
    for (strategy, _), ds in sorted(runs.items()):
        groups.setdefault(strategy, []).append(ds)
    written = [plots.learning_curves(groups, sweep_dir / "learning_curves.png", metric=metric,
                                     title=f"{metric} against simulations, {len(comp.seed)} seeds")]
    lowest_seed = min(seed for _, seed in runs)
    written.append(plots.queried_points({s: runs[(s, lowest_seed)] for s in groups if (s, lowest_seed) in runs},
                                        sweep_dir / "queried_points.png", title=f"queried points, seed {lowest_seed}"))
    energy_plot = _potential1d_energy_plot(runs, sweep_dir / "query_energy.png")
    if energy_plot:
        written.append(energy_plot)

    print(f"\n## Simulations to reach each target {metric} ({len(comp.seed)} seeds, budget {budget}, "
          f"passive = {passive})\n")
    print(_markdown(table))
    if retrain:
        scratch = retrain_from_scratch(runs, metric=metric)
        scratch.to_csv(sweep_dir / "retrain.csv", index=False)
        med = scratch.groupby("strategy")[[f"{metric}_in_loop", f"{metric}_from_scratch"]].median().reset_index()
        print(f"\n## Final training sets refitted from scratch (median {metric} over seeds)\n")
        print(_markdown(med))
    print(f"\nwritten to {sweep_dir}: comparison.zarr, summary.csv, summary.json"
          + (", retrain.csv" if retrain else "") + ", " + ", ".join(p.name for p in written))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory holding run.zarr stores")
    parser.add_argument("--passive", default="random", help="the baseline strategy (default: random)")
    parser.add_argument("--metric", default=None, help="mse for regression, f1 for classification by default")
    parser.add_argument("--targets", type=float, nargs="+", default=None, help="target values of the metric")
    parser.add_argument("--no-retrain", action="store_true", help="skip the retrain-from-scratch check")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"compare: error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        compare(args.sweep_dir, passive=args.passive, metric=args.metric, targets=args.targets,
                retrain=not args.no_retrain)
    except SweepError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

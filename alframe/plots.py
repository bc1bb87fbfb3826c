"""Plots a scientist looks at: learning curves and where the runs went.

Each function takes run stores (xarray Datasets as written by the loop), draws one figure,
saves it to `path` and returns the path. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter  # noqa: E402


def _metric_for(ds: xr.Dataset) -> str:
    return "f1" if ds.attrs.get("task") == "classification" else "mse"


# R^2 below this is drawn at the panel's edge: the curve's shape there says nothing new.
R2_FLOOR = -0.5


def _median_band(group: Sequence[xr.Dataset], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and 16-84 % band over runs of the per-round variable `name` against simulations.

    Returns: grid (k,) the union of the runs' `n_runs`; median, lo, hi (k,), NaN where no run
    has a value (a run without `name`, or beyond a run's last round).
    """
    grid = np.unique(np.concatenate([np.asarray(g["n_runs"].values, dtype=np.float64) for g in group]))
    curves = np.array([np.interp(grid, g["n_runs"].values, g[name].values, right=np.nan) if name in g
                       else np.full(len(grid), np.nan) for g in group])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        median = np.nanmedian(curves, axis=0)
        lo, hi = np.nanpercentile(curves, [16, 84], axis=0)
    return grid, median, lo, hi


def _log_ticks(axis, lo: float, hi: float, *, plain: bool) -> None:
    """Log-axis ticks whose labels do not collide: at most 6 decades over two decades or more,
    else ticks at 1, 2 and 5 times a power of ten; minor ticks unlabelled. `plain` writes
    numbers as 200, else in scientific notation (which labels only decades over a decade)."""
    subs = (1.0,) if hi / lo >= 100 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}") if plain
                             else LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2.0, 10.0), numticks=12))
    axis.set_minor_formatter(NullFormatter())


def _constant_predictor(groups: Mapping[str, Sequence[xr.Dataset]], name: str):
    """The error of predicting the training mean, in units of `name` (mse or rmse), median over
    every run: (grid, values), or None where the stores do not record `mse_constant`."""
    runs = [g for group in groups.values() for g in group if "mse_constant" in g]
    if name not in ("mse", "rmse") or not runs:
        return None
    grid, median, _, _ = _median_band(runs, "mse_constant")
    return grid, (median if name == "mse" else np.sqrt(median))


def learning_curves(runs: Mapping[str, xr.Dataset | Sequence[xr.Dataset]], path: str | Path, *,
                    metric: str | None = None, title: str | None = None) -> Path:
    """Test metric against simulations, one line (median and band over seeds) per label; below
    it R^2 (skill against predicting the training mean) when the stores record `r2`.

    Args:
        runs: label -> one run store or several (seeds) to summarise.
        path: where to write the PNG.
        metric: a per-round variable; "mse" for regression and "f1" for classification by default.
    The error panel also shows, dashed grey, the error of predicting the training mean when
    the stores record `mse_constant` and the metric is mse or rmse.
    """
    path = Path(path)
    groups = {label: [g] if isinstance(g, xr.Dataset) else list(g) for label, g in runs.items()}
    name = metric or _metric_for(next(iter(groups.values()))[0])
    with_r2 = name != "r2" and any("r2" in g for group in groups.values() for g in group)
    if with_r2:
        fig, (ax, ax_r2) = plt.subplots(2, 1, figsize=(6.4, 7.0), sharex=True, height_ratios=(3, 2),
                                        constrained_layout=True)
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    drawn: list[np.ndarray] = []
    all_grid: list[np.ndarray] = []
    colours = {}
    for label, group in groups.items():
        grid, median, lo, hi = _median_band(group, name)
        (line,) = ax.plot(grid, median, label=f"{label} (n={len(group)})" if len(group) > 1 else label)
        colours[label] = line.get_color()
        drawn.append(median)
        all_grid.append(grid)
        if len(group) > 1:
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
            drawn += [lo, hi]
    constant = _constant_predictor(groups, name)
    if constant is not None:
        ax.plot(*constant, ls="--", color="grey", lw=1.2, label="predicting the training mean")
        drawn.append(constant[1])
    values = np.concatenate(drawn)
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() >= 10 * values.min():
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, values.min(), values.max(), plain=False)
    grid = np.concatenate(all_grid)
    grid = grid[np.isfinite(grid) & (grid > 0)]
    ax.set_xscale("log")
    if len(grid):
        _log_ticks(ax.xaxis, grid.min(), grid.max(), plain=True)
    ax.set_ylabel(f"test {name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "learning curve")
    bottom_ax = ax
    if with_r2:
        lowest = 0.0
        for label, group in groups.items():
            grid, median, lo, hi = _median_band(group, "r2")
            ax_r2.plot(grid, median, color=colours[label])
            if len(group) > 1:
                ax_r2.fill_between(grid, lo, hi, color=colours[label], alpha=0.2, lw=0)
            finite = np.concatenate([median, lo])[np.isfinite(np.concatenate([median, lo]))]
            lowest = min(lowest, float(finite.min()) if len(finite) else 0.0)
        ax_r2.axhline(0.0, ls="--", color="grey", lw=1.2)
        ax_r2.set_ylim(max(R2_FLOOR, lowest - 0.05), 1.02)
        clipped = f" (below {R2_FLOOR:g} not shown)" if lowest < R2_FLOOR else ""
        ax_r2.set_ylabel(f"test R²{clipped}")
        ax_r2.grid(True, which="both", alpha=0.3)
        bottom_ax = ax_r2
    bottom_ax.set_xlabel("simulations")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def queried_points(runs: Mapping[str, xr.Dataset], path: str | Path, *, dims: tuple[str, str] | None = None,
                   title: str | None = None) -> Path:
    """Scatter of the queried inputs in a plane, one panel per label, coloured by round.

    Failed runs are drawn as red crosses. `dims` names two inputs (the first two by default);
    a single input is drawn against the order of the runs.
    """
    path = Path(path)
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False, constrained_layout=True)
    for ax, (label, ds) in zip(axes[0], runs.items()):
        names = [str(v) for v in ds["input"].values]
        if dims is None and len(names) == 1:
            a, b = names[0], "run"
            x = np.column_stack([ds["x"].values[:, 0], np.arange(ds.sizes["sample"])])
        else:
            a, b = dims or (names[0], names[1])
            x = ds["x"].sel(input=[a, b]).values
        ok = ds["ok"].values
        sc = ax.scatter(x[ok, 0], x[ok, 1], c=ds["round_of"].values[ok], s=6, cmap="viridis")
        if (~ok).any():
            ax.scatter(x[~ok, 0], x[~ok, 1], marker="x", c="red", s=14, label="failed")
            ax.legend(loc="upper right")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.set_title(f"{label} ({len(x)} runs)")
        ax.set_aspect("auto")
    fig.colorbar(sc, ax=axes[0, -1], label="round")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Plots a scientist looks at: learning curves and where the runs went.

Each function takes run stores (xarray Datasets as written by the loop), draws one figure,
saves it to `path` and returns the path. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def _metric_for(ds: xr.Dataset) -> str:
    return "f1" if ds.attrs.get("task") == "classification" else "mse"


def learning_curves(runs: Mapping[str, xr.Dataset | Sequence[xr.Dataset]], path: str | Path, *,
                    metric: str | None = None, title: str | None = None) -> Path:
    """Test metric against simulations, one line (median and band over seeds) per label.

    Args:
        runs: label -> one run store or several (seeds) to summarise.
        path: where to write the PNG.
        metric: a per-round variable; "mse" for regression and "f1" for classification by default.
    """
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    groups = {label: [g] if isinstance(g, xr.Dataset) else list(g) for label, g in runs.items()}
    name = metric or _metric_for(next(iter(groups.values()))[0])
    for label, group in groups.items():
        grid = np.unique(np.concatenate([g["n_runs"].values for g in group]))
        curves = np.array([np.interp(grid, g["n_runs"].values, g[name].values, right=np.nan) for g in group])
        median = np.nanmedian(curves, axis=0)
        (line,) = ax.plot(grid, median, label=f"{label} (n={len(group)})" if len(group) > 1 else label)
        if len(group) > 1:
            lo, hi = np.nanpercentile(curves, [16, 84], axis=0)
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    if name in ("mse", "rmse", "mae", "log_loss", "max_abs_error"):
        ax.set_yscale("log")
    ax.set_xlabel("simulations")
    ax.set_ylabel(f"test {name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "learning curve")
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

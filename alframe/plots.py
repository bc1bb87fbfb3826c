"""Plots a scientist looks at: learning curves, where the runs went, and maps of embeddings.

Each function draws one figure, saves it to `path` and returns the path; `learning_curves`
and `queried_points` take run stores (xarray Datasets as written by the loop),
`embedding_map` takes panels of map positions (`Panel`). Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter  # noqa: E402

from alframe.metrics import higher_is_better  # noqa: E402


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
    ticks at 1, 2 and 5 times a power of ten over one, and at 1, 2, 3, 4, 5, 6 and 8 times over
    less (runs 20 to 100: 20, 30, 40, 50, 60, 80, 100); minor ticks unlabelled. `plain` writes
    numbers as 200, else in scientific notation (which labels only decades over a decade)."""
    subs = (1.0,) if hi / lo >= 100 else (1.0, 2.0, 5.0) if hi / lo >= 10 else (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}") if plain
                             else LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2.0, 10.0), numticks=12))
    axis.set_minor_formatter(NullFormatter())


def _constant_predictor(groups: Mapping[str, Sequence[xr.Dataset]], name: str):
    """The error of predicting the test set's mean, in units of `name` (mse or rmse), median over
    every run: (grid, values), or None where the stores do not record `mse_constant`."""
    runs = [g for group in groups.values() for g in group if "mse_constant" in g]
    if name not in ("mse", "rmse") or not runs:
        return None
    grid, median, _, _ = _median_band(runs, "mse_constant")
    return grid, (median if name == "mse" else np.sqrt(median))


def learning_curves(runs: Mapping[str, xr.Dataset | Sequence[xr.Dataset]], path: str | Path, *,
                    metric: str | None = None, title: str | None = None) -> Path:
    """Test metric against simulations, one line (median and band over seeds) per label; below
    it R^2 (the coefficient of determination on the test set) when the stores record `r2`.

    Args:
        runs: label -> one run store or several (seeds) to summarise.
        path: where to write the PNG.
        metric: a per-round variable; "mse" for regression and "f1" for classification by default.
    The error panel also shows, dashed grey, the error of predicting the test set's mean when
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
        # A run of one round is one point: a marker, or nothing would show.
        (line,) = ax.plot(grid, median, marker="o" if len(grid) == 1 else None,
                          label=f"{label} (n={len(group)})" if len(group) > 1 else label)
        colours[label] = line.get_color()
        drawn.append(median)
        all_grid.append(grid)
        if len(group) > 1:
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
            drawn += [lo, hi]
    constant = _constant_predictor(groups, name)
    if constant is not None:
        ax.plot(*constant, ls="--", color="grey", lw=1.2, marker="_" if len(constant[0]) == 1 else None,
                markersize=20, label="predicting the test mean")
        drawn.append(constant[1])
    values = np.concatenate(drawn)
    values = values[np.isfinite(values)]
    # An error is read by its ratios: a log axis once it spans a factor of 2, so that one run's
    # curve and a sweep's band over the same runs are drawn alike.
    spread = 10.0 if higher_is_better(name) else 2.0
    if len(values) and values.min() > 0 and values.max() >= spread * values.min():
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
            ax_r2.plot(grid, median, color=colours[label], marker="o" if len(grid) == 1 else None)
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


def _declared_inputs(ds: xr.Dataset, *kinds: str) -> set[str]:
    """The inputs a run's store declares of these kinds ("log", "integer", "categorical"; its
    `input_space` attr; none without one)."""
    declared = ds.attrs.get("input_space")
    if isinstance(declared, str):
        declared = json.loads(declared)
    return {name for kind in kinds for name in (declared or {}).get(kind, ())}


def _log_scale_inputs(ds: xr.Dataset) -> set[str]:
    """The inputs a run's store declares log-scale."""
    return _declared_inputs(ds, "log")


WHOLE_NUMBER_JITTER = 0.3  # integer and categorical inputs are spread by up to this, so repeats show


def queried_points(runs: Mapping[str, xr.Dataset], path: str | Path, *, dims: tuple[str, str] | None = None,
                   title: str | None = None) -> Path:
    """Scatter of the queried inputs in a plane, one panel per label, coloured by round.

    Failed runs are drawn as red crosses. `dims` names two inputs (the first two by default);
    a single input is drawn against the order of the runs. Inputs the store declares log-scale
    get a log axis.
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
        logs = _log_scale_inputs(ds)
        for name, set_scale in ((a, ax.set_xscale), (b, ax.set_yscale)):
            if name in logs:  # drawn as the space draws them and the learners see them
                set_scale("log")
        whole = _declared_inputs(ds, "integer", "categorical")
        jitter = np.random.default_rng(0).uniform(-WHOLE_NUMBER_JITTER, WHOLE_NUMBER_JITTER, x.shape)
        x = x + jitter * np.array([[name in whole for name in (a, b)]])
        sc = ax.scatter(x[ok, 0], x[ok, 1], c=ds["round_of"].values[ok], s=6, cmap="viridis")
        if (~ok).any():
            ax.scatter(x[~ok, 0], x[~ok, 1], marker="x", c="red", s=14, label="failed")
            ax.legend(loc="upper right")
        spread = f" (spread by up to {WHOLE_NUMBER_JITTER} to show repeats)"
        ax.set_xlabel(a + spread * (a in whole))
        ax.set_ylabel(b + spread * (b in whole))
        ax.set_title(f"{label} ({len(x)} runs)")
        ax.set_aspect("auto")
    fig.colorbar(sc, ax=axes[0, -1], label="round")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class Mark(NamedTuple):
    """Points drawn over a map panel, with their own legend entry: (k, 2) positions."""

    label: str
    points: np.ndarray
    marker: str = "o"
    colour: str = "black"


class Panel(NamedTuple):
    """One scatter of an embedding for `embedding_map`.

    Fields:
        points: (n, 2) map positions, coloured by `colour` (n,): values (a colorbar) or
            labels (a legend; strings, booleans, or integers with `categorical=True`).
        title, colour_label: the panel's title and what the colour shows.
        categorical: labels (True), values (False) or by the dtype of `colour` (None).
        background: optional (m, 2) points drawn small and grey beneath (a reference sample).
        background_label: its legend entry.
        marks: further points drawn on top, each with its legend entry (failed runs, the
            queried models, placed observations).
        axes: the axis labels.
    """

    points: np.ndarray
    colour: np.ndarray
    title: str = ""
    colour_label: str = ""
    categorical: bool | None = None
    background: np.ndarray | None = None
    background_label: str = "reference"
    marks: tuple[Mark, ...] = ()
    axes: tuple[str, str] = ("t-SNE 1", "t-SNE 2")


def _is_categorical(panel: Panel) -> bool:
    if panel.categorical is not None:
        return panel.categorical
    return np.asarray(panel.colour).dtype.kind in "bOUS"


def _category_colours(labels: Sequence) -> dict:
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _shared_scales(row: Sequence[Panel]) -> list[tuple[bool, dict | tuple[float, float], bool]]:
    """Per panel of a row: (categorical, its label colours or value limits, whether it is the
    last panel of its group). Panels of one row with the same colouring (kind and
    `colour_label`) form a group: one set of label colours or one value range between them."""
    groups: dict[tuple[bool, str], list[int]] = {}
    for i, panel in enumerate(row):
        groups.setdefault((_is_categorical(panel), panel.colour_label), []).append(i)
    scales: list = [None] * len(row)
    for (categorical, _), members in groups.items():
        colours = [np.asarray(row[i].colour) for i in members]
        if categorical:
            scale = _category_colours(sorted({v.item() if hasattr(v, "item") else v for c in colours for v in c},
                                             key=str))
        else:
            finite = np.concatenate([c[np.isfinite(c)] for c in colours])
            scale = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        for i in members:
            scales[i] = (categorical, scale, i == members[-1])
    return scales


def embedding_map(rows: Sequence[Panel] | Sequence[Sequence[Panel]], path: str | Path, *,
                  title: str | None = None) -> Path:
    """Maps side by side: panels in rows (e.g. one panel per strategy, a row per colouring;
    or t-SNE beside PCA), panels of a row coloured alike sharing one colour scale or one set
    of label colours, so they can be compared at a glance.

    Args:
        rows: a row of `Panel`s, or several rows.
        path: where to write the PNG.
    Within a row, panels with the same kind of colour and `colour_label` form a group: values
    get one colorbar for the group, labels one legend (on the group's last panel). Marks and
    the grey background have legend entries on every panel.
    """
    path = Path(path)
    grid = [list(rows)] if isinstance(rows[0], Panel) else [list(r) for r in rows]
    n_cols = max(len(r) for r in grid)
    fig, axes = plt.subplots(len(grid), n_cols, figsize=(4.4 * n_cols + 1.2, 4.2 * len(grid)), squeeze=False,
                             constrained_layout=True)
    for r, row in enumerate(grid):
        for ax, panel, (categorical, scale, last) in zip(axes[r], row, _shared_scales(row)):
            points = np.asarray(panel.points, dtype=np.float64)
            colour = np.asarray(panel.colour)
            if panel.background is not None and len(panel.background):
                ax.scatter(*np.asarray(panel.background).T, s=4, c="0.8", lw=0, label=panel.background_label,
                           zorder=1)
            if categorical:
                chosen = {label: np.array([v == label for v in colour], dtype=bool) for label in scale}
                # Larger groups first, so a rare group is not buried under a common one.
                for label in sorted(scale, key=lambda lab: -chosen[lab].sum()):
                    if chosen[label].any():
                        ax.scatter(*points[chosen[label]].T, s=8, color=scale[label], lw=0, label=str(label), zorder=2)
            else:
                mappable = ax.scatter(*points.T, c=colour, s=8, cmap="viridis", vmin=scale[0], vmax=scale[1], lw=0,
                                      zorder=2)
            for mark in panel.marks:
                hollow = mark.marker in ("o", "s", "D", "^")
                # An unfilled marker (x, +) is drawn by its edge only: given as its colour, not an edgecolor.
                colours = dict(facecolors="none", edgecolors=mark.colour) if hollow else dict(color=mark.colour)
                ax.scatter(*np.asarray(mark.points).reshape(-1, 2).T, marker=mark.marker, s=30 if hollow else 40,
                           lw=0.9, label=f"{mark.label} ({len(mark.points)})", zorder=3, **colours)
            ax.set_title(panel.title)
            ax.set_xlabel(panel.axes[0])
            ax.set_ylabel(panel.axes[1])
            ax.set_xticks([])
            ax.set_yticks([])
            names = {str(k) for k in scale} if categorical and not last else set()
            entries = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in names]
            if categorical:  # labels in their sorted order, whatever order they were drawn in
                order = {str(k): i for i, k in enumerate(scale)}
                entries.sort(key=lambda entry: order.get(entry[1], -1))
            if entries:
                # A fixed corner: matplotlib's "best" search takes seconds per thousand points.
                ax.legend(*zip(*entries), loc="upper right", fontsize=7, markerscale=1.5, framealpha=0.8,
                          title=panel.colour_label if categorical and last else None, title_fontsize=7)
            if last and not categorical:
                group = [axes[r][j] for j, other in enumerate(row)
                         if not _is_categorical(other) and other.colour_label == panel.colour_label]
                fig.colorbar(mappable, ax=group, label=panel.colour_label, shrink=0.9)
        for ax in axes[r][len(row):]:
            ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

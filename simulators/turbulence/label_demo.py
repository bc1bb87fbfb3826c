"""A Galaxy-Zoo-style labelling pool: is this column-density map Kolmogorov or Burgers?

Hydro runs at n = 11/3 (Kolmogorov) and n = 4 (Burgers) are projected along x, y and z; each
projection is one item, shown to a person as a picture and described to the committee by a
few statistics of the map (`MAP_FEATURES`). Runs, not maps, are split between the pool and a
labelled held-out set, so no run has a map on both sides.

The files are built on first use into a cache folder (about 20 s on 2 cores at 32^3), written
to a temporary folder and renamed into place, so a build that is interrupted leaves nothing:

    items.csv    item, run, axis, the features, image (the pool a person labels; no labels)
    truth.csv    item, label: the true class of every pool item (for scripted answers)
    test.csv     the features and label of the held-out maps
    images/      one PNG per item

    python -m experiments.cli label runs/demo experiment=label_demo     # then open the page
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from alframe.external import labelled_csv
from alframe.labels import ItemPool, item_pool
from simulators.turbulence.fields import power_spectrum, spectral_slope
from simulators.turbulence.images import column_density
from simulators.turbulence.simulation import simulate

CLASSES = ("Kolmogorov", "Burgers")
INDICES = (11.0 / 3.0, 4.0)
MAP_FEATURES = ("sigma", "skewness", "kurtosis", "spectrum_slope", "gradient_mean", "gradient_sigma",
                "dense_fraction", "peak")
AXES = "xyz"
TEST_SEED_OFFSET = 100_000


def map_features(log_column: np.ndarray) -> np.ndarray:
    """Statistics of a log10 column-density map (N, N) over its mean: (len(MAP_FEATURES),).

    Burgers fields put more power on large scales, so their maps have a wider, more skewed
    spread of column density and a steeper spectrum than Kolmogorov ones.
    """
    m = np.asarray(log_column, dtype=np.float64)
    centred = m - m.mean()
    sigma = centred.std()
    k, power = power_spectrum(10.0 ** m)
    gradient = np.hypot(*np.gradient(m))
    return np.array([
        sigma,
        (centred ** 3).mean() / sigma ** 3,
        (centred ** 4).mean() / sigma ** 4 - 3.0,
        spectral_slope(k, power, (2.0, max(m.shape[0] / 4.0, 3.0))),
        gradient.mean(),
        gradient.std(),
        (m > 0.1).mean(),
        m.max(),
    ])


def _maps(index: float, seed: int, n_cells: int, duration_myr: float) -> list[np.ndarray]:
    from simulators.turbulence.units import CloudSetup

    density = simulate(index, n_cells=n_cells, seed=seed, setup=CloudSetup(duration_myr=duration_myr)).density
    maps = []
    for axis in range(3):
        column = column_density(density, axis=axis)
        maps.append(np.log10(column / column.mean()))
    return maps


def _write_png(path: Path, log_column: np.ndarray, limit: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One colour scale for every map, so a person compares contrast, not rescaled noise.
    plt.imsave(path, log_column.T, cmap="magma", vmin=-limit, vmax=limit, origin="lower")


def _write_table(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def build(out: Path, *, runs_per_class: int, test_runs_per_class: int, n_cells: int, duration_myr: float,
          progress: bool = True) -> Path:
    """Simulate the runs and write the pool's files into `out` (replaced atomically)."""
    from tqdm import tqdm

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (work / "images").mkdir()
        header = ["item", "run", "axis", *MAP_FEATURES]
        items, truth, test, maps = [], [], [], {}
        jobs = [(c, r, False) for r in range(runs_per_class) for c in range(len(CLASSES))]
        jobs += [(c, r, True) for r in range(test_runs_per_class) for c in range(len(CLASSES))]
        for cls, r, held_out in tqdm(jobs, desc="label demo: simulating maps", disable=not progress):
            seed = 2 * r + cls + (TEST_SEED_OFFSET if held_out else 0)
            for axis, m in zip(AXES, _maps(INDICES[cls], seed, n_cells, duration_myr)):
                features = [float(f"{v:.6g}") for v in map_features(m)]
                name = f"run{seed}_{axis}"
                if held_out:
                    test.append([name, seed, axis, *features, CLASSES[cls]])
                    continue
                maps[name] = m
                items.append([name, seed, axis, *features, f"images/{name}.png"])
                truth.append([name, CLASSES[cls]])
        limit = float(np.percentile(np.abs(np.concatenate([m.ravel() for m in maps.values()])), 99))
        for name, m in maps.items():
            _write_png(work / "images" / f"{name}.png", m, limit)
        # Shuffled, so the file's order says nothing of the class.
        order = np.random.default_rng(0).permutation(len(items))
        _write_table(work / "items.csv", [*header, "image"], [items[i] for i in order])
        _write_table(work / "truth.csv", ["item", "label"], [truth[i] for i in order])
        _write_table(work / "test.csv", [*header, "label"], test)
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def demo_dir(cache_dir: str | os.PathLike | None = None, *, runs_per_class: int = 80, test_runs_per_class: int = 30,
             n_cells: int = 32, duration_myr: float = 0.5, progress: bool = True) -> Path:
    """The folder of the demo pool for these settings, built on first use."""
    settings = {"runs_per_class": runs_per_class, "test_runs_per_class": test_runs_per_class, "n_cells": n_cells,
                "duration_myr": duration_myr, "features": MAP_FEATURES, "colour_scale": "p99"}
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("ALFRAME_CACHE") or Path.home() / ".cache" / "alframe")
    out = root.expanduser() / "label_demo" / settings_digest(settings)
    if not (out / "items.csv").exists():
        build(out, runs_per_class=runs_per_class, test_runs_per_class=test_runs_per_class, n_cells=n_cells,
              duration_myr=duration_myr, progress=progress)
    return out


def demo_pool(cache_dir: str | None = None, **settings) -> ItemPool:
    """The demo's items: maps to label Kolmogorov or Burgers (see `demo_dir` for settings)."""
    folder = demo_dir(cache_dir, **settings)
    return item_pool(folder / "items.csv", MAP_FEATURES, CLASSES, label="kind", image="image")


def demo_test_set(cache_dir: str | None = None, **settings) -> tuple[np.ndarray, np.ndarray]:
    """The held-out maps: x (n, len(MAP_FEATURES)), y (n, 1) class indices."""
    folder = demo_dir(cache_dir, progress=False, **settings)
    return labelled_csv(str(folder / "test.csv"), MAP_FEATURES, ["label"], CLASSES)


def demo_truth(cache_dir: str | None = None, **settings) -> dict[str, str]:
    """{item: true class} of every pool item, to answer for a person in tests and benchmarks."""
    folder = demo_dir(cache_dir, progress=False, **settings)
    with (folder / "truth.csv").open() as handle:
        return {row["item"]: row["label"] for row in csv.DictReader(handle)}

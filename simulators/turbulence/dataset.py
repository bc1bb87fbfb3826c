"""Training images from many runs: the talk's augmentations, split by run, stored as zarr.

Each run (velocity index n, seed) is simulated, and its final density goes through the RAMSES
package's `training_images`: log10 column density along x, y and z, four flips each, four
quarter-box cuts each, 48 images of (N/2, N/2) per run. With `ramses_dir`, each run is written
as a RAMSES output and read back first, so the images come from exactly the files a RAMSES run
would leave.

Runs, not images, are split into train / test / holdout, so no run has images on two sides.
The split is stratified: within each stratum (by default each distinct n, e.g. the Kolmogorov
and the Burgers runs) the runs are shuffled and cut at the given fractions.

The store is an xarray Dataset with dims (image, u, v): `log_column` (float32), and along
`image` the coordinates `run`, `index` (n), `seed`, `split`, `axis` (x/y/z), `flip`, `quarter`;
`xr.open_zarr(path)` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm import tqdm

from alframe.store import write_zarr
from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.simulation import check_seed, simulate

SPLITS = ("train", "test", "holdout")
DensityFn = Callable[[float, int], np.ndarray]


def split_by_run(strata: Sequence, fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
                 seed: int = 0) -> np.ndarray:
    """A split name per run, (n_runs,) str: shuffled and cut at `fractions` within each stratum.

    Args:
        strata: a group label per run (n_runs,); each group is split on its own.
        fractions: shares of train, test, holdout, non-negative, summing to 1. A group of m
            runs gets round(m * cumulative fraction) boundaries.
        seed: shuffling seed.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (len(SPLITS),) or np.any(fractions < 0) or \
            not np.isclose(fractions.sum(), 1.0):
        raise InvalidSetting(f"fractions must be three non-negative shares (train, test, "
                             f"holdout) summing to 1, got {fractions.tolist()}")
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    names = np.empty(len(strata), dtype=object)
    for group in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == group))
        bounds = np.rint(np.cumsum(fractions) * len(members)).astype(int)
        for name, part in zip(SPLITS, np.split(members, bounds[:-1])):
            names[part] = name
    return names.astype(str)


def hydro_density(n_cells: int, **settings) -> DensityFn:
    """The final density of `simulate(index, n_cells=n_cells, seed=seed, **settings)`."""
    return lambda index, seed: simulate(index, n_cells=n_cells, seed=seed, **settings).density


def run_images(density: np.ndarray, *, ramses_dir: Path | None = None) -> np.ndarray:
    """The 48 augmented log column-density images of one run: (3, 4, 4, N/2, N/2).

    Indexed [axis, flip, quarter, u, v] as `simulators.ramses.training_images`. With
    `ramses_dir`, the density is written there as a RAMSES output and read back first.
    """
    from simulators.ramses import (
        read_output,
        training_images,
        uniform_cells,
        write_uniform,
    )

    density = np.asarray(density, dtype=np.float64)
    if ramses_dir is None:
        return training_images(uniform_cells({"density": density}, boxlen=1.0))
    path = write_uniform(ramses_dir, {"density": density}, boxlen=1.0, overwrite=True)
    return training_images(read_output(path))


def build_dataset(out: str | os.PathLike | None, indices: Sequence[float],
                  density_fn: DensityFn, *, seeds: Sequence[int] | None = None,
                  fractions: Sequence[float] = (0.8, 0.1, 0.1), strata: Sequence | None = None,
                  split_seed: int = 0, ramses_dir: str | os.PathLike | None = None,
                  progress: bool = True) -> xr.Dataset:
    """Simulate every run, augment its images, split by run and store as zarr.

    Args:
        out: zarr store to write (replaced if it exists), or None to only return the Dataset.
        indices: velocity index n of each run, (n_runs,).
        density_fn: (n, seed) -> final density cube (N,) * 3; e.g. `hydro_density(64)`, or the
            lognormal surrogate for tests.
        seeds: field seed of each run (default 0 .. n_runs - 1).
        fractions: train / test / holdout shares of the runs.
        strata: group label per run for the split (default: each run's n).
        split_seed: seed of the split's shuffling.
        ramses_dir: if given, run r is written to `ramses_dir/run_{r:05d}/output_00001` and
            its images are read from there.
        progress: show a progress bar.

    Returns:
        The Dataset written (dims image, u, v; see the module docstring).
    """
    indices = np.asarray(indices, dtype=np.float64).reshape(-1)
    n_runs = len(indices)
    if n_runs == 0:
        raise InvalidSetting("indices must hold at least one run")
    seeds = np.arange(n_runs) if seeds is None else np.asarray(seeds).reshape(-1)
    if len(seeds) != n_runs:
        raise InvalidSetting(f"seeds has {len(seeds)} entries for {n_runs} runs")
    seeds = np.array([check_seed(int(s)) for s in seeds], dtype=np.int64)
    strata = indices if strata is None else np.asarray(strata)
    if len(strata) != n_runs:
        raise InvalidSetting(f"strata has {len(strata)} entries for {n_runs} runs")
    splits = split_by_run(strata, fractions, seed=split_seed)

    images = []
    for run in tqdm(range(n_runs), desc="runs", disable=not progress):
        density = density_fn(float(indices[run]), int(seeds[run]))
        where = None if ramses_dir is None else Path(ramses_dir) / f"run_{run:05d}" / "output_00001"
        images.append(run_images(density, ramses_dir=where).astype(np.float32))
    stacked = np.stack(images)  # (run, axis, flip, quarter, u, v)
    per_run = stacked.shape[1] * stacked.shape[2] * stacked.shape[3]
    grid = np.meshgrid(np.arange(n_runs), np.arange(stacked.shape[1]),
                       np.arange(stacked.shape[2]), np.arange(stacked.shape[3]), indexing="ij")
    run_of, axis_of, flip_of, quarter_of = (g.reshape(-1) for g in grid)
    dataset = xr.Dataset(
        {"log_column": (("image", "u", "v"), stacked.reshape(n_runs * per_run,
                                                              *stacked.shape[4:]))},
        coords={
            "run": ("image", run_of),
            "index": ("image", indices[run_of]),
            "seed": ("image", seeds[run_of]),
            # Variable-length strings: zarr 3 has a specification for those, not for fixed ones.
            "split": ("image", splits[run_of].astype(object)),
            "axis": ("image", np.array(["x", "y", "z"], dtype=object)[axis_of]),
            "flip": ("image", flip_of),
            "quarter": ("image", quarter_of),
        },
        attrs={"fractions": list(map(float, fractions)), "split_seed": int(split_seed),
               "images_per_run": int(per_run),
               "description": "log10 column density (code units: box 1, mean density 1) of a "
                              "quarter box, per projection axis, flip and quarter"},
    )
    if out is not None:
        write_zarr(dataset, out, mode="w")
    return dataset

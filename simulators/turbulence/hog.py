"""Histograms of oriented gradients (HOG) of projected log column-density maps: the talk's
"t-SNE look at HOG features" of the turbulence runs.

`maps(indices, seeds, density_fn)` projects each run's final density along the chosen axes
into log10 column-density maps (N, N); `hog_features(images)` turns each map into its HOG
vector (scikit-image: gradient orientations histogrammed per cell, normalised per block of
cells), which `alframe.embedding` embeds and scores.

    >>> from simulators.turbulence.hog import hog_features, maps, hydro_density
    >>> images, run, index = maps([11 / 3, 4.0], [0, 1], hydro_density(32))
    >>> images.shape, hog_features(images).shape
    ((6, 32, 32), (6, 324))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from skimage.feature import hog

from simulators.turbulence.dataset import hydro_density
from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.images import log_column_image

__all__ = ["BURGERS", "KOLMOGOROV", "hog_features", "hydro_density", "maps"]

DensityFn = Callable[[float, int], np.ndarray]
KOLMOGOROV = 11.0 / 3.0
BURGERS = 4.0


def maps(indices: Sequence[float], seeds: Sequence[int], density_fn: DensityFn, *,
         axes: Sequence[int] = (0, 1, 2)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log10 column-density maps of runs, one per run and line of sight.

    Args:
        indices, seeds: velocity index n and field seed of each run (equal lengths).
        density_fn: (n, seed) -> density cube (N, N, N).
        axes: lines of sight, each in {0, 1, 2}.
    Returns:
        images (runs x axes, N, N) float64, run by run; run (runs x axes,) the run's position
        in `indices`; index (runs x axes,) its n.
    """
    indices = np.asarray(indices, dtype=np.float64).reshape(-1)
    seeds = np.asarray(seeds).reshape(-1)
    if len(indices) != len(seeds) or len(indices) == 0:
        raise InvalidSetting(f"indices and seeds must be equally long and not empty, got {len(indices)} and {len(seeds)}")
    if not axes or any(a not in (0, 1, 2) for a in axes):
        raise InvalidSetting(f"axes must be lines of sight in {{0, 1, 2}}, got {list(axes)!r}")
    images, run = [], []
    for i, (index, seed) in enumerate(zip(indices, seeds)):
        density = density_fn(float(index), int(seed))
        for axis in axes:
            images.append(log_column_image(density, axis=int(axis)))
            run.append(i)
    run = np.asarray(run, dtype=np.int64)
    return np.stack(images), run, indices[run]


def hog_features(images, *, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 2) -> np.ndarray:
    """HOG vectors of square maps: (n, M, M) -> (n, f), f = blocks x cells_per_block^2 x orientations.

    Each map is scaled to unit standard deviation first: the block normalisation makes HOG
    blind to contrast anyway, and a near-uniform map (an early snapshot varies by a fraction
    of a per cent) then never meets the normalisation's epsilon. Deterministic.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise InvalidSetting(f"images must be square maps (n, M, M), got shape {images.shape}")
    if not np.all(np.isfinite(images)):
        raise InvalidSetting(f"image {int(np.flatnonzero(~np.isfinite(images).all(axis=(1, 2)))[0])} is not finite")
    for name, value in (("orientations", orientations), ("pixels_per_cell", pixels_per_cell),
                        ("cells_per_block", cells_per_block)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InvalidSetting(f"{name} must be a positive integer, got {value!r}")
    if images.shape[1] < pixels_per_cell * cells_per_block:
        raise InvalidSetting(f"maps of {images.shape[1]} pixels are smaller than one block of "
                             f"{cells_per_block} x {pixels_per_cell} pixels")
    spread = images.std(axis=(1, 2), keepdims=True)
    scaled = (images - images.mean(axis=(1, 2), keepdims=True)) / np.where(spread > 0, spread, 1.0)
    return np.stack([hog(image, orientations=orientations, pixels_per_cell=(pixels_per_cell,) * 2,
                         cells_per_block=(cells_per_block,) * 2, block_norm="L2-Hys", feature_vector=True)
                     for image in scaled])

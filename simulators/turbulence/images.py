"""Projected maps of a density cube: column density, log images at a chosen size, summaries.

Column densities are in units of the box's mean column density (in code units, where box and
mean density are 1, the column density is the mean of the density along the line of sight);
multiply by `CodeUnits.column_density_g_cm2` (0.0209 g/cm^2 for the talk's cloud) for cgs.
"""

from __future__ import annotations

import numpy as np

from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.fields import power_spectrum, spectral_slope

SUMMARY_NAMES = ("sigma_log10_column", "column_spectrum_slope")


def _check_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not 0 <= axis < ndim:
        raise InvalidSetting(f"axis must be an integer in [0, {ndim}), got {axis!r}")
    return int(axis)


def column_density(density, *, axis: int = 2) -> np.ndarray:
    """Density integrated along `axis` over a box of side 1: (N,) * ndim -> (N,) * (ndim - 1).

    Indexed by the remaining axes in order ([x, y] for axis 2, [x, z] for axis 1, [y, z] for
    axis 0).
    """
    density = np.asarray(density, dtype=np.float64)
    return density.mean(axis=_check_axis(axis, density.ndim))


def check_image_size(image_size, n_cells: int) -> int:
    """An image side that divides n_cells or is a multiple of it, or InvalidSetting."""
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) \
            or image_size < 1:
        raise InvalidSetting(f"image_size must be a positive integer, got {image_size!r}")
    if n_cells % image_size and image_size % n_cells:
        raise InvalidSetting(f"image_size {image_size} must divide n_cells {n_cells} or be a "
                             f"multiple of it")
    return int(image_size)


def resample(image: np.ndarray, size: int) -> np.ndarray:
    """A square map (N, N) as (size, size), conserving its mean.

    Downsampling averages size x size blocks; upsampling repeats each pixel (N divides size),
    so a low-resolution run's image lines up pixel by pixel with a high-resolution one's.
    """
    image = np.asarray(image, dtype=np.float64)
    n = image.shape[0]
    size = check_image_size(size, n)
    if size <= n:
        factor = n // size
        return image.reshape(size, factor, size, factor).mean(axis=(1, 3))
    factor = size // n
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def log_column_image(density, *, axis: int = 2, image_size: int | None = None) -> np.ndarray:
    """log10 of the column density over its mean, optionally resampled: (N,)*3 -> (M, M).

    Args:
        density: (N, N, N) density cube indexed [x, y, z].
        axis: line of sight.
        image_size: side M of the returned map (default N); see `resample`.
    """
    column = column_density(density, axis=axis)
    if image_size is not None:
        column = resample(column, image_size)
    return np.log10(column / column.mean())


def column_summary(density, *, axis: int = 2) -> np.ndarray:
    """Two numbers per map: (std of log10 column density, slope of its power spectrum).

    The slope is a least-squares fit of log P(k) over the shells 2 <= k <= N/4 of the column
    density's own 2-D spectrum. Returns shape (2,), named by `SUMMARY_NAMES`.
    """
    column = column_density(density, axis=axis)
    k, power = power_spectrum(column)
    n = column.shape[0]
    slope = spectral_slope(k, power, (2.0, max(n / 4.0, 3.0)))
    return np.array([np.std(np.log10(column)), slope])

"""Leaf cells to uniform grids, column densities and the training images of the turbulence case.

Arrays are indexed [x, y, z] (as many axes as the run has dimensions); grid cell (i, j, k) at
level L is centred at ((i + 0.5) dx, (j + 0.5) dx, (k + 0.5) dx) with dx = boxlen / 2^L.
Column densities are in code units with the box side equal to boxlen: the sum of density *
dx along the line of sight.

A projected image along axis a keeps the other axes in increasing order: along z it is
indexed [x, y], along y [x, z], along x [y, z].
"""

from __future__ import annotations

import numpy as np

from simulators.ramses.reader import Cells, RamsesOutput

__all__ = [
    "AXES",
    "FLIPS",
    "axis_number",
    "column_density",
    "flips",
    "log_column_density",
    "paint",
    "quarter_cuts",
    "training_images",
]

AXES = ("x", "y", "z")
FLIPS = ("none", "first axis", "second axis", "both axes")


def _cells(source: Cells | RamsesOutput) -> Cells:
    return source.cells if isinstance(source, RamsesOutput) else source


def axis_number(axis: str | int, ndim: int) -> int:
    """'x'/'y'/'z' or 0/1/2 -> 0/1/2, checked against the number of dimensions."""
    number = AXES.index(axis) if isinstance(axis, str) and axis in AXES else axis
    if isinstance(number, bool) or not isinstance(number, int | np.integer) or not \
            0 <= number < ndim:
        raise ValueError(f"axis {axis!r} is not one of {list(AXES[:ndim])} for a "
                         f"{ndim}-D output")
    return int(number)


def _check_level(cells: Cells, level: int | None) -> int:
    if level is None:
        return cells.finest_level
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or not \
            0 <= level <= 30:
        raise ValueError(f"level must be an integer in [0, 30], got {level!r}")
    return int(level)


def paint(source: Cells | RamsesOutput, field: str = "density", *, level: int | None = None,
          weight: str | None = None) -> np.ndarray:
    """A variable on the uniform grid of `level`, shape (2^level,) * ndim, indexed [x, y, z].

    Leaves at or above `level` are painted piecewise constant over the grid cells they cover.
    Leaves finer than `level` are averaged into the grid cell that holds them, by volume
    (`weight=None`: a density grid then conserves mass) or by volume * `weight` (for
    instance `weight="density"` for mass-weighted velocities).

    Args:
        source: leaf cells, or an output.
        field: variable to paint.
        level: grid level; default the finest level holding leaves (exact, no averaging).
        weight: optional variable to weight the average of finer leaves by.
    """
    cells = _cells(source)
    level = _check_level(cells, level)
    ndim, n = cells.ndim, 2**level
    grid = np.zeros((n,) * ndim, dtype=np.float64)
    numerator = np.zeros(n**ndim)
    denominator = np.zeros(n**ndim)
    names = (field,) if weight is None else (field, weight)
    for cell_level, index, (v, *w) in cells.by_level(*names):
        if cell_level == level:
            grid.reshape(-1)[np.ravel_multi_index(tuple(index.T), grid.shape)] = v
        elif cell_level < level:
            # A level-l leaf covers a block of f^ndim grid cells: view the grid as blocks.
            f = 2 ** (level - cell_level)
            blocks = grid.reshape(sum(((n // f, f) for _ in range(ndim)), ()))
            blocks[tuple(x for d in range(ndim) for x in (index[:, d], slice(None)))] = \
                v.reshape((-1,) + (1,) * ndim)
        else:
            shift = cell_level - level
            target = np.ravel_multi_index(tuple((index >> shift).T), (n,) * ndim)
            volume = 2.0 ** (-ndim * shift)
            weights = np.full(len(v), volume) if weight is None else w[0] * volume
            numerator += np.bincount(target, weights=weights * v, minlength=n**ndim)
            denominator += np.bincount(target, weights=weights, minlength=n**ndim)
    if cells.finest_level > level:
        filled = denominator != 0
        grid.reshape(-1)[filled] = numerator[filled] / denominator[filled]
    return grid


def column_density(source: Cells | RamsesOutput, axis: str | int = "z", *,
                   level: int | None = None, field: str = "density") -> np.ndarray:
    """`field` integrated along `axis` at the resolution of `level`.

    Equal (to rounding) to `paint(source, field, level=level).sum(axis) * dx`, dx = boxlen /
    2^level, but summed from the leaves directly, level by level, without the ndim-D grid.
    Returns shape (2^level,) * (ndim - 1), indexed by the remaining axes in order (along z:
    [x, y]); code units with box side boxlen.
    """
    cells = _cells(source)
    number = axis_number(axis, cells.ndim)
    level = _check_level(cells, level)
    ndim, n = cells.ndim, 2**level
    across = [d for d in range(ndim) if d != number]
    image = np.zeros((n,) * (ndim - 1))
    for cell_level, index, (v,) in cells.by_level(field):
        size = cells.boxlen / 2.0**cell_level
        if cell_level <= level:
            # Columns of level-l cells on the level-l image, each pixel then spread over the
            # f^(ndim-1) pixels it covers at `level`.
            side, f = 2**cell_level, 2 ** (level - cell_level)
            flat = np.ravel_multi_index(tuple(index[:, d] for d in across),
                                        (side,) * (ndim - 1)) if across else \
                np.zeros(len(v), np.int64)
            coarse = np.bincount(flat, weights=v * size, minlength=side ** (ndim - 1))
            blocks = image.reshape(sum(((side, f) for _ in across), ()))
            blocks += coarse.reshape(sum(((side, 1) for _ in across), ()))
        else:
            # A finer cell adds its column times the fraction of the pixel it covers.
            shift = cell_level - level
            flat = np.ravel_multi_index(tuple(index[:, d] >> shift for d in across),
                                        image.shape) if across else np.zeros(len(v), np.int64)
            image += np.bincount(flat, weights=v * (size * 2.0 ** (-(ndim - 1) * shift)),
                                 minlength=image.size).reshape(image.shape)
    return image


def log_column_density(source: Cells | RamsesOutput, axis: str | int = "z", *,
                       level: int | None = None, field: str = "density") -> np.ndarray:
    """log10 of `column_density`, same shape; ValueError where a column is not positive."""
    column = column_density(source, axis, level=level, field=field)
    bad = int(np.count_nonzero(~(column > 0)))
    if bad:
        raise ValueError(f"column of {field!r} along {axis!r} is not positive in {bad} of "
                         f"{column.size} pixels; its log is undefined")
    return np.log10(column)


def flips(image: np.ndarray) -> np.ndarray:
    """The four flips of an image (h, w) -> (4, h, w), in the order of `FLIPS`."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"flips need a 2-D image, got shape {image.shape}")
    return np.stack([image, image[::-1, :], image[:, ::-1], image[::-1, ::-1]])


def quarter_cuts(image: np.ndarray) -> np.ndarray:
    """The four quarters of an image (h, w) -> (4, h/2, w/2).

    Quarter q takes half (q & 1) of the first axis and half (q >> 1) of the second: the
    projection of one quarter box (half the box across the line of sight, all of its depth).
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.shape[0] % 2 or image.shape[1] % 2:
        raise ValueError(f"quarter cuts need a 2-D image with even sides, got shape {image.shape}")
    h, w = image.shape[0] // 2, image.shape[1] // 2
    return np.stack([image[(q & 1) * h:(q & 1) * h + h, (q >> 1) * w:(q >> 1) * w + w]
                     for q in range(4)])


def training_images(source: Cells | RamsesOutput, *, level: int | None = None,
                    field: str = "density") -> np.ndarray:
    """The augmented log column-density images of a 3-D output.

    Every projection axis (x, y, z), each of the four flips, each of the four quarter cuts:
    shape (3, 4, 4, 2^(level-1), 2^(level-1)), indexed [axis, flip, quarter, u, v].
    """
    cells = _cells(source)
    if cells.ndim != 3:
        raise ValueError(f"training images need a 3-D output, got {cells.ndim}-D")
    level = _check_level(cells, level)
    if level < 1:
        raise ValueError("training images need level >= 1 (the quarter cuts halve the image)")
    images = []
    for axis in range(3):
        column = column_density(cells, axis, level=level, field=field)
        if not np.all(column > 0):
            raise ValueError(f"column of {field!r} along {AXES[axis]!r} is not positive "
                             f"everywhere; its log is undefined")
        images.append(np.stack([quarter_cuts(f) for f in flips(np.log10(column))]))
    return np.stack(images)

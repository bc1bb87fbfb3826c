"""Learning the velocity index n from a map, inside alframe's loop: the oracle read backwards.

The loop fits a committee on (inputs, outputs) = (n, map) of every run. `IndexCommittee`
learns the other way, map -> n, with a `CNNCommittee`; `index_error` scores it on the
held-out runs by the error of the n it predicts from their maps. For choosing runs, the
committee's disagreement on a candidate's map needs the map first: `resolution_proxy` is the
oracle on a coarser grid (same seeds, so the same large-scale modes) and `resolution_cost` what
one such run costs relative to a full one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import numpy as np

from alframe.learners.cnn import CNNCommittee
from alframe.metrics import regression_metrics
from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.oracle import TurbulenceOracle
from simulators.turbulence.simulation import check_cells

N_FLIPS = 4


def flipped(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rows (m, H*W) -> the four flips of each (none, rows, columns, both), (4m, H*W),
    grouped by flip: rows [i*m, (i+1)*m) hold flip i."""
    square = np.asarray(images).reshape(-1, *shape)
    return np.concatenate([square, square[:, ::-1], square[:, :, ::-1], square[:, ::-1, ::-1]]
                          ).reshape(N_FLIPS * len(square), -1)


@dataclass(frozen=True)
class IndexCommittee:
    """A committee that predicts a run's inputs (n) from its map; see the module docstring.

    Args:
        committee: a regression `CNNCommittee` on the oracle's image shape.
        flips: train on the four flips of each map as well (a flip changes no statistic of
            an isotropic field, so it is free data).
        capacity_runs: the most runs it will be fitted on; sets the CNN's buffer capacity so
            that a growing training set compiles nothing new. None keeps the CNN's.

    `fit(x, y, key=...)`: x (m, 1) the runs' n, y (m, H*W) their maps flattened row-major.
    `predict_members(images)`: images (m, H*W) -> (members, m, 1) predicted n.
    """

    committee: CNNCommittee
    flips: bool = True
    capacity_runs: int | None = None

    def __post_init__(self) -> None:
        if self.committee.task != "regression":
            raise InvalidSetting(f"IndexCommittee needs a regression committee, got task {self.committee.task!r}")
        if self.capacity_runs is not None:
            if self.capacity_runs < 1:
                raise InvalidSetting(f"capacity_runs must be >= 1, got {self.capacity_runs!r}")
            capacity = self.capacity_runs * (N_FLIPS if self.flips else 1)
            if self.committee.capacity != capacity:
                object.__setattr__(self, "committee", dataclasses.replace(self.committee, capacity=capacity))

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> IndexCommittee:
        """Fit map -> n on the runs: x (m, 1) their n, y (m, H*W) their maps."""
        index = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        images = np.asarray(y, dtype=np.float32)
        if self.flips:
            images = flipped(images, self.committee.image_shape)
            index = np.tile(index, (N_FLIPS, 1))
        return dataclasses.replace(self, committee=self.committee.fit(images, index, key=key))

    def predict_members(self, images: np.ndarray) -> jax.Array:
        """Maps (m, H*W) -> predicted n of each member, (members, m, 1)."""
        return self.committee.predict_members(images)


def index_error(committee, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """Scores of a map -> n committee on held-out runs: x_test (m, 1) their n, y_test (m, H*W)
    their maps. Returns mse, rmse, mae, max_abs_error of the mean predicted n, and
    mean_variance (the members' disagreement), as `alframe.metrics.regression_metrics`."""
    members = np.asarray(committee.predict_members(np.asarray(y_test, dtype=np.float32)))
    return regression_metrics(np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1), members)


def resolution_proxy(oracle: TurbulenceOracle, n_cells: int) -> TurbulenceOracle:
    """The oracle on an `n_cells`^3 grid, images at the same size: a cheap, correlated proxy."""
    if n_cells >= oracle.simulator.n_cells:
        raise InvalidSetting(f"proxy n_cells must be below the oracle's {oracle.simulator.n_cells}, got {n_cells!r}")
    return oracle.with_resolution(n_cells)


def resolution_cost(n_cells: int, proxy_cells: int) -> float:
    """What one run on a proxy_cells^3 grid costs, in runs on an n_cells^3 grid: cells times
    CFL-limited steps, (proxy_cells / n_cells)^4. The lognormal surrogate is charged the
    same (the cost its hydro counterpart would have)."""
    check_cells(n_cells)
    check_cells(proxy_cells)
    if proxy_cells >= n_cells:
        raise InvalidSetting(f"proxy_cells must be below n_cells {n_cells}, got {proxy_cells!r}")
    return (proxy_cells / n_cells) ** 4

"""python-adaptive's LearnerND, driven one batch at a time, and its model as a committee."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alframe.interop.peer import as_column
from alframe.space import Box


@dataclasses.dataclass(frozen=True)
class LinearInterpolation:
    """Piecewise-linear interpolation on the Delaunay triangulation of the data (python-adaptive's
    model of a LearnerND), nearest neighbour outside the data's hull, as a one-member committee.

    `fit(x, y, key=...)`: x (n, dim), y (n, n_outputs); `predict_members(x)`: (1, m, n_outputs).
    """

    fitted: Any = dataclasses.field(default=None, repr=False, compare=False)

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> LinearInterpolation:
        from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
        from scipy.spatial import QhullError

        x, y = np.asarray(x, np.float64), as_column(y)
        nearest = NearestNDInterpolator(x, y)
        try:
            linear = LinearNDInterpolator(x, y)
        except (QhullError, ValueError):
            linear = None
        return dataclasses.replace(self, fitted=(linear, nearest))

    def predict_members(self, x: np.ndarray) -> jax.Array:
        if self.fitted is None:
            raise RuntimeError("predict_members called on a LinearInterpolation that was never fitted")
        linear, nearest = self.fitted
        x = np.asarray(x, np.float64)
        out = nearest(x) if linear is None else linear(x)
        out = out.reshape(len(x), -1)
        missing = ~np.all(np.isfinite(out), axis=1)
        if missing.any():
            out[missing] = nearest(x[missing]).reshape(int(missing.sum()), -1)
        return jnp.asarray(out[None], dtype=jnp.float32)


class AdaptivePeer:
    """python-adaptive's LearnerND over the box `space`, asked for batches, told the results,
    as an `alframe.interop.peer.Peer`."""

    def __init__(self, space: Box, x: np.ndarray, y: np.ndarray):
        from adaptive import LearnerND

        self.learner = LearnerND(None, bounds=list(zip(space.lower, space.upper)))
        self.model = LinearInterpolation()
        self.tell(x, y)

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        if len(x):
            self.learner.tell_many([tuple(p) for p in x], [float(v) for v in as_column(y)[:, 0]])
        self.model = self.model.fit(self.learner.points, self.learner.values, key=jax.random.key(0))

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        points, _ = self.learner.ask(k)
        return np.asarray(points, dtype=np.float64).reshape(-1, self.learner.ndim)

    def members(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_members(x))

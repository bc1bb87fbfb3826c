"""The strategy protocol: which of the candidates to run next."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.selection import Selection


@runtime_checkable
class Strategy(Protocol):
    def select(
        self,
        committee: Committee,
        candidates: np.ndarray,
        k: int,
        *,
        key: jax.Array,
        pending: np.ndarray | None = None,
        failed: np.ndarray | None = None,
    ) -> "np.ndarray | Selection":
        """Pick `k` distinct rows of `candidates` (n, dim); return their indices, shape (k,),
        or a `Selection` when there is more to say: points off the pool, a cost of choosing,
        or a reason to stop (see `alframe.strategies.selection`).

        `pending` (m, dim) holds queries already submitted but not finished: a strategy must
        not propose them again. `failed` (f, dim) holds the inputs of runs that failed, for
        strategies that steer clear of them (`AvoidFailures`; `VarianceReduction` counts them
        as settled); others ignore it.
        """
        ...


def not_pending(candidates: np.ndarray, pending: np.ndarray | None) -> np.ndarray:
    """Mask (n,) of candidates that are not exactly one of the pending points."""
    if pending is None or len(pending) == 0:
        return np.ones(len(candidates), dtype=bool)
    taken = {np.asarray(row, dtype=np.float64).tobytes() for row in pending}
    return np.array([np.asarray(row, dtype=np.float64).tobytes() not in taken for row in candidates], dtype=bool)


def uniform_draws(key: jax.Array, n: int) -> np.ndarray:
    """n draws (n,) from U[0, 1), in float64: scaled to a score, a float32 draw overflows where the
    score's units are large (a committee variance of luminosities in erg/s is about 1e75)."""
    return np.asarray(jax.random.uniform(key, (n,)), dtype=np.float64)


def tie_breaks(key: jax.Array, scores: np.ndarray, fraction: float = 1e-9) -> np.ndarray:
    """Random amounts (n,) to add to scores (n,) so that ties break at random: each below
    `fraction` of the largest finite |score|, so that they never outweigh a real difference,
    whatever the scores' units (a committee variance in cgs units may be 1e-40)."""
    scores = np.asarray(scores, dtype=np.float64)
    magnitude = np.abs(scores[np.isfinite(scores)]).max(initial=0.0)
    return uniform_draws(key, scores.size).reshape(scores.shape) * fraction * (magnitude if magnitude > 0 else 1.0)


def check_k(k: int, n_available: int) -> None:
    if k < 0:
        raise ValueError(f"cannot select a negative number of points ({k})")
    if k > n_available:
        raise ValueError(f"asked for {k} points but only {n_available} candidates are available")

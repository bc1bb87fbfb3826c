"""Steering clear of inputs where simulations keep failing."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import Strategy
from alframe.strategies.selection import Selection, as_selection


@dataclass(frozen=True)
class AvoidFailures:
    """Wraps a strategy; drops candidates with `min_failures` or more failed runs nearby.

    "Nearby" is within `radius` of a failed input, distances measured with each input scaled
    to the candidates' range (so 0.05 is 5 % of every input's span). If too few candidates
    survive for `k` picks, the ones nearest to failures are let back in, farthest first.

    Args:
        strategy: the strategy that picks among the surviving candidates.
        radius: the neighbourhood of a failure, as a fraction of each input's range.
        min_failures: failures within `radius` it takes to drop a candidate.
    """

    strategy: Strategy
    radius: float = 0.05
    min_failures: int = 1

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise ValueError(f"AvoidFailures radius must be > 0, got {self.radius}")
        if self.min_failures < 1:
            raise ValueError(f"AvoidFailures min_failures must be >= 1, got {self.min_failures}")

    def failures_near(self, candidates: np.ndarray, failed: np.ndarray) -> np.ndarray:
        """How many failed inputs (f, dim) lie within `radius` of each candidate (n, dim): (n,)."""
        candidates = np.asarray(candidates, dtype=np.float64)
        lo, hi = candidates.min(axis=0), candidates.max(axis=0)
        width = np.where(hi > lo, hi - lo, 1.0)
        unit, bad = (candidates - lo) / width, (np.asarray(failed, dtype=np.float64) - lo) / width
        d2 = np.sum((unit[:, None, :] - bad[None, :, :]) ** 2, axis=-1)
        return np.sum(d2 <= self.radius**2, axis=1)

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray | Selection:
        if failed is None or len(failed) == 0:
            return self.strategy.select(committee, candidates, k, key=key, pending=pending, failed=failed)
        counts = self.failures_near(candidates, failed)
        keep = np.flatnonzero(counts < self.min_failures)
        if len(keep) < k:
            keep = np.sort(np.argsort(counts, kind="stable")[: max(k, len(keep))])
        kept = np.asarray(candidates)[keep]
        chosen = as_selection(self.strategy.select(committee, kept, k, key=key, pending=pending, failed=failed), kept)
        indices = np.where(chosen.indices >= 0, keep[np.maximum(chosen.indices, 0)], -1)
        return Selection(chosen.points, indices, chosen.cost, chosen.stop_reason)

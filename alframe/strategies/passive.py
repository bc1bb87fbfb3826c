"""Passive sampling: choices that ignore the committee."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import check_k, not_pending


@dataclass(frozen=True)
class RandomSampling:
    """Pick `k` candidates uniformly at random.

    On uniformly drawn candidates this is uniform random sampling of the space; on
    candidates drawn as a continuing Sobol sequence with pool size equal to the batch size
    (see `alframe.loop.Candidates`) it is passive Sobol sampling.
    """

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        available = np.flatnonzero(not_pending(candidates, pending))
        check_k(k, len(available))
        order = np.asarray(jax.random.permutation(key, len(available)))
        return np.sort(available[order[:k]])

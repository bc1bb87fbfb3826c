"""Another library's active-learning loop, driven one batch at a time (for benchmarks against it)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


def as_column(y: np.ndarray) -> np.ndarray:
    """Values (n,) or (n, k) as float64 (n, k)."""
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


class Peer(Protocol):
    """A peer's own loop, driven one batch at a time."""

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn from new runs x (n, dim), y (n, n_outputs) (labels (n, 1) for classification)."""

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        """The next `k` queries (k, dim); pool-based peers pick rows of `candidates` (n, dim)."""

    def members(self, x: np.ndarray) -> np.ndarray:
        """Member predictions (members, m, n_outputs) or probabilities (members, m, n_classes)."""

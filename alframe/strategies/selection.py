"""What a strategy hands back: the queries to run, and what choosing them cost or concluded.

A plain strategy returns the indices (k,) of the candidates it picks. One with more to say
returns a `Selection`: points it found off the candidate pool (a gradient search), the
simulations' worth it spent choosing (a proxy run of every candidate), or a reason to stop
(the committee agrees). The core reads every strategy's answer through `as_selection`, so
none of these needs a special case in a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Selection:
    """The queries a strategy chose.

    Args:
        points: the queries to run, (k, dim), best first where the strategy ranks them.
        indices: the candidate row of each point, (k,); -1 for a point that is not a
            candidate (one a search moved off the pool).
        cost: simulations' worth spent choosing, charged against the budget; None for a
            strategy that never charges (its store then records no `selection_cost`).
        stop_reason: why nothing more should be run, when the strategy says so (with no points).
    """

    points: np.ndarray
    indices: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cost: float | None = None
    stop_reason: str | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float64)
        if points.ndim != 2:
            raise ValueError(f"Selection points must be (k, dim), got shape {points.shape}")
        indices = np.asarray(self.indices, dtype=np.int64).reshape(-1)
        if len(indices) == 0 and len(points):
            indices = np.full(len(points), -1, np.int64)
        if len(indices) != len(points):
            raise ValueError(f"Selection has {len(points)} points but {len(indices)} indices")
        if self.cost is not None and not self.cost >= 0:
            raise ValueError(f"Selection cost must be >= 0 simulations, got {self.cost!r}")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "indices", indices)

    def __len__(self) -> int:
        return len(self.points)

    def first(self, k: int) -> "Selection":
        """The first k points, with the same cost and stop reason."""
        return Selection(self.points[:k], self.indices[:k], self.cost, self.stop_reason)

    @classmethod
    def of_candidates(cls, candidates: np.ndarray, indices, *, cost: float | None = None) -> "Selection":
        """The candidates (n, dim) at `indices` (k,)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        candidates = np.asarray(candidates, dtype=np.float64)
        return cls(candidates[indices].reshape(len(indices), candidates.shape[1]), indices, cost)

    @classmethod
    def stop(cls, dim: int, reason: str, *, cost: float | None = None) -> "Selection":
        """No points, and why."""
        return cls(np.empty((0, dim)), np.empty(0, np.int64), cost, reason)


def as_selection(result, candidates: np.ndarray) -> Selection:
    """A strategy's answer as a `Selection`: a Selection as it is, indices (k,) into
    candidates (n, dim) as those rows."""
    if isinstance(result, Selection):
        return result
    indices = np.asarray(result)
    if indices.ndim != 1 or (len(indices) and indices.dtype.kind not in "iu"):
        raise TypeError(f"a strategy's select must return indices (k,) or a Selection, got an array of "
                        f"shape {indices.shape} and dtype {indices.dtype}")
    n = len(candidates)
    if len(indices) and (indices.min() < -n or indices.max() >= n):
        raise IndexError(f"a strategy picked candidate {int(indices.max())} of {n}")
    return Selection.of_candidates(candidates, indices % max(n, 1))


def refused_picks(selection: Selection, k: int, *, bare_indices: bool) -> str | None:
    """Why a strategy's answer to a request for k points cannot be run, or None: more than k
    points, a point picked twice (a simulation repeated and charged twice), or, for a strategy
    that answered with bare indices, fewer than k (the budget would end short of what it was
    asked to spend; a `Selection` may hand back fewer with a `stop_reason`)."""
    if len(selection) > k:
        return f"chose {len(selection)} points when asked for {k}"
    points = selection.points
    if len(points) > 1:
        _, first, counts = np.unique(points, axis=0, return_index=True, return_counts=True)
        if counts.max() > 1:
            twice = int(np.sort(first[counts > 1])[0])
            return (f"picked the same point {counts.max()} times (row {twice}, {points[twice].tolist()}), which "
                    "would run and charge one simulation more than once")
    if bare_indices and 0 < len(selection) < k:
        return f"picked {len(selection)} candidates when asked for {k}"
    return None

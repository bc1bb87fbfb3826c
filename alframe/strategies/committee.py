"""Query by committee: run the candidates the committee disagrees on most."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from alframe.learners.base import Committee, output_spread
from alframe.strategies.base import check_k, not_pending, tie_breaks
from alframe.strategies.scores import Score, get_score, score_candidates


def top_k(scores: np.ndarray, k: int, *, key: jax.Array) -> np.ndarray:
    """Indices of the `k` largest scores (n,) -> (k,), ties broken at random by `key`."""
    scores = np.asarray(scores, dtype=np.float64)
    # Drawn at a power-of-two size, so a shrinking pool compiles a few shapes, not one per ask.
    size = max(64, 1 << max(len(scores) - 1, 0).bit_length())
    tie_break = np.asarray(jax.random.uniform(key, (size,)))[: len(scores)]
    order = np.lexsort((tie_break, -scores))
    return order[:k]


@dataclass(frozen=True)
class TopK:
    """Batch rule: the `k` highest scores."""

    def __call__(self, scores: np.ndarray, candidates: np.ndarray, k: int, *, key: jax.Array,
                 near: np.ndarray | None = None) -> np.ndarray:
        return top_k(scores, k, key=key)


@dataclass(frozen=True)
class Spread:
    """Batch rule: greedy top-k that discounts candidates close to the ones already picked.

    After each pick, every score is multiplied by 1 - exp(-d^2 / (2 length^2)), d being the
    distance to the pick in candidate coordinates scaled to the unit cube. Plain top-k piles
    a batch onto one peak of disagreement; this spreads it over several. Points `near` (the
    runs still in flight) discount their neighbourhoods the same way before the first pick.

    Args:
        length: the discount's range, as a fraction of each input's candidate range.
    """

    length: float = 0.1

    def __post_init__(self) -> None:
        if not self.length > 0:
            raise ValueError(f"Spread length must be > 0, got {self.length}")

    def __call__(self, scores: np.ndarray, candidates: np.ndarray, k: int, *, key: jax.Array,
                 near: np.ndarray | None = None) -> np.ndarray:
        lo, hi = candidates.min(axis=0), candidates.max(axis=0)
        width = np.where(hi > lo, hi - lo, 1.0)
        unit = (candidates - lo) / width
        tie_break = tie_breaks(key, scores)
        remaining = np.where(np.isfinite(scores), np.maximum(scores, 0.0) + tie_break, -np.inf)
        for point in () if near is None else (np.asarray(near, dtype=np.float64) - lo) / width:
            remaining = self._discount(remaining, unit, point)
        picked = []
        for _ in range(k):
            i = int(np.argmax(remaining))
            picked.append(i)
            remaining = self._discount(remaining, unit, unit[i])
            remaining[picked] = -np.inf
        return np.array(picked, dtype=np.int64)


    def _discount(self, scores: np.ndarray, unit: np.ndarray, point: np.ndarray) -> np.ndarray:
        factor = 1.0 - np.exp(-np.sum((unit - point) ** 2, axis=1) / (2 * self.length**2))
        with np.errstate(invalid="ignore"):  # -inf (taken) x 0 is discarded by the where
            return np.where(np.isfinite(scores), scores * factor, scores)


@dataclass(frozen=True)
class QueryByCommittee:
    """Top-k candidates by a committee disagreement score.

    Args:
        score: a name from `alframe.strategies.scores.SCORES` ("variance", "vote_entropy",
            "consensus_entropy", "max_disagreement") or a callable
            (members, n, k) -> (n,).
        batch: how a batch is chosen from the scores: `TopK()` (default) or `Spread(length)`.
    """

    score: str | Score = "variance"
    batch: TopK | Spread = TopK()

    def __post_init__(self) -> None:
        get_score(self.score)

    def scores(self, committee: Committee, candidates: np.ndarray) -> np.ndarray:
        """Disagreement per candidate, (n,); several outputs count in units of their spread over the
        committee's runs where it records them (`output_spread`)."""
        members = committee.predict_members(candidates)
        spread = output_spread(committee) if np.shape(members)[-1] > 1 else None
        return score_candidates(get_score(self.score), members, spread)

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        scores = np.where(available, self.scores(committee, candidates), -np.inf)
        return self.batch(scores, np.asarray(candidates, dtype=np.float64), k, key=key, near=pending)

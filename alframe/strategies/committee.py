"""Query by committee: run the candidates the committee disagrees on most."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import check_k, not_pending
from alframe.strategies.scores import Score, get_score


def top_k(scores: np.ndarray, k: int, *, key: jax.Array) -> np.ndarray:
    """Indices of the `k` largest scores (n,) -> (k,), ties broken at random by `key`."""
    scores = np.asarray(scores, dtype=np.float64)
    tie_break = np.asarray(jax.random.uniform(key, scores.shape))
    order = np.lexsort((tie_break, -scores))
    return order[:k]


@dataclass(frozen=True)
class QueryByCommittee:
    """Top-k candidates by a committee disagreement score.

    Args:
        score: a name from `alframe.strategies.scores.SCORES` ("variance", "vote_entropy",
            "consensus_entropy", "max_disagreement") or a callable
            (members, n, k) -> (n,).
    """

    score: str | Score = "variance"

    def __post_init__(self) -> None:
        get_score(self.score)

    def scores(self, committee: Committee, candidates: np.ndarray) -> np.ndarray:
        """Disagreement per candidate, (n,)."""
        return np.asarray(get_score(self.score)(jnp.asarray(committee.predict_members(candidates))))

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None) -> np.ndarray:
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        scores = np.where(available, self.scores(committee, candidates), -np.inf)
        return top_k(scores, k, key=key)

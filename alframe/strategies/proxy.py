"""Choosing runs of an image-valued simulator by committee disagreement on a cheap proxy run.

A committee that reads a simulator's outputs (an image) and predicts its inputs cannot score a
candidate input before the simulator has run it. `ProxyDisagreement` runs every candidate
first on a cheap proxy of the simulator (the same query at low resolution, say: correlated
with the full run, at a fraction of its cost), scores the candidate by the members'
disagreement on the proxy's output, and spends full runs where the disagreement is largest.
The proxy runs are paid for: the strategy is a `ChargedSelection`, and the loop charges
`selection_cost(n_candidates)` full runs against its budget each round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.oracle import Oracle
from alframe.strategies.base import check_k, not_pending
from alframe.strategies.committee import Spread, TopK
from alframe.strategies.scores import Score, get_score


@runtime_checkable
class ChargedSelection(Protocol):
    """A strategy that runs simulations of its own to choose, and says what they cost."""

    def selection_cost(self, n_candidates: int) -> float:
        """Cost, in full runs, of choosing among `n_candidates` candidates."""
        ...


@dataclass(frozen=True)
class ProxyDisagreement:
    """Run each candidate on `proxy`; pick the candidates whose proxy outputs the members
    disagree on most.

    Args:
        proxy: an oracle with the full simulator's inputs and outputs, cheaper to run.
        cost: the cost of one proxy run, in full runs (> 0), charged for every candidate.
        score: disagreement of the members' predictions (members, n, outputs) -> (n,): a name
            from `alframe.strategies.scores.SCORES` or a callable.
        batch: `TopK()` or `Spread(length)` over the candidates' inputs.
        explore: share of each batch (rounded down) drawn uniformly at random from the
            candidates instead, a hedge against a proxy whose disagreement misleads.

    A candidate whose proxy run fails scores lowest (picked only if nothing else is left).
    """

    proxy: Oracle
    cost: float
    score: str | Score = "variance"
    batch: TopK | Spread = TopK()
    explore: float = 0.0

    def __post_init__(self) -> None:
        get_score(self.score)
        if not self.cost > 0:
            raise ValueError(f"ProxyDisagreement cost must be > 0 (in full runs), got {self.cost!r}")
        if not 0 <= self.explore <= 1:
            raise ValueError(f"ProxyDisagreement explore must be in [0, 1], got {self.explore!r}")

    def selection_cost(self, n_candidates: int) -> float:
        """Every candidate is run once on the proxy: n_candidates * cost full runs."""
        return n_candidates * self.cost

    def scores(self, committee: Committee, candidates: np.ndarray) -> np.ndarray:
        """Run the candidates (n, dim) on the proxy; disagreement per candidate (n,), -1
        (below any disagreement) where the proxy run failed."""
        outcome = self.proxy.run(np.asarray(candidates, dtype=np.float64))
        scores = np.full(len(candidates), -1.0)
        if outcome.ok.any():
            members = jnp.asarray(committee.predict_members(outcome.y[outcome.ok]))
            scores[outcome.ok] = np.asarray(get_score(self.score)(members), dtype=np.float64)
        return scores

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        candidates = np.asarray(candidates, dtype=np.float64)
        explore_key, batch_key = jax.random.split(key)
        order = np.asarray(jax.random.permutation(explore_key, np.flatnonzero(available)))
        random_picks = np.sort(order[:int(np.floor(self.explore * k))])
        rest = np.setdiff1d(np.flatnonzero(available), random_picks)
        scores = self.scores(committee, candidates)
        # Random picks are taken first, so a spread-out batch keeps its distance from them.
        near = [a for a in (pending, candidates[random_picks]) if a is not None and len(a)]
        chosen = self.batch(scores[rest], candidates[rest], k - len(random_picks), key=batch_key,
                            near=np.concatenate(near) if near else None)
        return np.concatenate([random_picks, rest[np.asarray(chosen, dtype=np.int64)]]).astype(np.int64)

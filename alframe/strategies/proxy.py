"""Choosing runs of an image-valued simulator by the committee's view of a cheap proxy run.

A committee that reads a simulator's outputs (an image) and predicts its inputs cannot score a
candidate input before the simulator has run it. A `ProxySelection` runs every candidate
first on a cheap proxy of the simulator (the same query at low resolution, say: correlated
with the full run, at a fraction of its cost), rates the candidate from the members'
predictions on the proxy's output, and spends full runs where the rating is highest:
`ProxyDisagreement` rates by the members' disagreement, `ProxyInverseError` by the
committee's expected error, which an inverse model (outputs -> inputs) can measure because
the candidate is its own answer. The proxy runs are paid for: each `Selection` they
return carries `selection_cost(n_candidates)` full runs as its cost, which the core charges
against the budget.
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
from alframe.strategies.selection import Selection


@runtime_checkable
class ChargedSelection(Protocol):
    """A strategy that runs simulations of its own to choose and can quote, before choosing,
    what they will cost: the core then never pays for a choice the budget cannot follow
    with a run. What it charges is the `cost` of the `Selection` it returns."""

    def selection_cost(self, n_candidates: int) -> float:
        """Cost, in full runs, of choosing among `n_candidates` candidates."""
        ...


@dataclass(frozen=True)
class ProxySelection:
    """Run each candidate on `proxy`, rate it from the members' predictions on the proxy's
    output, and pick the highest rated. Subclasses say how a candidate is rated (`rate`).

    Args:
        proxy: an oracle with the full simulator's inputs and outputs, cheaper to run.
        cost: the cost of one proxy run, in full runs (> 0), charged for every candidate.
        batch: `TopK()` or `Spread(length)` over the candidates' inputs.
        explore: share of each batch (rounded down) drawn uniformly at random from the
            candidates instead, a hedge against a proxy that misleads.

    A candidate whose proxy run fails rates lowest (picked only if nothing else is left).
    """

    proxy: Oracle
    cost: float
    batch: TopK | Spread = TopK()
    explore: float = 0.0

    def __post_init__(self) -> None:
        if not self.cost > 0:
            raise ValueError(f"{type(self).__name__} cost must be > 0 (in full runs), got {self.cost!r}")
        if not 0 <= self.explore <= 1:
            raise ValueError(f"{type(self).__name__} explore must be in [0, 1], got {self.explore!r}")

    def rate(self, members: jax.Array, queries: np.ndarray) -> np.ndarray:
        """Members' predictions on the proxy outputs (members, n, out) and the queries that
        made them (n, dim) -> rating (n,), higher runs first."""
        raise NotImplementedError

    def selection_cost(self, n_candidates: int) -> float:
        """Every candidate is run once on the proxy: n_candidates * cost full runs."""
        return n_candidates * self.cost

    def scores(self, committee: Committee, candidates: np.ndarray) -> np.ndarray:
        """Run the candidates (n, dim) on the proxy; rating per candidate (n,), -1 (below
        any rating) where the proxy run failed."""
        candidates = np.asarray(candidates, dtype=np.float64)
        outcome = self.proxy.run(candidates)
        scores = np.full(len(candidates), -1.0)
        if outcome.ok.any():
            members = jnp.asarray(committee.predict_members(outcome.y[outcome.ok]))
            scores[outcome.ok] = np.asarray(self.rate(members, candidates[outcome.ok]), dtype=np.float64)
        return scores

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> Selection:
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
        picks = np.concatenate([random_picks, rest[np.asarray(chosen, dtype=np.int64)]]).astype(np.int64)
        return Selection.of_candidates(candidates, picks, cost=self.selection_cost(len(candidates)))


@dataclass(frozen=True)
class ProxyDisagreement(ProxySelection):
    """Rate a candidate by the members' disagreement on its proxy output.

    Args (besides `ProxySelection`'s):
        score: disagreement of the members' predictions (members, n, outputs) -> (n,): a name
            from `alframe.strategies.scores.SCORES` or a callable.
    """

    score: str | Score = "variance"

    def __post_init__(self) -> None:
        super().__post_init__()
        get_score(self.score)

    def rate(self, members: jax.Array, queries: np.ndarray) -> np.ndarray:
        return np.asarray(get_score(self.score)(members))


@dataclass(frozen=True)
class ProxyInverseError(ProxySelection):
    """Rate a candidate by the committee's expected error on it, for a committee that reads a
    run's inputs back from its outputs (an inverse model, as when a network infers the
    simulator's parameter from its image).

    Such a committee's answer for a candidate is the candidate itself, so its error on the
    proxy output is measurable before the full run: rating = squared distance of the members'
    mean from the query, plus the members' variance (the expected squared error of one
    member). Where members agree and are wrong (a committee that regresses to the middle of
    the range agrees at its edges) disagreement alone misses what this sees.

    Args (besides `ProxySelection`'s):
        debias: subtract the median over the round's candidates of (mean - query) first. A
            coarse proxy run reads as a shifted input throughout (a low-resolution map looks
            rougher or smoother than a full one); left in, that shift would swamp the error
            the full run would have.

    The members' outputs must have the inputs' shape: predictions (members, n, dim) for
    queries (n, dim).
    """

    debias: bool = True

    def rate(self, members: jax.Array, queries: np.ndarray) -> np.ndarray:
        members = np.asarray(members, dtype=np.float64)
        queries = np.asarray(queries, dtype=np.float64)
        if members.ndim != 3 or members.shape[1:] != queries.shape:
            raise ValueError(f"ProxyInverseError needs predictions of the inputs, (members, {queries.shape[0]}, "
                             f"{queries.shape[1]}), got {members.shape}")
        miss = members.mean(axis=0) - queries
        if self.debias:
            miss = miss - np.median(miss, axis=0)
        return (miss**2).sum(axis=1) + members.var(axis=0).sum(axis=1)

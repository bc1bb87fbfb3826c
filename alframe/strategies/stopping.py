"""Stopping on committee agreement: stop paying for simulations once the members agree.

Without a test set there is no error to watch, but the committee's disagreement on the
candidates is free to compute and falls as the model converges. Two forms of one rule:

- `StopWhenAgreed` wraps a strategy and picks nothing once the disagreement is at or below
  a threshold, saying so in its `Selection`; alframe's loops end there and record that
  reason ("committee agreed: ...").
- `first_stop` applies the same kind of threshold to a recorded series (a store's per-round
  `mean_variance`, the disagreement on the test set), to choose a threshold after the fact.

For regression the disagreement is relative by default: the members' variance over the
candidates divided by the variance of the committee's mean prediction across them, so one
threshold means the same for any output scale (1e-3: the members disagree by about 3 % of
the output's spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import Strategy
from alframe.strategies.scores import Score, committee_variance, get_score, variance_exponent
from alframe.strategies.selection import Selection


def disagreement(committee: Committee, points: np.ndarray, *, score: str | Score = "variance",
                 relative: bool = True) -> float:
    """The committee's mean disagreement over points (n, dim), a float.

    With `relative`, divided by the variance across the points of the committee's mean
    prediction: scale free, for regression committees. With several outputs the variance score
    already divides each output by that spread (`committee_variance`), so it is not divided again.
    """
    score = get_score(score)
    members = np.asarray(committee.predict_members(np.asarray(points)))
    # Scaled by a power of two (exactly) so that a variance of outputs in tiny units (1e-20)
    # does not underflow float32; a value in the outputs' units is scaled back in float64.
    exponent = variance_exponent(score, members)
    members = jnp.asarray(np.ldexp(members, -exponent))
    value = float(jnp.mean(score(members)))
    if members.shape[-1] > 1 and score is committee_variance:
        return value  # already scale free
    if not relative:
        return float(np.ldexp(value, 2 * exponent))
    spread = float(jnp.mean(jnp.var(members.mean(axis=0), axis=0)))
    return value / spread if spread > 0 else float("inf")


@dataclass(frozen=True)
class StopWhenAgreed:
    """Wraps a strategy; picks nothing once the committee agrees on the candidates.

    Args:
        strategy: picks the batch while the committee still disagrees.
        threshold: stop when `disagreement(...)` over the candidates is at or below this.
        score: the disagreement score, a name in `SCORES` or a callable.
        relative: divide by the spread of the committee's predictions (regression).
    """

    strategy: Strategy
    threshold: float
    score: str | Score = "variance"
    relative: bool = True

    def __post_init__(self) -> None:
        get_score(self.score)
        if not self.threshold >= 0:
            raise ValueError(f"StopWhenAgreed threshold must be >= 0, got {self.threshold}")

    def agreed(self, committee: Committee, candidates: np.ndarray) -> bool:
        """Whether the committee's disagreement over candidates (n, dim) is at or below the threshold."""
        return disagreement(committee, candidates, score=self.score, relative=self.relative) <= self.threshold

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray | Selection:
        if k > 0 and len(candidates):
            value = disagreement(committee, candidates, score=self.score, relative=self.relative)
            if value <= self.threshold:
                return Selection.stop(np.shape(candidates)[1], f"committee agreed: disagreement {value:.3g} "
                                      f"<= threshold {self.threshold:g}")
        return self.strategy.select(committee, candidates, k, key=key, pending=pending, failed=failed)


def first_stop(values: np.ndarray, threshold: float, *, patience: int = 1) -> int | None:
    """First index at which `patience` consecutive values (rounds,) have been <= threshold; None if never.

    The index is that of the last of those rounds: where a loop with this rule would stop.
    """
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    run = 0
    for i, value in enumerate(np.asarray(values, dtype=np.float64)):
        run = run + 1 if value <= threshold else 0
        if run >= patience:
            return i
    return None

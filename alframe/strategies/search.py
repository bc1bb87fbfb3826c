"""Candidate search beyond a random pool: climb the committee's disagreement by gradient.

A pool of n random candidates in d inputs sits about n^(-1/d) of each input's range apart,
so the best of them misses the peak of disagreement by about that much. `GradientSearch`
lets any strategy choose its batch from the pool, then moves each pick uphill on the
committee's disagreement (JAX differentiates through the members' predictions) within a
small box around where it started, so the batch keeps the spread its strategy gave it.

The refined points come back as a `Selection` of points off the pool, so `GradientSearch`
composes with any wrapper; use it only on a continuous `Box` space, since the points it makes
are not rows of a finite pool.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import Strategy
from alframe.strategies.committee import QueryByCommittee, Spread
from alframe.strategies.scores import Score, get_score, variance_exponent
from alframe.strategies.selection import Selection, as_selection

MembersApply = Callable[[object, jax.Array], jax.Array]


class NotDifferentiableError(TypeError):
    """The committee's predictions cannot be differentiated with respect to the inputs."""


def differentiable_members(committee: Committee) -> tuple[MembersApply, object]:
    """(apply, args) with apply(args, x (n, dim)) -> (members, n, out) a pure JAX function:
    the committee's own `differentiable_members()` (`MLPCommittee` has one; `apply` hashable,
    so its compiled search is reused)."""
    own = getattr(committee, "differentiable_members", None)
    if callable(own):
        return own()
    raise NotDifferentiableError(
        f"GradientSearch cannot differentiate a {type(committee).__name__}; it needs a committee with "
        "differentiable_members(), such as an MLPCommittee")


@functools.cache
def _ascent(apply: MembersApply, score: Score, steps: int):
    """Jitted projected, normalised gradient ascent of score(apply(args, x) * out_scale) for each
    row; `out_scale` brings outputs in tiny units (1e-20) to where float32 squares them."""

    def point_scores(u, args, lo, width, out_scale):
        return score(apply(args, lo + u * width) * out_scale)

    grad = jax.grad(lambda u, args, lo, width, out_scale: jnp.sum(point_scores(u, args, lo, width, out_scale)))

    @jax.jit
    def run(u0, args, lo, width, out_scale, step, radius):
        low, high = jnp.maximum(u0 - radius, 0.0), jnp.minimum(u0 + radius, 1.0)

        def body(_, carry):
            u, best_u, best_s = carry
            g = grad(u, args, lo, width, out_scale)
            u = jnp.clip(u + step * g / (jnp.linalg.norm(g, axis=1, keepdims=True) + 1e-20), low, high)
            s = point_scores(u, args, lo, width, out_scale)
            better = s > best_s
            return u, jnp.where(better[:, None], u, best_u), jnp.where(better, s, best_s)

        s0 = point_scores(u0, args, lo, width, out_scale)
        _, best_u, best_s = jax.lax.fori_loop(0, steps, body, (u0, u0, s0))
        return best_u, s0, best_s

    return run


@dataclass(frozen=True)
class GradientSearch:
    """A strategy's picks, each moved uphill on the committee's disagreement.

    Args:
        strategy: chooses the batch from the pool (default: query by committee, spread out).
        score: the disagreement to climb, a name in `SCORES` or a JAX callable
            (members, n, out) -> (n,).
        steps: gradient steps per pick; the best point met is kept (never worse than the start).
        step_size: length of one step as a fraction of each input's range.
        radius: how far a pick may move from where it started, per input, as a fraction of
            that input's range.
        lower, upper: the box the picks stay in; by default the candidates' range.
    """

    strategy: Strategy = field(default_factory=lambda: QueryByCommittee(batch=Spread()))
    score: str | Score = "variance"
    steps: int = 20
    step_size: float = 0.005
    radius: float = 0.03
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        get_score(self.score)
        if self.steps < 0:
            raise ValueError(f"GradientSearch steps must be >= 0, got {self.steps}")
        if not (self.step_size > 0 and self.radius >= 0):
            raise ValueError(f"GradientSearch needs step_size > 0 and radius >= 0, got {self.step_size}, {self.radius}")
        if (self.lower is None) != (self.upper is None):
            raise ValueError("GradientSearch needs both lower and upper, or neither")

    def refine(self, committee: Committee, points: np.ndarray, *, lower: np.ndarray,
               upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Climb from points (k, dim) within [lower, upper]; returns (refined (k, dim),
        score before (k,), score after (k,)); for the variance score, of the outputs divided by
        a power of two that brings the largest |prediction| at the points to [0.5, 1)."""
        apply, args = differentiable_members(committee)
        lo = np.asarray(lower, np.float32)
        width = np.asarray(upper, np.float32) - lo
        width = np.where(width > 0, width, 1.0).astype(np.float32)
        u0 = ((np.asarray(points, np.float64) - lo) / width).astype(np.float32)
        score = get_score(self.score)
        run = _ascent(apply, score, int(self.steps))
        out_scale = jnp.float32(np.ldexp(1.0, -variance_exponent(score, np.asarray(committee.predict_members(points)))))
        best_u, before, after = run(u0, args, lo, width, out_scale, jnp.float32(self.step_size),
                                    jnp.float32(self.radius))
        refined = lo.astype(np.float64) + np.asarray(best_u, np.float64) * width
        refined = np.clip(refined, lower, upper)
        return refined, np.asarray(before), np.asarray(after)

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> Selection:
        candidates = np.asarray(candidates, dtype=np.float64)
        picked = as_selection(self.strategy.select(committee, candidates, k, key=key, pending=pending,
                                                   failed=failed), candidates)
        if len(picked) == 0 or self.steps == 0:
            return picked
        if self.lower is None:
            lower, upper = candidates.min(axis=0), candidates.max(axis=0)
        else:
            lower, upper = np.asarray(self.lower, np.float64), np.asarray(self.upper, np.float64)
        refined, _, _ = self.refine(committee, picked.points, lower=lower, upper=upper)
        # Two ascents may end on one point (the same corner of the box): the later one keeps its
        # start instead, so that no simulation runs twice.
        _, first = np.unique(refined, axis=0, return_index=True)
        repeated = np.setdiff1d(np.arange(len(refined)), first)
        refined[repeated] = picked.points[repeated]
        indices = np.full(len(refined), -1)
        indices[repeated] = picked.indices[repeated]
        return Selection(refined, indices, picked.cost, picked.stop_reason)

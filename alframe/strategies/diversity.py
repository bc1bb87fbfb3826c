"""Diverse batches: pick k candidates that are each worth running and not worth running together.

Three ways, from cheap to principled:

- `KCentre` (a batch rule for `QueryByCommittee`): farthest-first traversal of the most
  disputed candidates, so the batch covers every region of high disagreement.
- `KMeansPlusPlus` (a batch rule): k-means++ seeding with each candidate weighted by its
  disagreement times its squared distance to the picks so far.
- `CommitteeFantasy` (a strategy): a kriging-believer batch on the committee itself. The
  members' deviations from their mean give a covariance between candidates; localised by a
  Gaussian taper (so that five members give a full-rank covariance, as in ensemble Kalman
  filters), it is the covariance of a Gaussian surrogate. Each pick is the candidate of
  largest variance given the picks so far (the fantasy: conditioning on the pick's outcome,
  whatever it is, removes the variance it explains). Greedily that is a pivoted Cholesky
  factorisation, O(n k (members + dim)) for n candidates.

Distances are measured with each input scaled to the candidates' range (the unit cube).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from alframe.learners.base import Committee, observation_noise, output_spread
from alframe.strategies.base import check_k, not_pending, tie_breaks, uniform_draws


def unit_range(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest (dim,), width (dim,)) of `reference` (n, dim) per input; width 1 where it is fixed."""
    reference = np.asarray(reference, dtype=np.float64)
    lo, hi = reference.min(axis=0), reference.max(axis=0)
    return lo, np.where(hi > lo, hi - lo, 1.0)


def unit_scale(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`points` (m, dim) scaled so that `reference` (n, dim) spans the unit cube per input."""
    lo, width = unit_range(reference)
    return (np.asarray(points, dtype=np.float64) - lo) / width


def _squared_distances(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    """(m, dim) and (p, dim) -> (m, p) squared Euclidean distances."""
    return np.sum((points[:, None, :] - to[None, :, :]) ** 2, axis=-1)


@dataclass(frozen=True)
class KCentre:
    """Batch rule: farthest-first traversal of the top `fraction` of candidates by score.

    The first pick is the highest score; each next pick is the disputed candidate farthest
    from the picks so far and from the points `near` (runs in flight). Within the disputed set
    ties in distance go to the higher score.

    Args:
        fraction: share of the candidates (by score) the batch is drawn from; at least k of
            them are always kept.
    """

    fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"KCentre fraction must be in (0, 1], got {self.fraction}")

    def __call__(self, scores: np.ndarray, candidates: np.ndarray, k: int, *, key: jax.Array,
                 near: np.ndarray | None = None) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        usable = np.flatnonzero(np.isfinite(scores))
        check_k(k, len(usable))
        tie_break = tie_breaks(key, scores)
        ranked = usable[np.argsort(-(scores[usable] + tie_break[usable]), kind="stable")]
        pool = ranked[: max(k, int(np.ceil(self.fraction * len(usable))))]
        unit = unit_scale(candidates[pool], candidates)
        gap = np.full(len(pool), np.inf)
        if near is not None and len(near):
            gap = _squared_distances(unit, unit_scale(near, candidates)).min(axis=1)
        picked: list[int] = []
        for _ in range(k):
            # Farthest first; among equally far (all of them, before the first pick) the score decides.
            i = int(np.lexsort((-scores[pool], -gap))[0])
            picked.append(i)
            gap = np.minimum(gap, _squared_distances(unit, unit[i : i + 1])[:, 0])
            gap[picked] = -np.inf
        return pool[np.array(picked, dtype=np.int64)]


@dataclass(frozen=True)
class KMeansPlusPlus:
    """Batch rule: k-means++ seeding of the candidates, weighted by disagreement.

    Each pick is drawn with probability proportional to score^power x D^2, D being the
    distance to the nearest pick so far or point `near` (before the first pick, score^power
    alone). power = 0 is plain k-means++ (pure diversity); large powers approach top-k.

    Args:
        power: how strongly the disagreement weighs against the distance.
    """

    power: float = 1.0

    def __post_init__(self) -> None:
        if self.power < 0:
            raise ValueError(f"KMeansPlusPlus power must be >= 0, got {self.power}")

    def __call__(self, scores: np.ndarray, candidates: np.ndarray, k: int, *, key: jax.Array,
                 near: np.ndarray | None = None) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        usable = np.isfinite(scores)
        check_k(k, int(usable.sum()))
        weight = np.where(usable, np.maximum(scores, 0.0), 0.0)
        peak = weight.max()
        weight = (weight / peak if peak > 0 else np.where(usable, 1.0, 0.0)) ** self.power
        weight = np.where(usable, np.maximum(weight, 1e-12), 0.0)
        unit = unit_scale(candidates, candidates)
        d2 = np.ones(len(scores))
        if near is not None and len(near):
            d2 = _squared_distances(unit, unit_scale(near, candidates)).min(axis=1)
        picked: list[int] = []
        for step_key in jax.random.split(key, k):
            p = weight * d2
            p[picked] = 0.0
            if p.sum() <= 0:  # every remaining candidate sits on a pick: fall back to the weight
                p = weight.copy()
                p[picked] = 0.0
            i = int(np.searchsorted(np.cumsum(p), float(jax.random.uniform(step_key)) * p.sum(), side="right"))
            i = min(i, len(p) - 1)
            while p[i] == 0:  # rounding at the top end of the cumulative sum
                i -= 1
            picked.append(i)
            d2 = np.minimum(d2, _squared_distances(unit, unit[i : i + 1])[:, 0])
        return np.array(picked, dtype=np.int64)


def ensemble_deviations(committee: Committee, points: np.ndarray) -> np.ndarray:
    """Members' deviations from the committee mean, flattened over outputs: (members, n, outputs)
    -> (members * outputs, n) / sqrt(members), so that D^T D is the members' covariance. With
    several outputs, each is in units of its spread over the committee's runs where the
    committee records it (`output_spread`), so that no output counts for more by its units."""
    members = np.asarray(committee.predict_members(points), dtype=np.float64)
    spread = output_spread(committee) if members.shape[-1] > 1 else None
    return member_deviations(members if spread is None else members / spread)


def noise_in_deviation_units(committee: Committee) -> float | None:
    """The committee's observation noise (`alframe.learners.base.observation_noise`) in the units
    of `ensemble_deviations`' variance: the mean over outputs of each output's noise variance over
    its spread squared (in the simulator's units for one output); None where it models none."""
    noise = observation_noise(committee)
    if noise is None:
        return None
    noise = np.asarray(noise, dtype=np.float64).reshape(-1)
    spread = output_spread(committee) if len(noise) > 1 else None
    return float(np.mean(noise if spread is None else noise / np.asarray(spread, dtype=np.float64) ** 2))


def member_deviations(members: np.ndarray) -> np.ndarray:
    """`ensemble_deviations` of predictions already made: members (m, n, outputs) -> (m * outputs, n)."""
    deviations = members - members.mean(axis=0, keepdims=True)
    m, n, out = deviations.shape
    return np.transpose(deviations, (0, 2, 1)).reshape(m * out, n) / np.sqrt(m * out)


def localised_covariance(dev_a: np.ndarray, unit_a: np.ndarray, dev_b: np.ndarray, unit_b: np.ndarray,
                         length: float) -> np.ndarray:
    """Ensemble covariance tapered by a Gaussian of the distance: (r, a), (a, dim), (r, b),
    (b, dim) -> (a, b)."""
    taper = np.exp(-_squared_distances(unit_a, unit_b) / (2.0 * length**2))
    return (dev_a.T @ dev_b) * taper


@dataclass(frozen=True)
class CommitteeFantasy:
    """Greedy maximum-variance batch under the committee's own localised covariance.

    After each pick the variance of every candidate is conditioned on it (a kriging
    believer; the conditional variance does not depend on the fantasised outcome), so the
    next pick goes where the committee is still unsure given the batch so far. Runs in
    flight (`pending`) are conditioned on before the first pick.

    Args:
        length: the taper's range as a fraction of each input's range; the reach of one
            run's information. Smaller is closer to plain top-k.
        jitter: relative variance added to every diagonal entry, a floor under the pivots.
    """

    length: float = 0.1
    jitter: float = 1e-9

    def __post_init__(self) -> None:
        if not self.length > 0:
            raise ValueError(f"CommitteeFantasy length must be > 0, got {self.length}")
        if self.jitter < 0:
            raise ValueError(f"CommitteeFantasy jitter must be >= 0, got {self.jitter}")

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        candidates = np.asarray(candidates, dtype=np.float64)
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        n = len(candidates)
        points = candidates if pending is None or len(pending) == 0 else np.vstack([candidates, pending])
        dev = ensemble_deviations(committee, points)
        unit = unit_scale(points, candidates)
        variance = np.sum(dev**2, axis=0)
        variance = variance + self.jitter * max(float(variance.max()), 1e-300)
        tie_break = uniform_draws(key, len(points)) * 1e-12 * max(float(variance.max()), 1e-300)
        factors: list[np.ndarray] = []
        residual = variance.copy()

        def condition_on(i: int) -> None:
            column = localised_covariance(dev, unit, dev[:, i : i + 1], unit[i : i + 1], self.length)[:, 0]
            column[i] = variance[i]
            for f in factors:
                column = column - f * f[i]
            pivot = column[i]
            if pivot <= 0:
                return
            f = column / np.sqrt(pivot)
            factors.append(f)
            np.subtract(residual, f**2, out=residual)

        for j in range(n, len(points)):
            condition_on(j)
        picked: list[int] = []
        allowed = np.concatenate([available, np.zeros(len(points) - n, dtype=bool)])
        for _ in range(k):
            score = np.where(allowed, residual + tie_break, -np.inf)
            i = int(np.argmax(score))
            picked.append(i)
            allowed[i] = False
            condition_on(i)
        return np.array(picked, dtype=np.int64)

"""Expected variance reduction: run where the answer would settle the most of the committee's doubt.

Plain query by committee asks where the members disagree; this asks how much disagreement,
summed over a reference set of inputs, one run would remove. Under the committee's localised
covariance C (see `alframe.strategies.diversity.CommitteeFantasy`) running x leaves every
reference point r with variance C(r, r) - C(r, x)^2 / C(x, x), so the expected reduction is

    score(x) = sum_r w(r) C(r, x)^2 / (C(x, x) + noise),

with every weight w(r) = 1, or weights from `weight` (`alframe.strategies.LocalVariation`:
more where the committee's answer changes fast).

A committee with a model of its own error correlation (`alframe.learners.base.Correlated`: a
Gaussian process's posterior, which follows its fitted length scales) gives C as that correlation
scaled by the members' standard deviations; for any other, C is the members' covariance tapered
by a Gaussian of range `length`.

A point whose neighbourhood is uncertain wins over an isolated spike of disagreement (at a
corner of the box, say) that no other input shares. Batches are greedy: after each pick C is
conditioned on it, as in a kriging-believer fantasy, so the next pick reduces what is left.

Runs in flight and runs that failed are conditioned on before the first pick. A failed run
settles its neighbourhood as a finished one would: where the simulator fails there is nothing to
learn (the test set leaves such inputs out), but the committee, which never trains on a failure,
stays unsure there and would otherwise keep sending runs to the edge of a region that fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from alframe.learners.base import Committee, error_correlation
from alframe.strategies.base import check_k, not_pending, uniform_draws
from alframe.strategies.diversity import ensemble_deviations, localised_covariance, noise_in_deviation_units, unit_scale


@dataclass(frozen=True)
class VarianceReduction:
    """Greedy batch of the largest expected reduction of integrated committee variance.

    Args:
        length: the covariance taper's range as a fraction of each input's range (committees
            without a correlation of their own).
        reference: size of the reference set, a random subset (drawn with the key) of the
            candidates. Uniformly drawn candidates make it a Monte Carlo sample of the input
            distribution, so the score estimates the reduction of the integrated variance.
        noise: observation noise variance relative to the largest committee variance; a
            floor that keeps the ratio finite where the committee already agrees. Where the
            committee models its observations' noise (a Gaussian process's white-noise term,
            `alframe.learners.base.observation_noise`), a run settles at most what that noise
            leaves: its variance is used wherever it is above the floor.
        weight: how much each reference point counts: a callable (committee, reference (r, dim),
            candidates (n, dim)) -> (r,) such as `alframe.strategies.LocalVariation`; None
            counts every one the same.
        failure_settles: how much of the committee's doubt at a failed run's input that run
            counts as settling (1: all of it, as a finished run would; 0.5: half, as a run with
            noise of that doubt's size would). Less keeps sending some runs to the edge of a
            region that fails, where the output may be steepest.

    `select(..., pending=, failed=)` conditions on both (m, dim) and (f, dim) before choosing.
    """

    length: float = 0.1
    reference: int = 1000
    noise: float = 1e-6
    weight: Callable[[Committee, np.ndarray, np.ndarray], np.ndarray] | None = None
    failure_settles: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.failure_settles <= 1:
            raise ValueError(f"VarianceReduction failure_settles must be in (0, 1], got {self.failure_settles}")
        if not self.length > 0:
            raise ValueError(f"VarianceReduction length must be > 0, got {self.length}")
        if self.reference < 1:
            raise ValueError(f"VarianceReduction reference must be >= 1, got {self.reference}")
        if self.noise < 0:
            raise ValueError(f"VarianceReduction noise must be >= 0, got {self.noise}")

    def reductions(self, committee: Committee, candidates: np.ndarray, *, key: jax.Array) -> np.ndarray:
        """Expected reduction of the reference set's summed variance per candidate, (n,)."""
        return self._greedy(committee, np.asarray(candidates, np.float64), 0, key=key, pending=None,
                            available=np.ones(len(candidates), bool))[1]

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        candidates = np.asarray(candidates, dtype=np.float64)
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        return self._greedy(committee, candidates, k, key=key, pending=pending, available=available,
                            failed=failed)[0]

    def _greedy(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
                pending: np.ndarray | None, available: np.ndarray,
                failed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(picks (k,), the first pick's scores (n,))."""
        n = len(candidates)
        ref_key, tie_key = jax.random.split(key)
        reference = np.sort(np.asarray(jax.random.permutation(ref_key, n))[: min(self.reference, n)])
        dim = candidates.shape[1]
        in_flight = np.empty((0, dim)) if pending is None else np.asarray(pending, np.float64).reshape(-1, dim)
        failures = np.empty((0, dim)) if failed is None else np.asarray(failed, np.float64).reshape(-1, dim)
        points = np.vstack([candidates, in_flight, failures])
        n_settled = n + len(in_flight)
        dev = ensemble_deviations(committee, points)
        variance = np.sum(dev**2, axis=0)
        scale = max(float(variance.max()), 1e-300)
        # A run settles at most what its observation's noise leaves: the committee's own noise
        # model where it has one, never less than the floor.
        noise = max(self.noise * scale, noise_in_deviation_units(committee) or 0.0)
        covariance = committee_covariance(committee, points, candidates, dev, self.length)
        cross = covariance(reference, slice(None))  # (r, points)
        weight = np.ones(len(reference)) if self.weight is None else np.asarray(
            self.weight(committee, candidates[reference], candidates), dtype=np.float64)
        residual = variance.copy()
        factors: list[np.ndarray] = []

        def condition_on(i: int, extra_noise: float = 0.0) -> None:
            column = covariance(slice(None), slice(i, i + 1))[:, 0]
            column[i] = variance[i]
            for f in factors:
                column = column - f * f[i]
            pivot = column[i] + noise + extra_noise
            if column[i] <= 0:
                return
            # Conditioning on a noisy observation of x: the covariance drops by c c^T / (c_xx + noise).
            factors.append(column / np.sqrt(pivot))
            np.subtract(residual, factors[-1] ** 2, out=residual)
            cross[:] -= np.outer(cross[:, i], column) / pivot

        for j in range(n, n_settled):
            condition_on(j)
        for j in range(n_settled, len(points)):
            condition_on(j, variance[j] * (1.0 / self.failure_settles - 1.0))
        tie_break = uniform_draws(tie_key, len(points)) * 1e-12 * scale
        allowed = np.concatenate([available, np.zeros(len(points) - n, dtype=bool)])
        first = None
        picked: list[int] = []
        for step in range(max(k, 1)):
            gain = (weight @ cross**2) / (np.maximum(residual, 0.0) + noise)
            if first is None:
                first = gain[:n].copy()
            if step >= k:
                break
            i = int(np.argmax(np.where(allowed, gain + tie_break, -np.inf)))
            picked.append(i)
            allowed[i] = False
            condition_on(i)
        return np.array(picked, dtype=np.int64), first


Covariance = Callable[[Any, Any], np.ndarray]


def committee_covariance(committee: Committee, points: np.ndarray, candidates: np.ndarray, dev: np.ndarray,
                         length: float) -> Covariance:
    """C(rows, cols) over `points` (n, dim), rows and cols indexing them: the members' variance at
    each point, correlated by the committee's own error correlation where it has one (a
    Gaussian process), else by the members' covariance tapered by a Gaussian of range `length`.
    `dev` is `ensemble_deviations(committee, points)`."""
    rho = error_correlation(committee, points)
    if rho is not None:
        sd = np.sqrt(np.sum(dev**2, axis=0))
        return lambda rows, cols: rho(rows, cols) * sd[rows][:, None] * sd[cols][None, :]
    unit = unit_scale(points, candidates)
    return lambda rows, cols: localised_covariance(dev[:, rows], unit[rows], dev[:, cols], unit[cols], length)

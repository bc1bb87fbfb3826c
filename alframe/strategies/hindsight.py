"""Hindsight: the design a strategy would make if it knew the simulator. A benchmark's reference,
not a strategy to use.

Every other strategy has to guess where a run would help. `Hindsight` runs the simulator on
every candidate and on a validation set of its own (free only where the simulator is a cheap
test function) and picks, greedily, the candidate whose true output would lower the validation
error the most once the committee is conditioned on it. Set beside `strategy=random` and
`strategy=qbc` under the same learner and budget (`python -m experiments.bench.suite
--strategies random,qbc,hindsight`), the runs it saves say roughly how much a strategy could
save with that learner, and how much of it the strategy under test takes.

Conditioning uses the committee's covariance C, as `VarianceReduction` does (a Gaussian
process's own posterior correlation, else the members' covariance under a Gaussian taper):
after a run at x with output y(x), every point r moves by

    m(r) <- m(r) + C(r, x) / (C(x, x) + noise) * (y(x) - m(x)),

the kriging update under C. For a Gaussian process C is its posterior correlation scaled by the
members' spread, which adds the jackknife's to the posterior's, so the update is close to, not
exactly, the process's own. The greedy choice is myopic and the committee refits after each
batch, so a sequential design could do better than `Hindsight`; but it knows every answer,
which no strategy does. Runs still in flight are left out of the candidates (and not
conditioned on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.base import check_k, not_pending, uniform_draws
from alframe.strategies.diversity import member_deviations
from alframe.strategies.reduction import committee_covariance


@dataclass(frozen=True)
class Hindsight:
    """Greedy batch of the runs whose true outputs lower the validation error the most.

    Args:
        oracle: the simulator (an `Oracle`); run on every round's candidates and once on the
            validation set, none of it charged to the budget or recorded in the store.
        validation: validation points, drawn uniformly from the oracle's space with `seed`.
            The error is the squared error summed over them and over outputs, each output
            divided by its validation variance.
        seed: seed of the validation set (the same for every run of a benchmark).
        length: the covariance taper's range for committees without a correlation of their
            own (see `VarianceReduction`).
        noise: observation noise variance relative to the largest committee variance.

    `select(committee, candidates (n, dim), k, key=...)` returns k indices into candidates.
    """

    oracle: Any
    validation: int = 500
    seed: int = 0
    length: float = 0.1
    noise: float = 1e-6
    _truth: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.validation < 1:
            raise ValueError(f"Hindsight validation must be >= 1 point, got {self.validation}")
        if not self.length > 0:
            raise ValueError(f"Hindsight length must be > 0, got {self.length}")
        if self.noise < 0:
            raise ValueError(f"Hindsight noise must be >= 0, got {self.noise}")
        task = getattr(getattr(self.oracle, "outputs", None), "task", "regression")
        if task != "regression":
            raise ValueError(f"Hindsight needs a regression simulator (its error is a squared error), "
                             f"got {task!r} outputs")

    def _validation_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(x (v, dim), y (v, outputs)) of the validation runs that succeeded, simulated once."""
        if "validation" not in self._truth:
            x = self.oracle.space.draw(self.validation, seed=self.seed)
            outcome = self.oracle.run(x)
            if not np.any(outcome.ok):
                raise ValueError(f"Hindsight: every one of the {len(x)} validation runs failed")
            self._truth["validation"] = (x[outcome.ok], np.asarray(outcome.y, np.float64)[outcome.ok])
        return self._truth["validation"]

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        candidates = np.asarray(candidates, dtype=np.float64)
        available = not_pending(candidates, pending)
        check_k(k, int(available.sum()))
        x_val, y_val = self._validation_set()
        outcome = self.oracle.run(candidates)
        available &= outcome.ok
        if int(available.sum()) < k:
            raise ValueError(f"Hindsight: only {int(available.sum())} of {len(candidates)} candidates ran, "
                             f"{k} asked for")
        spread = np.std(y_val, axis=0)
        unit = np.where(spread > 0, spread, 1.0)
        truth = np.vstack([np.where(outcome.ok[:, None], outcome.y, 0.0), y_val])
        points = np.vstack([candidates, x_val])
        return _greedy(committee, points, truth / unit, unit, len(candidates), available, k, self.length,
                       self.noise, key)


def _greedy(committee: Committee, points: np.ndarray, truth: np.ndarray, unit: np.ndarray, n: int,
            available: np.ndarray, k: int, length: float, noise: float, key: jax.Array) -> np.ndarray:
    """k picks among the first n of points (p, dim) (the candidates; the rest validate), given
    every point's true outputs (p, outputs) divided by `unit` (outputs,), the units the error is
    summed in."""
    members = np.asarray(committee.predict_members(points), dtype=np.float64) / unit
    mean = members.mean(axis=0)                                   # (p, outputs)
    dev = member_deviations(members)
    p = len(points)
    covariance = committee_covariance(committee, points, points[:n], dev, length)
    variance = np.sum(dev**2, axis=0)
    floor = noise * max(float(variance.max()), 1e-300)
    validation = np.arange(n, p)
    cross = covariance(validation, slice(0, n))                   # (v, n)
    residual = variance[:n].copy()
    error = truth[n:] - mean[n:]                                   # (v, outputs)
    miss = truth[:n] - mean[:n]                                    # (n, outputs)
    factors: list[np.ndarray] = []
    tie_break = uniform_draws(key, n) * 1e-12
    allowed = available.copy()
    picked: list[int] = []
    for _ in range(k):
        pivot = np.maximum(residual, 0.0) + floor
        # Validation error after conditioning on x: sum (e - w m_x)^2 with w = C(., x) / pivot_x.
        gain = 2.0 * np.sum(miss * (cross.T @ error), axis=1) / pivot \
            - np.sum(miss**2, axis=1) * np.sum(cross**2, axis=0) / pivot**2
        i = int(np.argmax(np.where(allowed, gain + tie_break * np.abs(gain).max(initial=0.0), -np.inf)))
        picked.append(i)
        allowed[i] = False
        column = covariance(slice(0, n), slice(i, i + 1))[:, 0]
        column[i] = variance[i]
        for factor in factors:
            column = column - factor * factor[i]
        weights = cross[:, i] / pivot[i]
        error = error - np.outer(weights, miss[i])
        miss = miss - np.outer(column / pivot[i], miss[i])
        cross = cross - np.outer(cross[:, i], column) / pivot[i]
        residual = residual - column**2 / pivot[i]
        factors.append(column / np.sqrt(pivot[i]))
    return np.array(picked, dtype=np.int64)


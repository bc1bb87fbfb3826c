"""Outputs beyond float32's range: a committee fitted on outputs divided by a power of ten and
asked in float64.

Committees predict in float32, which holds magnitudes from about 1e-38 to 3.4e38. A simulator
in cgs units can return more: a luminosity of 1e44 erg/s, a supernova's 1e51 erg. Every member
would then predict inf. `OutputUnits` wraps any regression committee so that it learns the
outputs divided by a power of ten near their largest magnitude, and multiplies its members'
predictions back in float64. Where the outputs sit well inside float32's range (the usual
case) it divides by nothing and passes the committee's own predictions through unchanged.
`ActiveLearner` applies it to every committee (`in_float32_range`).

    >>> committee = in_float32_range(GaussianProcessCommittee())   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from alframe.learners._shared import standardisation
from alframe.learners.auto import held_out_of
from alframe.learners.base import CorrelationOf, error_correlation, fit_report, observation_noise, start_deferred

FLOAT32_SAFE = (1e-30, 1e30)
"""Largest output magnitudes a committee is fitted on as they are: within them, float32 keeps
about seven digits of every prediction and of its spread."""


def output_unit(y: np.ndarray) -> float | np.ndarray:
    """What regression outputs y (n,) or (n, n_outputs) are divided by before a committee sees
    them: 1 where every output's largest magnitude lies within `FLOAT32_SAFE` (or there are
    none); else, per output, the power of ten nearest its largest magnitude where that lies
    outside, 1 where inside, as an array (n_outputs,): a luminosity of 1e35 and a flux of 1e-9
    from one simulator are each kept in range."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return 1.0
    columns = y.reshape(len(y), -1)
    magnitude = np.max(np.abs(np.where(np.isfinite(columns), columns, 0.0)), axis=0)
    outside = (magnitude > 0) & ((magnitude < FLOAT32_SAFE[0]) | (magnitude > FLOAT32_SAFE[1]))
    if not outside.any():
        return 1.0
    unit = np.where(outside, 10.0 ** np.round(np.log10(np.where(outside, magnitude, 1.0))), 1.0)
    return float(unit[0]) if y.ndim == 1 else unit


def _passes_through(unit: float | np.ndarray) -> bool:
    return isinstance(unit, float) and unit == 1.0


def is_classifier(committee: Any) -> bool:
    """Whether a committee predicts classes (by its `task` or `classes`), not values."""
    return getattr(committee, "task", None) == "classification" or getattr(committee, "classes", None) is not None


@dataclasses.dataclass(frozen=True)
class OutputUnits:
    """`committee` fitted on y / unit, its members' predictions multiplied by unit in float64.

    Args:
        committee: any committee; a classifier's labels are passed through as they are.
        unit: what the last fit's outputs were divided by (`output_unit`): 1, or one power of
            ten per output (n_outputs,); 1 before a fit.

    `fit(x, y, key=...)` takes x (n, dim) and y (n,) or (n, n_outputs); `predict_members(x)`
    gives the wrapped committee's (members, n, n_outputs), in float64 when unit is not 1;
    `held_out_predictions()` and `correlation(points)` pass the wrapped committee's through
    (the first multiplied by unit), and so do `differentiable_members()`, `report()` and
    `start_deferred()`; any other attribute is the wrapped committee's.
    """

    committee: Any
    unit: float | np.ndarray = 1.0
    spread: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self.committee, "is_fitted", True))

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "OutputUnits":
        classifier = is_classifier(self.committee)
        unit = 1.0 if classifier else output_unit(y)
        scaled = y if _passes_through(unit) else np.asarray(y, dtype=np.float64) / unit
        spread = None if classifier else standardisation(np.reshape(y, (len(y), -1)))[1]
        return dataclasses.replace(self, committee=self.committee.fit(x, scaled, key=key), unit=unit, spread=spread)

    def output_spread(self) -> np.ndarray | None:
        """Each output's spread (n_outputs,) over the runs of the last fit, in the simulator's
        units (1 for an output that did not vary; see `standardisation`); None for a classifier
        or before a fit."""
        return self.spread

    def predict_members(self, x: np.ndarray) -> Any:
        members = self.committee.predict_members(x)
        return members if _passes_through(self.unit) else np.asarray(members, dtype=np.float64) * self.unit

    def held_out_predictions(self) -> np.ndarray:
        """The wrapped committee's held-out predictions of the training rows (n, n_outputs), in
        the simulator's units."""
        predicted = held_out_of(self.committee)
        return predicted if _passes_through(self.unit) else np.asarray(predicted, dtype=np.float64) * self.unit

    def correlation(self, points: np.ndarray) -> CorrelationOf | None:
        """The wrapped committee's error correlation among points (n, dim), or None: a unit
        changes the size of the errors, not how they are correlated."""
        return error_correlation(self.committee, points)

    def noise_variance(self) -> np.ndarray | None:
        """The wrapped committee's observation noise (n_outputs,) in the simulator's units, or None
        (see `alframe.learners.base.observation_noise`)."""
        noise = observation_noise(self.committee)
        return None if noise is None else np.asarray(noise, dtype=np.float64) * np.asarray(self.unit) ** 2

    def __getattr__(self, name: str) -> Any:
        # Anything else is the wrapped committee's (a peer's `peer`, a GP's `fitted`), so that
        # wrapping it changes nothing a caller can see but the units of the outputs.
        if name == "committee" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.committee, name)

    def differentiable_members(self) -> tuple[Any, Any]:
        """The wrapped committee's (apply, args) (see `alframe.strategies.search`), which predict
        outputs divided by unit: a gradient search ranks by a score whose scale it sets itself."""
        from alframe.strategies.search import differentiable_members

        return differentiable_members(self.committee)

    def report(self) -> dict[str, float | str]:
        return fit_report(self.committee)

    def start_deferred(self) -> None:
        start_deferred(self.committee)


def in_float32_range(committee: Any) -> Any:
    """`committee` wrapped in `OutputUnits`, unless it is already, or is a wrapper (such as
    `SpaceCoordinates`) of one that is."""
    if isinstance(committee, OutputUnits) or isinstance(getattr(committee, "committee", None), OutputUnits):
        return committee
    return OutputUnits(committee)

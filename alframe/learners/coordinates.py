"""A committee that learns in the input space's own coordinates: log10 of log-scale inputs, the
phase of periodic ones, an indicator per option of categorical ones.

A `Box` may declare inputs that span decades (`log`), that wrap around (`periodic`: an angle,
a phase) or that name unordered options (`categorical`). Every learner would otherwise see them
in raw units: a mass drawn log-uniformly over four decades crowds its small values into a
sliver of the range, an angle of 0.01 looks as far from 2 pi - 0.01 as from pi, and option 2
of a choice looks nearer to option 1 than to option 4. `SpaceCoordinates` wraps any committee
so that it fits and predicts on `space.coordinates(x)` while the loop, the strategies and the
store keep the simulator's inputs. `ActiveLearner` applies it whenever the space declares such
inputs (`in_space_coordinates`), so every learner, `learner=auto`'s families included, benefits.

    >>> box = Box(names=("theta", "r"), lower=(0, 1), upper=(2 * np.pi, 1e4), periodic=("theta",), log=("r",))
    >>> committee = in_space_coordinates(GaussianProcessCommittee(), box)   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from alframe.learners.auto import held_out_of
from alframe.learners.base import (CorrelationOf, error_correlation, fit_report, observation_noise, output_spread,
                                   start_deferred)


@dataclasses.dataclass(frozen=True)
class SpaceCoordinates:
    """`committee` fitted and asked on `space.coordinates(x)` instead of x.

    Args:
        committee: any committee.
        space: a space with `coordinates(x)`: points (n, dim) -> (n, m) (a `Box`).

    `fit(x, y, key=...)` and `predict_members(x)` take the simulator's inputs x (n, dim) and
    give the wrapped committee's shapes; `held_out_predictions()`, `correlation(points)`,
    `report()` and `start_deferred()` pass the wrapped committee's through.
    """

    committee: Any
    space: Any

    @property
    def is_fitted(self) -> bool:
        return bool(getattr(self.committee, "is_fitted", True))

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "SpaceCoordinates":
        return dataclasses.replace(self, committee=self.committee.fit(self.space.coordinates(x), y, key=key))

    def predict_members(self, x: np.ndarray) -> jax.Array:
        return self.committee.predict_members(self.space.coordinates(x))

    def held_out_predictions(self) -> np.ndarray:
        return held_out_of(self.committee)

    def correlation(self, points: np.ndarray) -> CorrelationOf | None:
        """The wrapped committee's error correlation among points (n, dim), or None."""
        return error_correlation(self.committee, self.space.coordinates(points))

    def report(self) -> dict[str, float | str]:
        return fit_report(self.committee)

    def start_deferred(self) -> None:
        start_deferred(self.committee)

    def output_spread(self) -> np.ndarray | None:
        """The wrapped committee's (see `alframe.learners.base.output_spread`)."""
        return output_spread(self.committee)

    def noise_variance(self) -> np.ndarray | None:
        """The wrapped committee's (see `alframe.learners.base.observation_noise`)."""
        return observation_noise(self.committee)


def in_space_coordinates(committee: Any, space: Any) -> Any:
    """`committee` wrapped in `SpaceCoordinates` when `space` declares log-scale, periodic or
    categorical inputs (a `Box` that is not `plain`); otherwise, or when it is wrapped already, unchanged."""
    if isinstance(committee, SpaceCoordinates) or getattr(space, "plain", True):
        return committee
    return SpaceCoordinates(committee, space)

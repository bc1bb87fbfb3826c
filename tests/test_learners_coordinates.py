"""Learning in the space's coordinates: log10 of log-scale inputs, the phase of periodic ones."""

from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor

from alframe.active_learner import ActiveLearner, Runs
from alframe.learners import AutoCommittee, EnsembleCommittee, GaussianProcessCommittee, OutputUnits, SpaceCoordinates
from alframe.learners.base import error_correlation, fit_report
from alframe.space import Box
from alframe.strategies.reduction import VarianceReduction

KEY = jax.random.key(0)
ANGLE = Box(names=("theta", "r"), lower=(0.0, 0.0), upper=(2 * np.pi, 1.0), periodic=("theta",))


def arm(x):
    """(n, 2) -> (n, 1): smooth and periodic in theta, with no symmetry about theta = pi."""
    return (np.exp(np.sin(x[:, 0])) + np.cos(x[:, 0]) * x[:, 1])[:, None]


def test_a_periodic_input_joins_its_ends():
    # Runs everywhere but near theta = 0 = 2 pi: in raw units the gap is two extrapolations,
    # in the phase it is a short interpolation between neighbours.
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(0.4, 2 * np.pi - 0.4, 60), rng.uniform(0, 1, 60)])
    gap = np.column_stack([rng.uniform(-0.3, 0.3, 200) % (2 * np.pi), rng.uniform(0, 1, 200)])
    wrapped = SpaceCoordinates(GaussianProcessCommittee(folds=2), ANGLE).fit(x, arm(x), key=KEY)
    raw = GaussianProcessCommittee(folds=2).fit(x, arm(x), key=KEY)
    error = {name: float(np.mean((np.asarray(c.predict_members(gap)).mean(0) - arm(gap)) ** 2))
             for name, c in (("wrapped", wrapped), ("raw", raw))}
    assert error["wrapped"] < 1e-4 and error["raw"] > 100 * error["wrapped"], error
    assert wrapped.held_out_predictions().shape == (60, 1)


def test_a_log_scale_input_is_learned_in_decades():
    box = Box(names=("mass",), lower=(1e-3,), upper=(1e3,), log=("mass",))
    x = box.draw(40, seed=0, method="sobol")
    y = np.tanh(np.log10(x))  # a change in every decade: in raw units, all but one are crowded at 0
    test = box.draw(300, seed=1)
    fitted = {name: c.fit(x, y, key=KEY) for name, c in
              (("wrapped", SpaceCoordinates(GaussianProcessCommittee(folds=2), box)),
               ("raw", GaussianProcessCommittee(folds=2)))}
    r2 = {name: 1 - np.mean((np.asarray(c.predict_members(test)).mean(0) - np.tanh(np.log10(test))) ** 2)
          / np.var(np.tanh(np.log10(test))) for name, c in fitted.items()}
    assert r2["wrapped"] > 0.99 and r2["raw"] < 0.9, r2


def test_a_categorical_input_is_learned_as_unordered_options():
    # Option 1 is not "between" options 0 and 2: as a number the GP must bend through it; as
    # indicators each option is its own level.
    box = Box(names=("solver", "x"), lower=(0, 0), upper=(2, 1), categorical=("solver",))

    def f(x):
        level = np.array([0.0, 5.0, 0.5])[x[:, 0].astype(int)]
        return (level + np.sin(3 * x[:, 1]))[:, None]

    x, test = box.draw(45, seed=1, method="sobol"), box.draw(300, seed=2)
    assert set(np.unique(x[:, 0])) == {0.0, 1.0, 2.0}
    wrapped = SpaceCoordinates(GaussianProcessCommittee(folds=2), box).fit(x, f(x), key=KEY)
    raw = GaussianProcessCommittee(folds=2).fit(x, f(x), key=KEY)
    error = {name: float(np.mean((np.asarray(c.predict_members(test)).mean(0) - f(test)) ** 2))
             for name, c in (("wrapped", wrapped), ("raw", raw))}
    assert error["wrapped"] < 1e-3 and error["wrapped"] < error["raw"], error


def test_the_active_learner_wraps_only_where_the_space_declares_coordinates():
    plain = Box(names=("a", "b"), lower=(0, 0), upper=(1, 1))
    gp = GaussianProcessCommittee(folds=2)
    learner = ActiveLearner(plain, gp, VarianceReduction(), runs=Runs.empty(2, 1))
    assert learner.committee == OutputUnits(gp)  # every committee: outputs in float32's range
    learner = ActiveLearner(ANGLE, gp, VarianceReduction(), runs=Runs.empty(2, 1))
    assert learner.committee == SpaceCoordinates(OutputUnits(gp), ANGLE)
    again = ActiveLearner(ANGLE, learner.committee, VarianceReduction(), runs=Runs.empty(2, 1))
    assert again.committee == learner.committee  # not wrapped twice


def test_the_wrapper_passes_the_choice_the_correlation_and_a_checkpoint_through():
    families = {"gp": GaussianProcessCommittee(folds=2),
                "extra_trees": EnsembleCommittee(ExtraTreesRegressor(n_estimators=20, bootstrap=True, oob_score=True),
                                                 task="regression")}
    x = ANGLE.draw(40, seed=0)
    wrapped = SpaceCoordinates(AutoCommittee(families=families), ANGLE).fit(x, arm(x), key=KEY)
    assert fit_report(wrapped)["learner"] == "gp"
    candidates = ANGLE.draw(50, seed=1)
    rho = error_correlation(wrapped, candidates)
    assert rho is not None and rho(slice(None), slice(None)).shape == (50, 50)
    picks = VarianceReduction(reference=50).select(wrapped, candidates, 3, key=KEY)
    assert len(set(picks.tolist())) == 3
    restored = pickle.loads(pickle.dumps(wrapped))
    np.testing.assert_array_equal(np.asarray(restored.predict_members(candidates)),
                                  np.asarray(wrapped.predict_members(candidates)))


def test_coordinates_refuse_points_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        SpaceCoordinates(GaussianProcessCommittee(folds=2), ANGLE).fit(np.zeros((5, 3)), np.zeros(5), key=KEY)

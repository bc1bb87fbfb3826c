"""Hindsight: the greedy design that knows the simulator's answers."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from alframe.learners import GaussianProcessCommittee
from alframe.oracle import FunctionOracle, Outcome, OutputSpec
from alframe.space import Box
from alframe.strategies import Hindsight, RandomSampling, VarianceReduction
from alframe.strategies.hindsight import _greedy
from alframe.strategies.reduction import committee_covariance
from alframe.testing import smooth_oracle, threshold_oracle


def bumpy_oracle():
    """A 2-D function with a bump that the first runs barely see."""

    def fn(x):
        return np.sin(3 * x[:, 0]) + 3 * np.exp(-((x[:, 0] - 0.8) ** 2 + (x[:, 1] - 0.7) ** 2) / 0.04)

    return FunctionOracle(fn=fn, space=Box(names=("a", "b"), lower=(0.0, 0.0), upper=(1.0, 1.0)),
                          outputs=OutputSpec(names=("y",)))


def fitted_gp(oracle, n, seed=0):
    x = oracle.space.draw(n, seed=seed, method="sobol")
    return x, GaussianProcessCommittee().fit(x, oracle.run(x).y, key=jax.random.key(seed))


def test_the_first_pick_is_the_one_that_lowers_the_validation_error_most():
    oracle = bumpy_oracle()
    _, committee = fitted_gp(oracle, 16)
    candidates, validation = oracle.space.draw(50, seed=1), oracle.space.draw(40, seed=2)
    points = np.vstack([candidates, validation])
    truth = oracle.run(points).y
    [pick] = _greedy(committee, points, truth, np.ones(1), 50, np.ones(50, bool), 1, 0.1, 1e-6, jax.random.key(0))
    # Brute force: condition the committee's mean on each candidate's true output in turn.
    members = np.asarray(committee.predict_members(points), np.float64)
    mean = members.mean(axis=0)
    deviations = members - mean[None]
    dev = np.transpose(deviations, (0, 2, 1)).reshape(-1, len(points)) / np.sqrt(deviations.shape[0])
    covariance = committee_covariance(committee, points, candidates, dev, 0.1)
    floor = 1e-6 * np.sum(dev**2, axis=0).max()
    errors = []
    for i in range(50):
        c = covariance(slice(None), slice(i, i + 1))[:, 0]
        moved = mean[:, 0] + c / (c[i] + floor) * (truth[i, 0] - mean[i, 0])
        errors.append(np.sum((truth[50:, 0] - moved[50:]) ** 2))
    assert pick == int(np.argmin(errors))


def test_knowing_the_answers_beats_random_and_variance_reduction_on_a_bump():
    oracle = bumpy_oracle()
    x, committee = fitted_gp(oracle, 16)
    test = oracle.space.draw(2000, seed=9)
    y_test = oracle.run(test).y[:, 0]

    def error_after(strategy):
        candidates = oracle.space.draw(500, seed=3)
        picks = np.asarray(strategy.select(committee, candidates, 8, key=jax.random.key(4)))
        runs = np.vstack([x, candidates[picks]])
        refit = GaussianProcessCommittee().fit(runs, oracle.run(runs).y, key=jax.random.key(0))
        return float(np.mean((np.asarray(refit.predict_members(test)).mean(axis=0)[:, 0] - y_test) ** 2))

    hindsight = error_after(Hindsight(oracle=oracle, validation=300))
    assert hindsight < 0.5 * error_after(RandomSampling())   # 0.016 against 0.048
    assert hindsight < 0.5 * error_after(VarianceReduction())  # 0.050


def test_the_validation_set_is_simulated_once():
    calls = []
    oracle = smooth_oracle()
    counting = type("Counting", (), {"space": oracle.space, "outputs": oracle.outputs,
                                      "run": lambda self, q: calls.append(len(q)) or oracle.run(q)})()
    _, committee = fitted_gp(oracle, 12)
    strategy = Hindsight(oracle=counting, validation=30)
    for seed in range(2):
        strategy.select(committee, oracle.space.draw(20, seed=seed), 3, key=jax.random.key(seed))
    assert calls == [30, 20, 20]


def test_a_classification_simulator_is_refused_by_name():
    with pytest.raises(ValueError, match="regression simulator.*'classification'"):
        Hindsight(oracle=threshold_oracle())


def test_candidates_that_fail_are_never_picked():
    oracle = smooth_oracle()
    failing = type("Failing", (), {"space": oracle.space, "outputs": oracle.outputs,
                                    "run": lambda self, q: _fail_left_half(oracle.run(q), q)})()
    _, committee = fitted_gp(oracle, 12)
    candidates = oracle.space.draw(40, seed=5)
    picks = Hindsight(oracle=failing, validation=30).select(committee, candidates, 5, key=jax.random.key(0))
    assert np.all(candidates[picks, 0] >= 0.5)


def _fail_left_half(outcome, queries):
    bad = queries[:, 0] < 0.5
    y = np.where(bad[:, None], np.nan, outcome.y)
    return Outcome(y, ~bad, np.where(bad, "left half", ""), outcome.cost_s)

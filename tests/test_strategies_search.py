"""Gradient search: picks move uphill on the MLP committee's disagreement, within their box."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from alframe.learners import BaggedCommittee
from alframe.strategies import GradientSearch, QueryByCommittee, Spread, Strategy, committee_variance
from alframe.strategies.search import NotDifferentiableError
from tests.conftest import make_box, make_committee, make_loop, make_oracle


@pytest.fixture(scope="module")
def fitted():
    oracle = make_oracle()
    x = oracle.space.draw(20, seed=0, method="sobol")
    return make_committee().fit(x, oracle.run(x).y, key=jax.random.key(0))


def variance(committee, x):
    return np.asarray(committee_variance(committee.predict_members(x)))


def test_picks_climb_the_disagreement_and_stay_near_where_they_started(fitted):
    box = make_box()
    candidates = box.draw(200, seed=1)
    original = candidates.copy()
    inner = QueryByCommittee(batch=Spread(0.1))
    search = GradientSearch(inner, steps=15, step_size=0.01, radius=0.05)
    assert isinstance(search, Strategy)
    selection = search.select(fitted, candidates, 5, key=jax.random.key(2))
    np.testing.assert_array_equal(candidates, original)  # the caller's pool is left as it was
    picks = inner.select(fitted, original, 5, key=jax.random.key(2))
    assert np.all(selection.indices == -1)  # refined points are not rows of the pool
    moved = selection.points - original[picks]
    width = original.max(axis=0) - original.min(axis=0)
    assert np.all(np.abs(moved) <= 0.05 * width + 1e-6)
    assert np.any(np.abs(moved) > 1e-4)
    before, after = variance(fitted, original[picks]), variance(fitted, selection.points)
    assert np.all(after >= before * (1 - 1e-4))
    assert after.sum() > before.sum()
    assert np.all(box.contains(selection.points))


def test_refine_respects_the_box_it_is_given(fitted):
    start = np.array([[1.9, 1.9], [-1.9, 0.0]])
    refined, before, after = GradientSearch(steps=30, step_size=0.05, radius=0.5).refine(
        fitted, start, lower=np.array([-2.0, -2.0]), upper=np.array([2.0, 2.0]))
    assert np.all((refined >= -2.0) & (refined <= 2.0))
    assert np.all(after >= before)


def test_zero_steps_change_nothing(fitted):
    candidates = make_box().draw(50, seed=3)
    original = candidates.copy()
    GradientSearch(steps=0).select(fitted, candidates, 3, key=jax.random.key(0))
    np.testing.assert_array_equal(candidates, original)


def test_a_committee_without_gradients_is_named():
    oracle = make_oracle()
    x = oracle.space.draw(20, seed=0)
    trees = BaggedCommittee(DecisionTreeRegressor(), members=3, task="regression", n_classes=None)
    trees = trees.fit(x, oracle.run(x).y, key=jax.random.key(0))
    with pytest.raises(NotDifferentiableError, match="BaggedCommittee"):
        GradientSearch().select(trees, make_box().draw(30, seed=1), 2, key=jax.random.key(0))


def test_read_only_candidates_are_refined_too(fitted):
    candidates = make_box().draw(30, seed=1)
    candidates.setflags(write=False)
    selection = GradientSearch().select(fitted, candidates, 2, key=jax.random.key(0))
    assert selection.points.shape == (2, 2) and np.all(make_box().contains(selection.points))


def test_a_loop_runs_the_refined_points(tmp_path):
    loop = make_loop(strategy=GradientSearch(QueryByCommittee(batch=Spread(0.1)), steps=5), budget=30)
    ds = loop.run(tmp_path / "run.zarr")
    assert ds.attrs["stop_reason"] == "budget spent"
    chosen = ds["x"].values[ds["round_of"].values > 0]
    pools = np.vstack([loop.candidates.draw(loop.oracle.space, seed=0, n_runs=n) for n in (10, 20)])
    # Refined points are new inputs, not rows of the pools they were picked from.
    assert not any(np.any(np.all(pools == row, axis=1)) for row in chosen)
    assert np.all(ds["ok"].values)

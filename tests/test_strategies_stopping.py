"""Stopping on committee agreement: the rule, its wrapper and a loop that stops early."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alframe.strategies import QueryByCommittee, StopWhenAgreed, Strategy, first_stop
from alframe.strategies.stopping import disagreement
from tests.conftest import make_loop


class OffsetCommittee:
    """Members predict x0 + offset_m: disagreement var(offsets) everywhere."""

    def __init__(self, offsets):
        self.offsets = np.asarray(offsets, dtype=np.float64)

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        x = np.asarray(x, dtype=np.float64)
        return jnp.asarray(x[None, :, :1] + self.offsets[:, None, None])


X = np.linspace(0.0, 1.0, 11)[:, None] * np.ones((1, 2))


def test_disagreement_absolute_and_relative():
    committee = OffsetCommittee([-0.1, 0.1])
    assert disagreement(committee, X, relative=False) == pytest.approx(0.01, rel=1e-5)
    assert disagreement(committee, X) == pytest.approx(0.01 / np.var(X[:, 0]), rel=1e-5)
    # Relative disagreement does not change with the output's units.
    scaled = OffsetCommittee([-10.0, 10.0])
    scaled_x = X * 100
    assert disagreement(scaled, scaled_x) == pytest.approx(disagreement(committee, X), rel=1e-5)


class TwoOutputCommittee:
    """Members predict (x0 + offset_m, scale * (x0 + offset_m)): the second output is the first in other units."""

    def __init__(self, offsets, scale):
        self.offsets, self.scale = np.asarray(offsets, dtype=np.float64), scale

    def predict_members(self, x):
        first = np.asarray(x, dtype=np.float64)[None, :, :1] + self.offsets[:, None, None]
        return jnp.asarray(np.concatenate([first, self.scale * first], axis=-1))


def test_relative_disagreement_of_two_outputs_matches_one_and_ignores_units():
    one = disagreement(OffsetCommittee([-0.1, 0.1]), X)
    for scale in (1.0, 1000.0):
        assert disagreement(TwoOutputCommittee([-0.1, 0.1], scale), X) == pytest.approx(one, rel=1e-4)


def test_wrapper_picks_nothing_once_the_members_agree():
    inner = QueryByCommittee()
    rule = StopWhenAgreed(inner, threshold=0.05)
    assert isinstance(rule, Strategy)
    agreed = rule.select(OffsetCommittee([-0.01, 0.01]), X, 3, key=jax.random.key(0))
    assert len(agreed) == 0 and agreed.stop_reason.startswith("committee agreed: disagreement")
    picks = rule.select(OffsetCommittee([-1.0, 1.0]), X, 3, key=jax.random.key(0))
    np.testing.assert_array_equal(picks, inner.select(OffsetCommittee([-1.0, 1.0]), X, 3, key=jax.random.key(0)))


def test_negative_threshold_is_refused():
    with pytest.raises(ValueError, match="threshold"):
        StopWhenAgreed(QueryByCommittee(), threshold=-1.0)


def test_first_stop_waits_for_patience():
    values = np.array([5.0, 0.5, 2.0, 0.4, 0.3, 0.2])
    assert first_stop(values, 1.0) == 1
    assert first_stop(values, 1.0, patience=2) == 4
    assert first_stop(values, 0.1) is None
    with pytest.raises(ValueError):
        first_stop(values, 1.0, patience=0)


def test_a_loop_stops_when_the_committee_agrees(tmp_path):
    # A threshold any fitted committee meets: the loop ends after the first fit, budget unspent.
    loop = make_loop(strategy=StopWhenAgreed(QueryByCommittee(), threshold=1e9), budget=40)
    ds = loop.run(tmp_path / "run.zarr")
    assert len(ds["ok"]) == loop.n_initial < loop.budget
    assert ds.sizes["round"] == 1

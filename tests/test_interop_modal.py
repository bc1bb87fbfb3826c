"""modAL interop: modAL query strategies with alframe committees, modAL learners as members."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("modAL", reason="modAL (modAL-python, the `peers` extra) is not installed")

import modAL.models.learners as modal_learners
import sklearn.utils
from modAL.disagreement import (
    consensus_entropy_sampling,
    max_disagreement_sampling,
    max_std_sampling,
    vote_entropy_sampling,
)
from modAL.models import ActiveLearner
from modAL.uncertainty import uncertainty_sampling
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from alframe.interop.modal import ModalCommittee, ModalQuery, ModalQueryError, patch_check_X_y
from alframe.strategies import (
    QueryByCommittee,
    Strategy,
    committee_variance,
    consensus_entropy,
    max_disagreement,
    vote_entropy,
)
from tests.conftest import make_loop, make_oracle

KEY = jax.random.key(0)


class FixedCommittee:
    def __init__(self, predictions):
        self.predictions = np.asarray(predictions, dtype=np.float64)

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        assert len(x) == self.predictions.shape[1]
        return jnp.asarray(self.predictions)


def random_committee(members, n, width, *, probabilities, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(members, n, width))
    if probabilities:
        values = np.exp(3 * values) / np.exp(3 * values).sum(axis=-1, keepdims=True)
    return FixedCommittee(values)


def top_scored(scores, picks, k):
    """The picks' scores are the k largest (ties allowed)."""
    scores = np.asarray(scores)
    return len(set(picks.tolist())) == k and scores[picks].min() >= np.sort(scores)[::-1][k - 1] - 1e-9


@pytest.mark.skipif("force_all_finite" in inspect.signature(sklearn.utils.check_X_y).parameters,
                    reason="this scikit-learn still accepts force_all_finite; modAL needs no patch")
def test_unpatched_modal_teach_fails_on_this_scikit_learn_and_the_patch_fixes_it(monkeypatch):
    x = np.arange(20.0).reshape(10, 2)
    y = np.array([0, 1] * 5)
    monkeypatch.setattr(modal_learners, "check_X_y", sklearn.utils.check_X_y)
    with pytest.raises(TypeError, match="force_all_finite"):
        ActiveLearner(DecisionTreeClassifier(random_state=0), X_training=x, y_training=y).teach(x[:2], y[:2])
    assert patch_check_X_y() is True
    assert patch_check_X_y() is True  # idempotent
    learner = ActiveLearner(DecisionTreeClassifier(random_state=0), X_training=x, y_training=y)
    learner.teach(x[:2], y[:2])
    assert len(learner.X_training) == 12
    # The shim renames the argument, it does not drop the check.
    with pytest.raises(ValueError, match="NaN"):
        learner.teach(np.array([[np.nan, 1.0]]), np.array([0]))


def test_max_std_sampling_picks_the_committee_variance_top_k():
    committee = random_committee(5, 300, 1, probabilities=False)
    x = np.random.default_rng(1).uniform(size=(300, 3))
    strategy = ModalQuery(max_std_sampling)
    assert isinstance(strategy, Strategy)
    picks = strategy.select(committee, x, 10, key=KEY)
    assert top_scored(committee_variance(committee.predict_members(x)), picks, 10)
    np.testing.assert_array_equal(np.sort(picks), np.sort(QueryByCommittee().select(committee, x, 10, key=KEY)))


@pytest.mark.parametrize("query, score", [(vote_entropy_sampling, vote_entropy),
                                          (consensus_entropy_sampling, consensus_entropy),
                                          (max_disagreement_sampling, max_disagreement),
                                          (uncertainty_sampling, consensus_entropy)])
def test_modal_classification_queries_rank_as_alframe_scores(query, score):
    committee = random_committee(7, 200, 3, probabilities=True)
    x = np.random.default_rng(2).uniform(size=(200, 2))
    picks = ModalQuery(query, task="classification").select(committee, x, 8, key=KEY)
    reference = score(committee.predict_members(x))
    if query is uncertainty_sampling:  # 1 - max mean probability, not an entropy
        reference = 1 - np.asarray(committee.predict_members(x)).mean(axis=0).max(axis=1)
    assert top_scored(reference, picks, 8)


class AgreeingCommittee:
    """Members that all predict 0: every candidate ties."""

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        return jnp.zeros((3, len(x), 1))


def test_dotted_names_pending_points_and_reproducible_tie_breaks():
    x = np.arange(100.0).reshape(50, 2)
    strategy = ModalQuery("modAL.disagreement.max_std_sampling", options={"random_tie_break": True})
    a = strategy.select(AgreeingCommittee(), x, 5, key=KEY, pending=x[:40])
    assert set(a.tolist()) <= set(range(40, 50)) and len(set(a.tolist())) == 5
    np.testing.assert_array_equal(a, strategy.select(AgreeingCommittee(), x, 5, key=KEY, pending=x[:40]))
    b = strategy.select(AgreeingCommittee(), x, 5, key=jax.random.key(7), pending=x[:40])
    assert not np.array_equal(a, b)  # ties are broken by the key


def test_bad_query_results_and_names_are_refused():
    committee = random_committee(3, 20, 1, probabilities=False)
    x = np.arange(40.0).reshape(20, 2)
    with pytest.raises(ModalQueryError, match="expected 4 distinct"):
        ModalQuery(lambda model, X, n_instances: np.zeros(n_instances, int)).select(committee, x, 4, key=KEY)
    with pytest.raises(ValueError, match="cannot import"):
        ModalQuery("modAL.disagreement.no_such_query")


def test_modal_learners_as_a_regression_committee_are_reproducible():
    oracle = make_oracle()
    x = oracle.space.draw(60, seed=0)
    y = oracle.run(x).y
    committee = ModalCommittee([ActiveLearner(DecisionTreeRegressor(max_depth=4)) for _ in range(3)], bootstrap=True)
    fitted = committee.fit(x, y, key=KEY)
    members = np.asarray(fitted.predict_members(x[:7]))
    assert members.shape == (3, 7, 1)
    assert np.ptp(members, axis=0).max() > 0  # bootstraps differ
    np.testing.assert_array_equal(members, np.asarray(committee.fit(x, y, key=KEY).predict_members(x[:7])))
    assert not np.array_equal(members, np.asarray(committee.fit(x, y, key=jax.random.key(1)).predict_members(x[:7])))
    assert not committee.is_fitted  # the originals are never fitted


def test_modal_classifiers_map_their_classes_onto_all_classes():
    x = np.random.default_rng(0).uniform(size=(30, 2))
    labels = np.where(x[:, 0] > 0.5, 2, 0)  # class 1 never seen
    committee = ModalCommittee.of(type("Committee", (), {"learner_list": [ActiveLearner(DecisionTreeClassifier())] * 2})(),
                                  task="classification", n_classes=3)
    probs = np.asarray(committee.fit(x, labels, key=KEY).predict_members(x))
    assert probs.shape == (2, 30, 3)
    np.testing.assert_allclose(probs[..., 1], 0.0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        committee.fit(x, labels + 5, key=KEY)


def test_a_modal_committee_and_a_modal_query_run_an_alframe_loop(tmp_path):
    committee = ModalCommittee([ActiveLearner(DecisionTreeRegressor(max_depth=5)) for _ in range(3)], bootstrap=True)
    loop = make_loop(committee=committee, strategy=ModalQuery(max_std_sampling), budget=30)
    ds = loop.run(tmp_path / "run.zarr")
    assert ds.attrs["stop_reason"] == "budget spent"
    assert int(ds["n_runs"].values[-1]) == 30 and np.all(ds["mean_variance"].values >= 0)

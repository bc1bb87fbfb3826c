"""scikit-learn committees: protocol, shapes, seeds from the key, bootstrap, rare and missing classes."""

from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from alframe.learners import BaggedCommittee, Committee, EnsembleCommittee, predict_mean
from alframe.learners.sklearn import bootstrap_rows, member_seeds
from alframe.metrics import classification_metrics
from tests.conftest import target_fn

RNG = np.random.default_rng(0)
X = RNG.uniform(-2, 2, (300, 2))
X_TEST = RNG.uniform(-2, 2, (400, 2))
# A rare class (about 12 %), like the BH subsystems: a disc off-centre.
LABELS = (np.hypot(X[:, 0] - 0.8, X[:, 1] - 0.8) < 0.75).astype(np.int64)
LABELS_TEST = (np.hypot(X_TEST[:, 0] - 0.8, X_TEST[:, 1] - 0.8) < 0.75).astype(np.int64)

COMMITTEES = {
    "bagged_tree": lambda: BaggedCommittee(DecisionTreeClassifier(), members=4),
    "bagged_gbt": lambda: BaggedCommittee(GradientBoostingClassifier(n_estimators=20), members=3),
    "forest": lambda: EnsembleCommittee(RandomForestClassifier(n_estimators=12)),
    "extra_trees": lambda: EnsembleCommittee(ExtraTreesClassifier(n_estimators=6)),
    "bagging": lambda: EnsembleCommittee(BaggingClassifier(DecisionTreeClassifier(), n_estimators=5)),
}
MEMBERS = {"bagged_tree": 4, "bagged_gbt": 3, "forest": 12, "extra_trees": 6, "bagging": 5}


@pytest.mark.parametrize("name", COMMITTEES)
def test_classifier_committees_learn_a_rare_class(name):
    committee = COMMITTEES[name]()
    assert isinstance(committee, Committee)
    fitted = committee.fit(X, LABELS, key=jax.random.key(0))
    assert not committee.is_fitted and fitted.is_fitted  # fit returns a new committee
    probs = np.asarray(fitted.predict_members(X_TEST))
    assert probs.shape == (MEMBERS[name], 400, 2) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    scores = classification_metrics(LABELS_TEST, probs)
    assert scores["accuracy"] > 0.9 and scores["f1"] > 0.75, scores


@pytest.mark.parametrize("name", ["bagged_tree", "forest"])
def test_same_key_same_committee_other_key_other_committee(name):
    a = COMMITTEES[name]().fit(X, LABELS, key=jax.random.key(1)).predict_members(X_TEST)
    b = COMMITTEES[name]().fit(X, LABELS, key=jax.random.key(1)).predict_members(X_TEST)
    c = COMMITTEES[name]().fit(X, LABELS, key=jax.random.key(2)).predict_members(X_TEST)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_bootstrap_members_disagree_and_plain_members_fit_every_row():
    bagged = BaggedCommittee(DecisionTreeClassifier(), members=5, bootstrap=True).fit(X, LABELS, key=jax.random.key(0))
    votes = np.asarray(bagged.predict_members(X_TEST)).argmax(-1)
    assert np.any(votes != votes[0])  # the members differ somewhere
    train_votes = np.asarray(bagged.predict_members(X)).argmax(-1)
    assert np.any(train_votes != LABELS)  # some member never saw some row
    plain = BaggedCommittee(DecisionTreeClassifier(), members=3, bootstrap=False).fit(X, LABELS, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(plain.predict_members(X)).argmax(-1), np.tile(LABELS, (3, 1)))


def test_stratified_bootstrap_keeps_every_class_and_its_count():
    labels = np.array([0] * 95 + [1] * 5)
    for seed in range(20):
        rows = bootstrap_rows(labels, len(labels), np.random.default_rng(seed))
        assert len(rows) == 100 and np.sum(labels[rows] == 1) == 5
    rows = bootstrap_rows(None, 50, np.random.default_rng(0))
    assert rows.shape == (50,) and rows.min() >= 0 and rows.max() < 50


def test_member_seeds_follow_the_key():
    a, b = member_seeds(jax.random.key(3), 6), member_seeds(jax.random.key(3), 6)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 6 and np.all((a >= 0) & (a < 2**32))
    assert not np.array_equal(a, member_seeds(jax.random.key(4), 6))


def test_single_class_training_data_predicts_that_class():
    # Gradient boosting refuses one-class data; an early round of a rare-class pool gives it.
    zeros = np.zeros(len(X), np.int64)
    for committee in (BaggedCommittee(GradientBoostingClassifier(n_estimators=5), members=2),
                      EnsembleCommittee(RandomForestClassifier(n_estimators=3))):
        probs = np.asarray(committee.fit(X, zeros, key=jax.random.key(0)).predict_members(X_TEST[:7]))
        assert probs.shape[1:] == (7, 2)
        np.testing.assert_array_equal(probs[..., 0], 1.0)


def test_a_class_absent_from_the_data_gets_probability_zero():
    labels = np.where(X[:, 0] > 0, 2, 0)  # classes 0 and 2 of three
    for committee in (BaggedCommittee(DecisionTreeClassifier(), members=2, n_classes=3),
                      EnsembleCommittee(RandomForestClassifier(n_estimators=4), n_classes=3)):
        probs = np.asarray(committee.fit(X, labels, key=jax.random.key(0)).predict_members(X_TEST))
        assert probs.shape[-1] == 3
        np.testing.assert_array_equal(probs[..., 1], 0.0)
        assert np.mean(predict_mean(committee.fit(X, labels, key=jax.random.key(0)), X_TEST).argmax(1)
                       == np.where(X_TEST[:, 0] > 0, 2, 0)) > 0.95


@pytest.mark.parametrize("ensemble", [RandomForestClassifier(n_estimators=10),
                                      BaggingClassifier(DecisionTreeClassifier(), n_estimators=6, max_features=0.5)])
def test_ensemble_members_average_to_the_ensemble(ensemble):
    # Bagging members on a subset of the features are asked about that subset only.
    committee = EnsembleCommittee(ensemble).fit(X, LABELS, key=jax.random.key(0))
    np.testing.assert_allclose(predict_mean(committee, X_TEST),
                               committee.fitted.predict_proba(committee.scaling.inputs(X_TEST)), atol=1e-6)


def test_labels_as_float_column_are_accepted():
    a = BaggedCommittee(DecisionTreeClassifier(), members=2).fit(X, LABELS, key=jax.random.key(0))
    column = LABELS[:, None].astype(float)  # how the loop stores labels
    b = BaggedCommittee(DecisionTreeClassifier(), members=2).fit(X, column, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a.predict_members(X_TEST)), np.asarray(b.predict_members(X_TEST)))


def test_regression_committees():
    y = target_fn(X)
    for committee, members in ((BaggedCommittee(DecisionTreeRegressor(max_depth=6), members=3, task="regression",
                                                n_classes=None), 3),
                               (EnsembleCommittee(RandomForestRegressor(n_estimators=8), task="regression",
                                                  n_classes=None), 8)):
        fitted = committee.fit(X, y, key=jax.random.key(0))
        values = np.asarray(fitted.predict_members(X_TEST))
        assert values.shape == (members, 400, 1)
        assert np.mean((values.mean(0)[:, 0] - target_fn(X_TEST)) ** 2) < 0.1 * np.var(target_fn(X_TEST))
        assert np.asarray(fitted.predict_members(X_TEST[:0])).shape == (members, 0, 1)


def test_empty_queries_and_pickling():
    fitted = COMMITTEES["forest"]().fit(X, LABELS, key=jax.random.key(0))
    assert np.asarray(fitted.predict_members(np.empty((0, 2)))).shape == (12, 0, 2)
    bagged = COMMITTEES["bagged_tree"]().fit(X, LABELS, key=jax.random.key(0))
    assert np.asarray(bagged.predict_members(np.empty((0, 2)))).shape == (4, 0, 2)
    again = pickle.loads(pickle.dumps(fitted))  # the loop checkpoints committees by pickling
    np.testing.assert_array_equal(np.asarray(again.predict_members(X_TEST)), np.asarray(fitted.predict_members(X_TEST)))


def test_bad_input_is_refused():
    committee = BaggedCommittee(DecisionTreeClassifier(), members=2)
    with pytest.raises(ValueError, match="class labels must be integers in \\[0, 2\\)"):
        committee.fit(X, LABELS + 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="class labels"):
        committee.fit(X, LABELS + 0.5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="non-finite"):
        committee.fit(np.where(X > 1.9, np.nan, X), LABELS, key=jax.random.key(0))
    with pytest.raises(ValueError, match="fit needs x"):
        committee.fit(X, LABELS[:-1], key=jax.random.key(0))
    with pytest.raises(RuntimeError, match="never fitted"):
        committee.predict_members(X_TEST)
    with pytest.raises(RuntimeError, match="never fitted"):
        EnsembleCommittee(RandomForestClassifier()).predict_members(X_TEST)
    with pytest.raises(ValueError, match="members must be >= 1"):
        BaggedCommittee(DecisionTreeClassifier(), members=0)
    with pytest.raises(ValueError, match="n_classes >= 2"):
        EnsembleCommittee(RandomForestClassifier(), n_classes=1)
    with pytest.raises(TypeError, match="no estimators_"):
        EnsembleCommittee(DecisionTreeClassifier()).fit(X, LABELS, key=jax.random.key(0))

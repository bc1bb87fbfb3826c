"""MLPCommittee: fitting, classification, disagreement, warm starts, determinism, JIT reuse."""

from __future__ import annotations

import collections
import dataclasses
import pickle
import warnings

import jax
import numpy as np
import pytest
from jax import monitoring

from alframe.learners import Committee, MLPCommittee, predict_mean
from alframe.learners.ensemble import TRACES
from tests.conftest import make_committee, target_fn

RNG = np.random.default_rng(0)
X = RNG.uniform(-2, 2, (100, 2))
Y = target_fn(X)
X_TEST = RNG.uniform(-2, 2, (200, 2))
Y_TEST = target_fn(X_TEST)
LABELS = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
LABELS_TEST = (X_TEST[:, 0] + X_TEST[:, 1] > 0).astype(np.int64)

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def mse(committee, x=X_TEST, y=Y_TEST):
    return float(np.mean((predict_mean(committee, x)[:, 0] - y) ** 2))


@pytest.fixture(scope="module")
def regressor():
    return make_committee(steps_first=3000).fit(X, Y, key=jax.random.key(0))


@pytest.fixture(scope="module")
def classifier():
    committee = make_committee(task="classification", n_classes=2, steps_first=2000)
    return committee.fit(X, LABELS, key=jax.random.key(0))


def test_regression_fits_a_smooth_function(regressor):
    assert isinstance(regressor, Committee)
    members = np.asarray(regressor.predict_members(X_TEST))
    assert members.shape == (3, 200, 1)
    assert np.all(np.isfinite(members))
    assert mse(regressor) < 0.05 * np.var(Y_TEST)


def test_regression_accepts_y_of_shape_n_by_outputs():
    a = make_committee().fit(X, Y, key=jax.random.key(3))
    b = make_committee().fit(X, Y[:, None], key=jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(a.predict_members(X_TEST)), np.asarray(b.predict_members(X_TEST)))


def test_regression_with_two_outputs():
    y2 = np.stack([Y, 100.0 + 10.0 * X[:, 0]], axis=1)  # a second output on another scale
    committee = make_committee(steps_first=1500).fit(X, y2, key=jax.random.key(0))
    pred = predict_mean(committee, X_TEST)
    assert pred.shape == (200, 2)
    truth = np.stack([Y_TEST, 100.0 + 10.0 * X_TEST[:, 0]], axis=1)
    # Each output is scaled on its own: both are learnt relative to their own spread.
    relative_mse = np.mean((pred - truth) ** 2, axis=0) / np.var(truth, axis=0)
    assert np.all(relative_mse < 0.05)


def test_classification_accuracy_and_probabilities(classifier):
    probs = np.asarray(classifier.predict_members(X_TEST))
    assert probs.shape == (3, 200, 2)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    accuracy = np.mean(predict_mean(classifier, X_TEST).argmax(axis=1) == LABELS_TEST)
    assert accuracy >= 0.9


def test_three_classes():
    labels = np.digitize(X[:, 0], [-0.7, 0.7])  # 0, 1, 2 in bands of x0
    committee = make_committee(task="classification", n_classes=3, steps_first=1500).fit(
        X, labels.astype(float), key=jax.random.key(0))
    probs = np.asarray(committee.predict_members(X_TEST))
    assert probs.shape == (3, 200, 3)
    accuracy = np.mean(probs.mean(0).argmax(1) == np.digitize(X_TEST[:, 0], [-0.7, 0.7]))
    assert accuracy >= 0.85


def test_members_disagree_more_far_from_the_data(regressor):
    near = np.random.default_rng(1).uniform(-2, 2, (200, 2))
    far = np.random.default_rng(2).uniform(4, 6, (200, 2))
    var_near = np.asarray(regressor.predict_members(near)).var(axis=0).mean()
    var_far = np.asarray(regressor.predict_members(far)).var(axis=0).mean()
    assert var_near > 0  # members differ (different initialisation)
    assert var_far > 10 * var_near


def test_warm_start_continues_from_the_previous_state():
    base = make_committee(steps_first=1000, steps_warm=20).fit(X, Y, key=jax.random.key(0))
    warm = base.fit(X, Y, key=jax.random.key(1))
    cold = make_committee(steps_first=20).fit(X, Y, key=jax.random.key(1))
    assert mse(warm) < 0.25 * mse(cold)
    assert mse(warm) < 2 * mse(base)


def test_fit_leaves_the_receiver_unchanged():
    first = make_committee().fit(X[:50], Y[:50], key=jax.random.key(0))
    before = np.asarray(first.predict_members(X_TEST))
    second = first.fit(X, Y, key=jax.random.key(1))
    assert second is not first
    np.testing.assert_array_equal(np.asarray(first.predict_members(X_TEST)), before)
    assert not np.array_equal(np.asarray(second.predict_members(X_TEST)), before)
    unfitted = make_committee()
    unfitted.fit(X, Y, key=jax.random.key(0))
    assert not unfitted.is_fitted


def test_restart_growth_refits_from_scratch_once_the_data_doubles():
    committee = make_committee(restart_growth=2.0).fit(X[:30], Y[:30], key=jax.random.key(0))
    fresh = make_committee(restart_growth=2.0)
    # 60 >= 2 * 30: a fit from scratch, the same as a never-fitted committee's.
    restarted = committee.fit(X[:60], Y[:60], key=jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(restarted.predict_members(X_TEST)),
                                  np.asarray(fresh.fit(X[:60], Y[:60], key=jax.random.key(1)).predict_members(X_TEST)))
    # 59 < 2 * 30: a warm start, which is not.
    warm = committee.fit(X[:59], Y[:59], key=jax.random.key(1))
    assert not np.allclose(np.asarray(warm.predict_members(X_TEST)),
                           np.asarray(fresh.fit(X[:59], Y[:59], key=jax.random.key(1)).predict_members(X_TEST)))
    with pytest.raises(ValueError, match="restart_growth"):
        make_committee(restart_growth=1.0)


def test_without_warm_start_a_refit_starts_from_scratch():
    committee = make_committee(warm_start=False)
    refit = committee.fit(X[:50], Y[:50], key=jax.random.key(5)).fit(X, Y, key=jax.random.key(6))
    fresh = committee.fit(X, Y, key=jax.random.key(6))
    np.testing.assert_array_equal(np.asarray(refit.predict_members(X_TEST)),
                                  np.asarray(fresh.predict_members(X_TEST)))


def test_same_key_same_predictions_other_key_other_predictions():
    a = make_committee().fit(X, Y, key=jax.random.key(42))
    b = make_committee().fit(X, Y, key=jax.random.key(42))
    c = make_committee().fit(X, Y, key=jax.random.key(43))
    pa = np.asarray(a.predict_members(X_TEST))
    np.testing.assert_array_equal(pa, np.asarray(b.predict_members(X_TEST)))
    assert not np.allclose(pa, np.asarray(c.predict_members(X_TEST)))
    # Warm fits are deterministic too.
    np.testing.assert_array_equal(np.asarray(a.fit(X, Y, key=jax.random.key(1)).predict_members(X_TEST)),
                                  np.asarray(b.fit(X, Y, key=jax.random.key(1)).predict_members(X_TEST)))


def test_prediction_does_not_depend_on_the_batch_it_is_in(regressor):
    whole = np.asarray(regressor.predict_members(X_TEST))
    parts = np.concatenate([np.asarray(regressor.predict_members(X_TEST[i:i + 7])) for i in range(0, 200, 7)],
                           axis=1)
    np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (X, np.where(np.arange(100) == 3, np.nan, Y), "non-finite"),
        (X, np.where(np.arange(100) == 3, np.inf, Y), "non-finite"),
        (np.where(np.arange(100)[:, None] == 7, np.nan, X), Y, "non-finite"),
        (X[:, 0], Y, r"x \(n, dim\)"),
        (X, Y[:99], r"\(100, 2\) and \(99, 1\)"),
        (X[:0], Y[:0], "n >= 1"),
    ],
    ids=["nan-y", "inf-y", "nan-x", "1d-x", "length-mismatch", "empty"],
)
def test_bad_training_data_raises(x, y, match):
    with pytest.raises(ValueError, match=match):
        make_committee().fit(x, y, key=jax.random.key(0))


@pytest.mark.parametrize("bad", [2, -1, 0.5], ids=["too-large", "negative", "fractional"])
def test_bad_class_labels_raise(bad):
    labels = LABELS.astype(float)
    labels[4] = bad
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\)"):
        make_committee(task="classification", n_classes=2).fit(X, labels, key=jax.random.key(0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(members=0), "members"),
        (dict(activation="sigmoid"), "'sigmoid'"),
        (dict(task="ranking"), "'ranking'"),
        (dict(task="classification"), "n_classes"),
        (dict(task="classification", n_classes=1), "n_classes"),
        (dict(capacity=0), "capacity"),
        (dict(batch_size=0), "batch_size"),
        (dict(steps_first=0), "steps_first"),
        (dict(steps_warm=-1), "steps_warm"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_committee(**kwargs)


def test_predict_with_the_wrong_input_width_raises(regressor):
    with pytest.raises(ValueError):
        regressor.predict_members(X_TEST[:, :1])


def test_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="never fitted"):
        make_committee().predict_members(X_TEST)


def test_committee_pickles(regressor):
    restored = pickle.loads(pickle.dumps(regressor))
    np.testing.assert_array_equal(np.asarray(restored.predict_members(X_TEST)),
                                  np.asarray(regressor.predict_members(X_TEST)))
    # A warm fit continues identically from the restored state (what resuming a loop needs).
    np.testing.assert_array_equal(
        np.asarray(restored.fit(X[:70], Y[:70], key=jax.random.key(9)).predict_members(X_TEST)),
        np.asarray(regressor.fit(X[:70], Y[:70], key=jax.random.key(9)).predict_members(X_TEST)),
    )


def test_exceeding_capacity_warns_and_still_works():
    small = make_committee(capacity=16, steps_first=1000)
    with pytest.warns(UserWarning, match="training set of 100 exceeds the committee capacity 16"):
        fitted = small.fit(X, Y, key=jax.random.key(0))
    assert fitted.state.capacity >= 100
    assert mse(fitted) < 0.2 * np.var(Y_TEST)
    # Once grown, fits that fit in the new capacity are silent.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.fit(X, Y, key=jax.random.key(1))


def test_repr_hides_the_state(regressor):
    assert "state" not in repr(regressor)
    assert dataclasses.replace(regressor, state=None) == make_committee(steps_first=3000)


# -- JIT reuse --------------------------------------------------------------------------


@pytest.fixture
def compilations():
    counter = collections.Counter()

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            counter["n"] += 1

    monitoring.register_event_duration_secs_listener(listener)
    yield counter
    monitoring.unregister_event_duration_listener(listener)


def test_compile_event_is_observed(compilations):
    # Guards the tests below: the listener does see compilations on this JAX version.
    jax.jit(lambda v: v * 3.25 + 1.0)(np.ones(13))
    assert compilations["n"] >= 1


def grow_and_predict(committee, sizes, candidates):
    for n in sizes:
        committee = committee.fit(X[:n], Y[:n], key=jax.random.key(n))
        np.asarray(committee.predict_members(candidates))
    return committee


def test_growing_training_set_reuses_the_jitted_programs():
    committee = make_committee().fit(X[:23], Y[:23], key=jax.random.key(0))
    committee.predict_members(X_TEST)
    traces_before = dict(TRACES)
    grow_and_predict(committee, (29, 47, 61, 83, 100), X_TEST)
    assert dict(TRACES) == traces_before


def test_growing_training_set_triggers_no_compilation(compilations):
    committee = make_committee().fit(X[:21], Y[:21], key=jax.random.key(0))
    np.asarray(committee.predict_members(X_TEST))
    committee = committee.fit(X[:33], Y[:33], key=jax.random.key(1))
    np.asarray(committee.predict_members(X_TEST))
    compilations.clear()
    # 53 >= 2 * 21 also crosses restart_growth: a refit from scratch must not compile either.
    grow_and_predict(committee, (37, 53, 67, 89, 97), X_TEST)
    assert compilations["n"] == 0


def test_same_sized_predictions_trigger_no_compilation(regressor, compilations):
    np.asarray(regressor.predict_members(X_TEST))
    compilations.clear()
    for shift in (0.1, 0.2, 0.3):
        np.asarray(regressor.predict_members(X_TEST + shift))
    assert compilations["n"] == 0


def test_predictions_within_one_bucket_trigger_no_compilation(regressor, compilations):
    np.asarray(regressor.predict_members(X_TEST[:130]))
    compilations.clear()
    for n in (131, 150, 171, 199):
        np.asarray(regressor.predict_members(X_TEST[:n]))
    assert compilations["n"] == 0



def test_fits_from_scratch_take_steps_in_proportion_to_the_data():
    committee = MLPCommittee(steps_first=10000, steps_per_sample=16.0, steps_first_min=2000)
    assert [committee.cold_steps(n) for n in (20, 125, 160, 320, 640, 5000)] == [2000, 2000, 2560, 5120, 10000, 10000]
    assert MLPCommittee(steps_first=3000, steps_per_sample=None).cold_steps(20) == 3000



@pytest.mark.parametrize("transform", ["asinh", "log"])
def test_an_mlp_on_transformed_outputs_predicts_within_its_training_range_widened(transform):
    """exp and sinh turn a modest extrapolation in the learnt units into a huge value: a signed
    output spanning nine decades gave R^2 -46 on a uniform test set without the bounds."""
    def torque(x):
        value = np.sin(x[:, 0]) * 10 ** x[:, 1] * x[:, 2] ** 2
        return value if transform == "asinh" else np.abs(value) + 1e-9

    def draw(rng, n):
        return np.column_stack([rng.uniform(0, 2 * np.pi, n), rng.uniform(-5, 4, n), rng.uniform(0.3, 1, n)])

    rng = np.random.default_rng(2)
    x, x_test = draw(rng, 100), draw(rng, 2000)
    committee = MLPCommittee(output_transform=transform, capacity=128).fit(x, torque(x)[:, None],
                                                                          key=jax.random.key(2))
    early = MLPCommittee(output_transform=transform, capacity=128, early_stopping=True).fit(
        x, torque(x)[:, None], key=jax.random.key(2))
    assert early.bounds is not None and np.all(np.isfinite(early.held_out_predictions()))
    learnt = np.arcsinh(torque(x)) if transform == "asinh" else np.log(torque(x))
    low, high = learnt.min(), learnt.max()
    inverse = np.sinh if transform == "asinh" else np.exp
    np.testing.assert_allclose(np.ravel(committee.bounds), [inverse(low - 0.05 * (high - low)),
                                                            inverse(high + 0.05 * (high - low))], rtol=1e-6)
    members = np.asarray(committee.predict_members(x_test))
    (lower,), (upper,) = committee.bounds
    assert lower - 1e-6 * abs(lower) <= members.min() and members.max() <= upper + 1e-6 * abs(upper)
    if transform == "asinh":
        y = torque(x_test)
        unbounded = np.asarray(dataclasses.replace(committee, bounds=None).predict_members(x_test)).mean(0)[:, 0]
        r2 = lambda p: 1 - np.mean((p - y) ** 2) / y.var()  # noqa: E731
        assert r2(members.mean(0)[:, 0]) > 0.3 > 0 > r2(unbounded)

"""Test-set metrics: hand-computed values, r2 against a constant predictor, several outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from alframe.metrics import (REGRESSION_METRICS, STANDARDISED_METRICS, higher_is_better, regression_metrics,
                             scalar_metric_names)

Y = np.array([1.0, 2.0, 3.0, 4.0])[:, None]  # (4, 1)


def committee_predicting(*predictions) -> np.ndarray:
    """Members (M, m, 1) from one (m,) prediction per member."""
    return np.array(predictions, dtype=np.float64)[..., None]


def test_one_output_hand_computed():
    err = np.array([1.0, -1.0, 0.0, 2.0])
    spread = np.array([1.0, 0.0, 0.0, 1.0])
    members = committee_predicting(Y[:, 0] + err + spread, Y[:, 0] + err - spread)
    m = regression_metrics(Y, members)
    assert m["mse"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(np.sqrt(1.5))
    assert m["mae"] == pytest.approx(1.0)
    assert m["max_abs_error"] == pytest.approx(2.0)
    assert m["mean_variance"] == pytest.approx(0.5)
    assert m["mse_constant"] == pytest.approx(1.25)  # the test mean 2.5
    assert m["r2"] == pytest.approx(1 - 1.5 / 1.25)
    # |err| / y = 1, 0.5, 0, 0.5: median 0.5; 95th percentile between 0.5 and 1 (linear).
    assert m["rel_err_median"] == pytest.approx(0.5)
    assert m["rel_err_p95"] == pytest.approx(0.5 + 0.85 * 0.5)
    assert "mse_per_output" not in m and "r2_per_output" not in m  # one output: the scalars say it all


def test_r2_of_the_mean_predictor_is_zero_of_a_perfect_one_one_and_of_a_worse_one_negative():
    assert regression_metrics(Y, committee_predicting(np.full(4, 2.5)))["r2"] == pytest.approx(0.0)
    assert regression_metrics(Y, committee_predicting(Y[:, 0], Y[:, 0]))["r2"] == 1.0
    reversed_ = regression_metrics(Y, committee_predicting(Y[::-1, 0]))
    assert reversed_["mse"] == pytest.approx(5.0) and reversed_["r2"] == pytest.approx(1 - 5.0 / 1.25)


def test_several_outputs_are_standardised_by_their_test_spread():
    y = np.array([[1.0, 10.0], [3.0, 30.0]])  # test std 1 and 10
    members = (y + np.array([[1.0, 10.0], [-1.0, 0.0]]))[None]
    m = regression_metrics(y, members)
    assert m["mse"] == pytest.approx(0.75)  # standardised errors 1, 1, -1, 0
    assert m["mae"] == pytest.approx(0.75) and m["max_abs_error"] == pytest.approx(1.0)
    np.testing.assert_allclose(m["mse_per_output"], [1.0, 50.0])  # raw units
    np.testing.assert_allclose(m["r2_per_output"], [0.0, 0.5])  # against test variances 1 and 100
    assert m["r2"] == pytest.approx(0.25)
    assert m["mse_constant"] == pytest.approx(1.0)  # the test mean, standardised


def test_several_outputs_metrics_ignore_one_output_s_units():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 3)) + 5
    members = y[None] + rng.normal(scale=0.3, size=(4, 50, 3))
    units = np.array([1.0, 1e3, 1e-2])
    base = regression_metrics(y, members)
    rescaled = regression_metrics(y * units, members * units)
    for name in ("mse", "rmse", "mae", "max_abs_error", "mean_variance", "mse_constant", "r2",
                 "rel_err_median", "rel_err_p95"):
        assert rescaled[name] == pytest.approx(base[name], rel=1e-9), name
    np.testing.assert_allclose(rescaled["r2_per_output"], base["r2_per_output"], rtol=1e-9)
    np.testing.assert_allclose(rescaled["mse_per_output"], base["mse_per_output"] * units**2, rtol=1e-9)
    assert base["mse_per_output"].shape == base["r2_per_output"].shape == (3,)


def test_relative_errors_only_over_outputs_positive_on_every_test_point():
    with_zero = np.array([0.0, 1.0, 2.0])[:, None]
    assert "rel_err_median" not in regression_metrics(with_zero, committee_predicting(with_zero[:, 0] + 1))
    negative = -Y
    assert "rel_err_p95" not in regression_metrics(negative, committee_predicting(negative[:, 0]))
    # Two outputs, the second negative somewhere: only the first counts.
    y = np.column_stack([Y[:, 0], [-1.0, 1.0, 2.0, 3.0]])
    prediction = y * np.array([1.1, 3.0])
    m = regression_metrics(y, prediction[None])
    assert m["rel_err_median"] == pytest.approx(0.1) and m["rel_err_p95"] == pytest.approx(0.1)


def test_an_output_constant_on_the_test_set_stays_defined_without_warnings():
    y = np.column_stack([Y[:, 0], np.full(4, 2.0)])
    members = np.stack([y + 0.5, y - 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics(y, members)
    assert np.isnan(m["r2_per_output"][1])  # the test mean predicts it exactly: r2 is undefined
    assert m["r2"] == m["r2_per_output"][0] == 1.0
    assert m["mse_per_output"][1] == 0.0 and np.isfinite(m["mse"])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        regression_metrics(Y, np.zeros((2, 3, 1)))


@pytest.mark.parametrize(
    ("name", "higher"),
    [("accuracy", True), ("f1", True), ("r2", True), ("r2_per_output", True), ("skill_vs_random", True),
     ("top3_accuracy", True), ("macro_f1", True), ("roc_score", True), ("index_r2", True),
     ("mse", False), ("rmse", False), ("log_loss", False), ("mse_constant", False), ("rel_err_p95", False),
     ("fit_s", False), ("mean_variance", False), ("f1ish", False)],
)
def test_higher_is_better(name, higher):
    assert higher_is_better(name) is higher


def test_scalar_metric_names():
    assert set(regression_metrics(Y, committee_predicting(Y[:, 0]))) == set(REGRESSION_METRICS)
    assert scalar_metric_names("classification") == ("accuracy", "f1", "log_loss")
    with pytest.raises(ValueError, match="'ranking'"):
        scalar_metric_names("ranking")


def test_the_standardised_metrics_are_those_that_scale_with_the_outputs():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 2)) * [1.0, 1e3]
    members = y[None] + rng.normal(size=(3, 50, 2)) * [0.1, 1e2]
    plain, scaled = regression_metrics(y, members), regression_metrics(10 * y, 10 * members)
    changed = {k for k, v in plain.items() if np.ndim(v) == 0 and not np.isclose(v, scaled[k])}
    assert set(STANDARDISED_METRICS) <= set(plain) and not changed & set(STANDARDISED_METRICS)


def test_an_output_constant_up_to_round_off_has_no_r2_and_does_not_enter_the_combined_metrics():
    """A bin held at 0.3 computed as 0.1 * 3 varies by about 1e-17: constant, not an output with
    a spread of 1e-17 that turns every small error into a huge standardised one."""
    rng = np.random.default_rng(0)
    varying = rng.normal(size=(200, 2))
    held = np.where(rng.uniform(size=200) < 0.5, 0.1 * 3, 0.3)[:, None]
    assert 0 < held.std() < 1e-15
    y = np.hstack([varying, held, np.zeros((200, 1))])
    members = y[None] + rng.normal(scale=0.1, size=(4, 200, 4))
    both = regression_metrics(y, members)
    alone = regression_metrics(varying, members[..., :2])
    assert np.isnan(both["r2_per_output"][2:]).all() and np.isfinite(both["r2_per_output"][:2]).all()
    for name in ("mse", "rmse", "mae", "max_abs_error", "mean_variance", "mse_constant", "r2"):
        assert both[name] == pytest.approx(alone[name]), name
    assert both["mse_constant"] == pytest.approx(1.0)

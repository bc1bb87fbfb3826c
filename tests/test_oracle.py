"""FunctionOracle and OutputSpec: outcomes, per-run failures, validation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from alframe.oracle import FunctionOracle, Oracle, Outcome, OutputSpec, concat_outcomes
from alframe.space import Box
from tests.conftest import make_box, target_fn

QUERIES = np.array([[0.0, 0.0], [0.5, -1.0], [1.5, 1.0], [-1.0, 2.0], [1.8, -0.5]])


def oracle_of(fn, *, outputs=("y",), vectorized=True):
    return FunctionOracle(fn=fn, space=make_box(), outputs=OutputSpec(names=outputs), vectorized=vectorized)


def check_outcome(outcome: Outcome, n: int, n_outputs: int = 1):
    assert isinstance(outcome, Outcome)
    assert len(outcome) == n
    assert outcome.y.shape == (n, n_outputs) and outcome.y.dtype == np.float64
    assert outcome.ok.shape == (n,) and outcome.ok.dtype == bool
    assert outcome.error.shape == (n,)
    assert outcome.cost_s.shape == (n,) and np.all(outcome.cost_s >= 0)


def test_function_oracle_is_an_oracle(oracle):
    assert isinstance(oracle, Oracle)
    assert oracle.space.names == ("x0", "x1")
    assert oracle.outputs.names == ("y",)


def test_vectorised_function():
    calls = []

    def fn(x):
        calls.append(x.shape)
        return target_fn(x)

    outcome = oracle_of(fn).run(QUERIES)
    check_outcome(outcome, 5)
    assert calls == [(5, 2)]  # one call for the whole batch
    np.testing.assert_allclose(outcome.y[:, 0], target_fn(QUERIES))
    assert outcome.ok.all()
    assert list(outcome.error) == [""] * 5


def test_vectorised_function_with_several_outputs():
    outcome = oracle_of(lambda x: np.stack([x[:, 0] + x[:, 1], x[:, 0] * x[:, 1]], axis=1),
                        outputs=("s", "p")).run(QUERIES)
    check_outcome(outcome, 5, 2)
    np.testing.assert_allclose(outcome.y, np.stack([QUERIES.sum(1), QUERIES.prod(1)], axis=1))


def test_jax_function():
    outcome = oracle_of(lambda x: jnp.sin(jnp.asarray(x[:, 0])) + jnp.asarray(x[:, 1]) ** 2).run(QUERIES)
    assert outcome.ok.all()
    np.testing.assert_allclose(outcome.y[:, 0], target_fn(QUERIES), rtol=1e-6, atol=1e-6)


def test_per_point_function():
    shapes = []

    def fn(q):
        shapes.append(q.shape)
        return float(np.sin(q[0]) + q[1] ** 2)

    outcome = oracle_of(fn, vectorized=False).run(QUERIES)
    check_outcome(outcome, 5)
    assert shapes == [(2,)] * 5
    np.testing.assert_allclose(outcome.y[:, 0], target_fn(QUERIES))
    assert outcome.ok.all()


def test_single_query_of_shape_dim(oracle):
    outcome = oracle.run(np.array([0.5, 1.0]))
    check_outcome(outcome, 1)
    np.testing.assert_allclose(outcome.y[0, 0], np.sin(0.5) + 1.0)


def test_empty_batch(oracle):
    outcome = oracle.run(np.empty((0, 2)))
    check_outcome(outcome, 0)


def unstable(x):
    x = np.atleast_2d(x)
    if np.any(x[:, 0] > 1.0):
        raise FloatingPointError(f"integrator blew up at x0 = {x[x[:, 0] > 1.0, 0][0]:.2f}")
    return target_fn(x)


@pytest.mark.parametrize("vectorized", [True, False])
def test_exception_fails_only_the_bad_runs(vectorized):
    fn = unstable if vectorized else (lambda q: unstable(q[None, :])[0])
    outcome = oracle_of(fn, vectorized=vectorized).run(QUERIES)
    check_outcome(outcome, 5)
    bad = QUERIES[:, 0] > 1.0
    np.testing.assert_array_equal(outcome.ok, ~bad)
    np.testing.assert_allclose(outcome.y[~bad, 0], target_fn(QUERIES[~bad]))
    assert np.all(np.isnan(outcome.y[bad]))
    assert all(e == "" for e in outcome.error[~bad])
    assert outcome.error[2].startswith("FloatingPointError: integrator blew up at x0 = 1.50")
    assert "integrator blew up at x0 = 1.80" in outcome.error[4]


def test_error_text_is_one_line():
    def fn(x):
        raise RuntimeError("line one\nline two")

    outcome = oracle_of(fn).run(QUERIES[:2])
    assert not outcome.ok.any()
    for error in outcome.error:
        assert "line one" in error and "line two" in error
        assert "\n" not in error


def test_base_exceptions_are_not_swallowed():
    def fn(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        oracle_of(fn).run(QUERIES)


@pytest.mark.parametrize("vectorized", [True, False])
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_outputs_are_failed_runs(vectorized, bad_value):
    def batch(x):
        y = target_fn(x)
        return np.where(x[:, 1] < 0, bad_value, y)

    fn = batch if vectorized else (lambda q: batch(q[None, :])[0])
    outcome = oracle_of(fn, vectorized=vectorized).run(QUERIES)
    bad = QUERIES[:, 1] < 0
    np.testing.assert_array_equal(outcome.ok, ~bad)
    assert np.all(np.isnan(outcome.y[bad]))
    np.testing.assert_allclose(outcome.y[~bad, 0], target_fn(QUERIES[~bad]))
    for error in outcome.error[bad]:
        assert "non-finite" in error
    assert all(e == "" for e in outcome.error[~bad])


def test_non_finite_in_one_of_several_outputs_fails_the_run():
    def fn(x):
        return np.stack([x[:, 0], np.where(x[:, 0] > 1, np.nan, x[:, 1])], axis=1)

    outcome = oracle_of(fn, outputs=("a", "b")).run(QUERIES)
    bad = QUERIES[:, 0] > 1
    np.testing.assert_array_equal(outcome.ok, ~bad)
    assert np.all(np.isnan(outcome.y[bad]))  # the finite column is not kept either


@pytest.mark.parametrize("vectorized", [True, False])
def test_wrong_output_shape_fails_the_runs_with_the_shapes(vectorized):
    if vectorized:
        fn = lambda x: np.zeros((len(x), 3))  # noqa: E731 - one output declared
    else:
        fn = lambda q: np.zeros(3)  # noqa: E731
    outcome = oracle_of(fn, vectorized=vectorized).run(QUERIES)
    check_outcome(outcome, 5)
    assert not outcome.ok.any()
    assert np.all(np.isnan(outcome.y))
    for error in outcome.error:
        assert error.startswith("ValueError")
        if vectorized:
            assert "(1, 3)" in error and "(1, 1)" in error


@pytest.mark.parametrize("width", [1, 3])
def test_wrong_query_width_raises(oracle, width):
    with pytest.raises(ValueError, match=rf"{width} columns.*'x0', 'x1'.*has 2"):
        oracle.run(np.zeros((4, width)))


# -- OutputSpec -------------------------------------------------------------------------


def test_output_spec_regression_defaults():
    spec = OutputSpec(names=["a", "b"])
    assert spec.names == ("a", "b")
    assert spec.task == "regression" and spec.dim == 2 and spec.classes is None


def test_output_spec_classification():
    spec = OutputSpec(names=("bh",), task="classification", classes=["no", "yes"])
    assert spec.classes == ("no", "yes") and spec.dim == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(names=()), "at least one output"),
        (dict(names=("y",), task="ranking"), "'ranking'"),
        (dict(names=("y",), task="classification"), "at least two classes"),
        (dict(names=("y",), task="classification", classes=("only",)), "at least two classes"),
        (dict(names=("a", "b"), task="classification", classes=("n", "p")), "exactly one output"),
    ],
)
def test_output_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OutputSpec(**kwargs)


# -- concat_outcomes ----------------------------------------------------------------------


def test_concat_outcomes(oracle):
    a, b = oracle.run(QUERIES[:2]), oracle.run(QUERIES[2:])
    both = concat_outcomes([a, b], n_outputs=1)
    whole = oracle.run(QUERIES)
    np.testing.assert_array_equal(both.y, whole.y)
    np.testing.assert_array_equal(both.ok, whole.ok)
    empty = concat_outcomes([], n_outputs=2)
    assert empty.y.shape == (0, 2) and len(empty) == 0 and empty.ok.dtype == bool


def test_box_space_used_by_oracle_is_not_mutated(oracle):
    assert oracle.space == Box(names=("x0", "x1"), lower=(-2, -2), upper=(2, 2))

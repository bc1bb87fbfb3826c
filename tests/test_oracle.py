"""FunctionOracle and OutputSpec: outcomes, per-run failures, validation; the cache key of a simulator's code."""

from __future__ import annotations

import importlib
import sys
import uuid

import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from alframe.cache import source_digest, target_digest
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
    assert all(e.startswith("non-finite output b (a run's outputs are kept together") for e in outcome.error[bad])


def test_labels_that_are_not_class_indices_are_failed_runs():
    def fn(x):
        return np.select([x[:, 0] < -0.5, x[:, 0] > 1], [3.0, 0.5], default=1.0)

    spec = OutputSpec(names=("phase",), task="classification", classes=("solid", "liquid", "gas"))
    outcome = FunctionOracle(fn=fn, space=make_box(), outputs=spec).run(QUERIES)
    high, low = QUERIES[:, 0] > 1, QUERIES[:, 0] < -0.5
    np.testing.assert_array_equal(outcome.ok, ~(high | low))
    assert all(e == "label 3 is not a class index in [0, 3) (solid, liquid, gas)" for e in outcome.error[low])
    assert all(e.startswith("label 0.5 is not a class index") for e in outcome.error[high])


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
        if vectorized:  # the batch's shape, as the simulator returned it
            assert f"({len(QUERIES)}, 3)" in error and "expected" in error


@pytest.mark.parametrize("vectorized", [True, False])
def test_a_simulator_returning_none_is_told_so(vectorized):
    outcome = oracle_of(lambda x: None, vectorized=vectorized).run(QUERIES)
    assert not outcome.ok.any()
    assert all("simulator returned None" in e and "a missing return?" in e for e in outcome.error)


@pytest.mark.parametrize("vectorized", [True, False])
@pytest.mark.parametrize("text", ["1.5", b"1.5", "error"])
def test_a_simulator_returning_text_fails_its_runs_saying_so(vectorized, text):
    fn = (lambda x: [[text]] * len(x)) if vectorized else (lambda q: [text])
    outcome = oracle_of(fn, vectorized=vectorized).run(QUERIES)
    assert not outcome.ok.any()
    assert all(f"simulator returned text ({text!r}), expected numbers" in e for e in outcome.error)


@pytest.mark.parametrize("vectorized", [True, False])
def test_a_simulator_returning_none_among_its_values_is_told_so(vectorized):
    fn = (lambda x: [None] * len(x)) if vectorized else (lambda q: [None])
    outcome = oracle_of(fn, vectorized=vectorized).run(QUERIES)
    assert not outcome.ok.any()
    assert all("simulator returned None among its values" in e for e in outcome.error)


def test_numbers_in_an_object_array_are_accepted():
    outcome = oracle_of(lambda x: np.array([[np.float32(1.0)]] * len(x), dtype=object)).run(QUERIES)
    assert outcome.ok.all() and np.all(outcome.y == 1.0)


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
        (dict(names=("g", "g", "i", "i", "r")), "output names must be unique; repeated: g, i"),
        (dict(names=("y",), task="ranking"), "'ranking'"),
        (dict(names=("y",), task="classification"), "at least two classes"),
        (dict(names=("y",), task="classification", classes=("only",)), "at least two classes"),
        (dict(names=("a", "b"), task="classification", classes=("n", "p")), "exactly one output"),
        (dict(names=("stable",), classes=("unstable", "stable")), "give task='classification'"),
    ],
)
def test_output_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OutputSpec(**kwargs)


def test_output_spec_describes_vector_outputs():
    spec = OutputSpec(names=("c2", "c3", "c4"), coords=np.array([2, 3, 4]), coord_name="ell", units="uK^2",
                      transform="log10")
    assert spec.coords == (2.0, 3.0, 4.0) and all(isinstance(c, float) for c in spec.coords)
    assert spec.coord_name == "ell" and spec.units == "uK^2" and spec.transform == "log10"
    labelled = OutputSpec(names=("a", "b"), coords=["TT", "EE"], units=["K", "K^2"])
    assert labelled.coords == ("TT", "EE") and labelled.units == ("K", "K^2") and labelled.coord_name is None
    plain = OutputSpec(names=("y",))
    assert plain.coords is plain.coord_name is plain.units is plain.transform is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(coords=(1.0,)), "coords has 1 values for 2 outputs"),
        (dict(coords="ab"), "coords must be a sequence"),
        (dict(coords=(1.0, "b")), "all numbers or all strings"),
        (dict(coords=(True, False)), "all numbers or all strings"),
        (dict(coord_name="ell"), "'ell' needs coords"),
        (dict(coords=(1, 2), coord_name=""), "coord_name must be a non-empty string"),
        (dict(coords=(0.0, 0.5), coord_name="x"), "coord_name 'x' is a name the run store uses itself .*'x_coord'"),
        (dict(units=("K",)), "one string or 2 strings"),
        (dict(units=("K", 2)), "one string or 2 strings"),
        (dict(transform=""), "transform must be a non-empty string"),
    ],
)
def test_output_spec_description_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OutputSpec(names=("a", "b"), **kwargs)


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


# -- the cache key follows the simulator's code --------------------------------------------

SIMULATOR_SOURCE = """
import numpy as np

from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box


def make_oracle(scale=1.0, version=None):
    return FunctionOracle(fn=lambda x: scale * x[:, 0] + OFFSET,
                          space=Box(names=("x0", "x1"), lower=(-2, -2), upper=(2, 2)),
                          outputs=OutputSpec(names=("y",)), version=version)


OFFSET = 0.0
"""


@pytest.fixture
def simulator_package(tmp_path, monkeypatch):
    """A package `name` on sys.path whose __init__ re-exports make_oracle from `name/sim.py`."""
    name = f"simpkg_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("from .sim import make_oracle\n")
    (package / "sim.py").write_text(SIMULATOR_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, package
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_source_digest_changes_when_the_source_does(simulator_package):
    name, package = simulator_package
    module = importlib.import_module(f"{name}.sim")
    before = source_digest(module)
    assert source_digest(module.make_oracle) == before  # an object: the module defining it
    assert source_digest(module) == before  # read afresh each time, and stable
    (package / "sim.py").write_text(SIMULATOR_SOURCE.replace("OFFSET = 0.0", "OFFSET = 1.0"))
    assert source_digest(module) != before
    (package / "sim.py").write_text(SIMULATOR_SOURCE)
    assert source_digest(module) == before


def test_a_package_digest_covers_every_module_of_its_directory(simulator_package):
    name, package = simulator_package
    pkg = importlib.import_module(name)
    before, sim_before = source_digest(pkg), source_digest(importlib.import_module(f"{name}.sim"))
    (package / "helpers.py").write_text("TABLE = (1, 2, 3)\n")
    assert source_digest(pkg) != before
    assert source_digest(importlib.import_module(f"{name}.sim")) == sim_before  # one module: its file alone
    assert target_digest(f"{name}.make_oracle") == source_digest(pkg)
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        target_digest(f"{name}.missing")
    with pytest.raises(ValueError, match="cannot import a module"):
        target_digest("no_such_module_anywhere.make")


def cache_config(name, cache_dir, **settings):
    return OmegaConf.create({"simulator": {"_target_": f"{name}.make_oracle", **settings}, "cache": str(cache_dir)})


def test_a_cached_simulator_whose_code_changed_is_run_again(simulator_package, tmp_path):
    from experiments.run import build_oracle

    name, package = simulator_package
    queries = np.array([[0.5, 0.0], [1.0, 1.0]])
    first = build_oracle(cache_config(name, tmp_path / "cache"))
    np.testing.assert_array_equal(first.run(queries).y[:, 0], [0.5, 1.0])
    again = build_oracle(cache_config(name, tmp_path / "cache"))
    assert again.version == first.version and all(again.lookup(q) is not None for q in queries)

    (package / "sim.py").write_text(SIMULATOR_SOURCE.replace("OFFSET = 0.0", "OFFSET = 1.0"))
    edited = build_oracle(cache_config(name, tmp_path / "cache"))
    assert edited.version != first.version
    assert all(edited.lookup(q) is None for q in queries)  # nothing stale is served
    assert build_oracle(cache_config(name, tmp_path / "cache", scale=2.0)).version != edited.version


def test_a_declared_version_keys_the_cache_instead_of_the_source(simulator_package, tmp_path):
    from experiments.run import build_oracle

    name, package = simulator_package
    declared = build_oracle(cache_config(name, tmp_path / "cache", version="sim 1.0"))
    assert "sim 1.0" in declared.version
    (package / "sim.py").write_text(SIMULATOR_SOURCE + "\n# a comment\n")
    assert build_oracle(cache_config(name, tmp_path / "cache", version="sim 1.0")).version == declared.version
    assert build_oracle(cache_config(name, tmp_path / "cache", version="sim 1.1")).version != declared.version

"""The active learning loop: budget, failures, stopping, determinism, resuming."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from alframe.learners import MLPCommittee
from alframe.loop import ActiveLearningLoop, Candidates, LoopError, draw_test_set, target_met
from alframe.oracle import FunctionOracle, Outcome, OutputSpec
from alframe.space import Box
from alframe.store import StoreMismatchError
from alframe.strategies import QueryByCommittee, RandomSampling, committee_variance
from tests.conftest import make_box, make_committee, make_loop, make_oracle, target_fn, without_timing

REPO = Path(__file__).resolve().parents[1]


class RecordingOracle:
    """Wraps an oracle; records the batches it completed; can crash (raise) on its j-th call."""

    def __init__(self, inner, *, crash_on_call=None):
        self.inner = inner
        self.crash_on_call = crash_on_call
        self.calls = 0
        self.completed: list[np.ndarray] = []

    @property
    def space(self):
        return self.inner.space

    @property
    def outputs(self):
        return self.inner.outputs

    def run(self, queries):
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise RuntimeError("lost the compute node")
        outcome = self.inner.run(queries)
        self.completed.append(np.array(queries))
        return outcome

    def all_queries(self):
        return np.vstack(self.completed) if self.completed else np.empty((0, 2))


@dataclasses.dataclass(frozen=True)
class RecordingCommittee:
    """Wraps a committee; logs what every fit was given and the fitted committee."""

    inner: MLPCommittee
    log: list

    def fit(self, x, y, *, key):
        fitted = RecordingCommittee(self.inner.fit(x, y, key=key), self.log)
        self.log.append((np.array(x), np.array(y), fitted))
        return fitted

    def predict_members(self, x):
        return self.inner.predict_members(x)


def checkpoint_of(path: Path) -> Path:
    return path.with_name(path.name + ".resume.pkl")


def assert_same_store(a: xr.Dataset, b: xr.Dataset):
    a, b = without_timing(a), without_timing(b)
    xr.testing.assert_identical(a, b)


CONFIG = {"case": "loop-tests"}


def ref_loop(**overrides) -> ActiveLearningLoop:
    """The reference run's loop: QBC, budget 40, a committee trained enough to improve per round."""
    return make_loop(committee=make_committee(steps_first=1000, steps_warm=300), **overrides)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted QBC run (budget 40, batches of 10) and the queries it made."""
    path = tmp_path_factory.mktemp("reference") / "run.zarr"
    oracle = RecordingOracle(make_oracle())
    ds = ref_loop(oracle=oracle).run(path, config=CONFIG)
    return ds, oracle


# -- budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "batch_size", "n_initial", "strategy"),
    [(40, 10, 10, "qbc"), (47, 10, 10, "qbc"), (33, 8, 5, "random"), (5, 10, 10, "qbc")],
)
def test_loop_spends_exactly_the_budget(tmp_path, budget, batch_size, n_initial, strategy):
    path = tmp_path / "run.zarr"
    chooser = QueryByCommittee() if strategy == "qbc" else RandomSampling()
    ds = make_loop(strategy=chooser, budget=budget, batch_size=batch_size, n_initial=n_initial).run(path)
    first = min(n_initial, budget)
    expected_n_runs = list(range(first, budget, batch_size)) + [budget]
    assert ds.sizes["sample"] == budget
    np.testing.assert_array_equal(ds["n_runs"].values, expected_n_runs)
    np.testing.assert_array_equal(ds["n_labeled"].values, expected_n_runs)
    sizes = np.bincount(ds["round_of"].values)
    assert sizes[0] == first
    np.testing.assert_array_equal(sizes[1:], np.diff(expected_n_runs))
    assert np.all(sizes[1:] <= batch_size)
    assert ds.attrs["stop_reason"] == "budget spent"
    assert ds.attrs["budget"] == budget and ds.attrs["batch_size"] == batch_size
    x = ds["x"].values
    assert len(np.unique(x, axis=0)) == budget  # no simulation run twice
    assert np.all(make_box().contains(x))
    np.testing.assert_allclose(ds["y"].values[:, 0], target_fn(x))
    assert np.all(np.isfinite(ds["mse"].values))
    assert not checkpoint_of(path).exists()


def test_passive_sobol_samples_one_sobol_sequence(tmp_path):
    ds = make_loop(strategy=RandomSampling(), candidates=Candidates(size=10, method="sobol"),
                   budget=40, batch_size=10, n_initial=10).run(tmp_path / "run.zarr")
    np.testing.assert_array_equal(ds["x"].values, make_box().draw(40, seed=0, method="sobol"))


def test_initial_design_and_test_set(tmp_path, reference):
    ds, _ = reference
    box = make_box()
    np.testing.assert_array_equal(ds["x"].values[:10], box.draw(10, seed=0, method="sobol"))
    np.testing.assert_array_equal(ds["x_test"].values, box.draw(200, seed=20190101, method="uniform"))
    np.testing.assert_allclose(ds["y_test"].values[:, 0], target_fn(ds["x_test"].values))
    # The test set is the same whatever the run's seed.
    other = make_loop(seed=7, budget=10).run(tmp_path / "other.zarr")
    np.testing.assert_array_equal(other["x_test"].values, ds["x_test"].values)


def test_query_by_committee_runs_the_most_disputed_candidates(tmp_path):
    log = []
    ds = make_loop(committee=RecordingCommittee(make_committee(), log), budget=40).run(tmp_path / "run.zarr")
    x, round_of, n_runs = ds["x"].values, ds["round_of"].values, ds["n_runs"].values
    assert len(log) == len(n_runs) == 4
    for r in (1, 2, 3):
        fitted = log[r - 1][2]
        candidates = Candidates(size=200).draw(make_box(), seed=0, n_runs=int(n_runs[r - 1]))
        scores = np.asarray(committee_variance(fitted.predict_members(candidates)))
        np.testing.assert_array_equal(x[round_of == r], candidates[np.argsort(-scores)[:10]])


# -- failed runs ------------------------------------------------------------------------


def fragile(x):
    """Raises for x0 > 1.2 (the whole batch), NaN for x1 < -1.5."""
    if np.any(x[:, 0] > 1.2):
        raise FloatingPointError("unstable integration")
    return np.where(x[:, 1] < -1.5, np.nan, target_fn(x))


def test_failed_runs_are_stored_but_never_trained_on(tmp_path):
    log = []
    loop = make_loop(oracle=make_oracle(fragile), committee=RecordingCommittee(make_committee(), log),
                     budget=45, strategy=RandomSampling())
    ds = loop.run(tmp_path / "run.zarr")
    x, y, ok, error = ds["x"].values, ds["y"].values, ds["ok"].values, ds["error"].values
    assert ds.sizes["sample"] == 45  # failures are charged to the budget
    raised, non_finite = x[:, 0] > 1.2, (x[:, 0] <= 1.2) & (x[:, 1] < -1.5)
    assert raised.any() and non_finite.any()
    np.testing.assert_array_equal(ok, ~(raised | non_finite))
    assert all(str(e).startswith("FloatingPointError: unstable integration") for e in error[raised])
    assert all("non-finite" in str(e) for e in error[non_finite])
    assert all(str(e) == "" for e in error[ok])
    assert np.all(np.isnan(y[~ok]))
    np.testing.assert_allclose(y[ok, 0], target_fn(x[ok]))

    n_runs, n_labeled = ds["n_runs"].values, ds["n_labeled"].values
    np.testing.assert_array_equal(n_labeled, [ok[:n].sum() for n in n_runs])
    assert np.all(n_labeled < n_runs)
    assert len(log) == len(n_runs)
    for (x_fit, y_fit, _), n in zip(log, n_runs):
        np.testing.assert_array_equal(x_fit, x[:n][ok[:n]])
        assert np.all(np.isfinite(y_fit))
    assert np.all(np.isfinite(ds["mse"].values))
    # Failed test-set runs are left out of the test set.
    x_test = ds["x_test"].values
    assert 0 < len(x_test) < 200
    assert np.all(x_test[:, 0] <= 1.2) and np.all(x_test[:, 1] >= -1.5)


class FailAfterFirstCall:
    """The test set (the first `test_size` queries) succeeds; every later run fails."""

    def __init__(self, test_size=200):
        self.inner, self.queries, self.test_size = make_oracle(), 0, test_size
        self.space, self.outputs = self.inner.space, self.inner.outputs

    def run(self, queries):
        self.queries += len(queries)
        outcome = self.inner.run(queries)
        if self.queries <= self.test_size:
            return outcome
        n = len(queries)
        return Outcome(np.full((n, 1), np.nan), np.zeros(n, bool), np.full(n, "boom", object), outcome.cost_s)


def test_when_every_run_fails_the_loop_says_so(tmp_path):
    with pytest.raises(LoopError, match="all 10 runs so far failed.*boom"):
        make_loop(oracle=FailAfterFirstCall()).run(tmp_path / "run.zarr")


def test_when_every_test_run_fails_the_loop_says_so(tmp_path):
    def always_fails(x):
        raise FloatingPointError("no convergence")

    with pytest.raises(LoopError, match="only 0 of 200 test-set runs succeeded.*FloatingPointError: no convergence"):
        make_loop(oracle=make_oracle(always_fails)).run(tmp_path / "run.zarr")


# -- stopping ---------------------------------------------------------------------------


def test_stops_when_the_target_is_reached(tmp_path, reference):
    ref, _ = reference
    mse = ref["mse"].values
    target = float(mse[:-1].min())
    stop_round = int(np.flatnonzero(mse <= target)[0]) + 1
    assert stop_round > 1  # the reference improves, so this tests an early stop mid-run
    ds = ref_loop(target=target, target_metric="mse").run(tmp_path / "run.zarr", config=CONFIG)
    assert ds.attrs["stop_reason"] == f"target mse {target} reached"
    assert ds.sizes["round"] == stop_round
    n = int(ref["n_runs"].values[stop_round - 1])
    assert ds.sizes["sample"] == n < 40
    assert ds["mse"].values[-1] <= target
    assert np.all(ds["mse"].values[:-1] > target)
    # Up to the stop, it is the very same run.
    np.testing.assert_array_equal(ds["x"].values, ref["x"].values[:n])
    np.testing.assert_array_equal(ds["mse"].values, mse[:stop_round])


def test_unknown_target_metric_is_refused_before_anything_runs(tmp_path):
    oracle = RecordingOracle(make_oracle())
    with pytest.raises(ValueError, match=r"target metric 'f2' not among \[.*'mse'.*'r2'.*\] \(the regression"):
        make_loop(oracle=oracle, target=0.1, target_metric="f2")
    assert oracle.calls == 0
    classifier = FunctionOracle(fn=lambda x: (x[:, 0] > 0).astype(float), space=make_box(),
                                outputs=OutputSpec(names=("side",), task="classification", classes=("l", "r")))
    with pytest.raises(ValueError, match="target metric 'mse' not among"):
        make_loop(oracle=classifier, target=0.1, target_metric="mse")
    make_loop(oracle=classifier, target_metric="mse")  # no target: the metric is never consulted


def test_a_scorer_s_unknown_target_metric_is_refused_at_the_first_round(tmp_path):
    loop = make_loop(scorer=lambda committee, x, y: {"coverage": 0.5}, target=0.1, target_metric="mse", budget=20)
    with pytest.raises(ValueError, match=r"target metric 'mse' not among \['coverage', 'fit_s'"):
        loop.run(tmp_path / "run.zarr")


def test_the_target_direction_follows_the_metric_name():
    assert target_met({"r2": 0.91}, "r2", 0.9) and not target_met({"r2": 0.89}, "r2", 0.9)
    assert target_met({"mse": 0.01}, "mse", 0.02) and not target_met({"mse": 0.03}, "mse", 0.02)
    assert target_met({"top1_accuracy": 0.8}, "top1_accuracy", 0.7)
    assert not target_met({"coverage": 0.8}, "coverage", 0.7)  # not known to be better higher: <=
    assert target_met({"coverage": 0.8}, "coverage", 0.7, declared=("coverage",))
    assert not target_met({"mse": 0.0}, "mse", None)
    with pytest.raises(ValueError, match="is an array"):
        target_met({"r2_per_output": np.zeros(2)}, "r2_per_output", 0.5)


def coverage_scorer(committee, x_test, y_test):
    return {"coverage": 0.75, "rmse_index": 0.1}


def test_a_scorer_declares_which_of_its_metrics_are_better_higher(tmp_path):
    declared = make_loop(scorer=coverage_scorer, higher_is_better=["coverage"], target=0.7,
                         target_metric="coverage", budget=30).run(tmp_path / "declared.zarr")
    assert declared.attrs["stop_reason"] == "target coverage 0.7 reached" and declared.sizes["round"] == 1
    assert json.loads(declared.attrs["higher_is_better"]) == ["coverage"]
    undeclared = make_loop(scorer=coverage_scorer, target=0.7, target_metric="coverage",
                           budget=20).run(tmp_path / "undeclared.zarr")
    assert undeclared.attrs["stop_reason"] == "budget spent"  # 0.75 is not <= 0.7
    assert json.loads(undeclared.attrs["higher_is_better"]) == []
    with pytest.raises(ValueError, match=r"higher_is_better names \['skill'\] that the scorer does not return"):
        make_loop(scorer=coverage_scorer, higher_is_better=("skill",), budget=20).run(tmp_path / "typo.zarr")
    with pytest.raises(ValueError, match="a list of metric names"):
        make_loop(higher_is_better="coverage")


def test_round_metrics_score_against_the_test_mean(reference):
    ds, _ = reference
    assert ds.attrs["higher_is_better"] == json.dumps(["r2"])
    # The same constant every round, whatever runs the committee was fitted on: the test set's variance.
    np.testing.assert_allclose(ds["mse_constant"].values, np.var(ds["y_test"].values), rtol=1e-12)
    np.testing.assert_allclose(ds["r2"].values, 1 - ds["mse"].values / ds["mse_constant"].values)
    assert ds["r2"].values[-1] > ds["r2"].values[0]
    assert "mse_per_output" not in ds  # one output


def two_outputs(x):
    """(sin(x0) + x1^2, 1000 x0 x1): two outputs in very different units."""
    return np.column_stack([target_fn(x), 1000 * x[:, 0] * x[:, 1]])


def test_a_vector_output_loop_stores_per_output_metrics_and_its_description(tmp_path):
    outputs = OutputSpec(names=("bowl", "saddle"), coords=(0.5, 1.5), coord_name="time", units=("m", "mm"),
                         transform="none applied")
    oracle = FunctionOracle(fn=two_outputs, space=make_box(), outputs=outputs)
    ds = make_loop(oracle=oracle, budget=20, test_size=100).run(tmp_path / "run.zarr")
    assert ds.sizes["round"] == 2
    for name in ("mse_per_output", "r2_per_output"):
        assert ds[name].dims == ("round", "output") and ds[name].shape == (2, 2)
    np.testing.assert_array_equal(ds["time"].values, [0.5, 1.5])
    assert ds["time"].dims == ("output",)
    assert json.loads(ds.attrs["output_units"]) == ["m", "mm"] and ds.attrs["output_transform"] == "none applied"
    assert json.loads(ds.attrs["higher_is_better"]) == ["r2", "r2_per_output"]
    np.testing.assert_allclose(ds["r2"].values, ds["r2_per_output"].values.mean(axis=1))
    # The combined mse is of standardised outputs: the saddle's units do not swamp it.
    assert ds["mse"].values[-1] < 0.5 * ds["mse_per_output"].values[-1, 1]


def test_a_simulator_with_a_whole_number_input_only_ever_receives_whole_numbers(tmp_path):
    seen = []

    def layered(x):
        seen.append(x[:, 1].copy())
        return np.sin(3 * x[:, :1]) + 0.1 * x[:, 1:]

    box = Box(names=("x", "layers"), lower=(0, 1), upper=(1, 6), integer=("layers",))
    oracle = FunctionOracle(fn=layered, space=box, outputs=OutputSpec(names=("y",)))
    ds = make_loop(oracle=oracle, budget=30, test_size=50).run(tmp_path / "run.zarr")
    layers = np.concatenate(seen)
    assert len(layers) == 30 + 50 and np.all(layers == np.round(layers)) and set(layers) <= set(range(1, 7))
    assert np.all(ds["x"].values[:, 1] == np.round(ds["x"].values[:, 1]))


def test_the_test_set_is_run_in_chunks_and_is_the_same_set(tmp_path):
    oracle = RecordingOracle(make_oracle())
    x, y = draw_test_set(oracle, 120, seed=4)
    assert [len(q) for q in oracle.completed] == [2] * 60
    np.testing.assert_array_equal(x, make_box().draw(120, seed=4, method="uniform"))
    np.testing.assert_allclose(y[:, 0], target_fn(x))
    tiny = RecordingOracle(make_oracle())
    draw_test_set(tiny, 3, seed=4, progress=True)
    assert [len(q) for q in tiny.completed] == [1, 1, 1]


def test_on_an_executor_every_test_set_run_is_a_task_of_its_own():
    """So that the workers share each chunk and a timeout sized for one run applies to one run."""
    from concurrent.futures import ThreadPoolExecutor

    oracle = RecordingOracle(make_oracle())
    with ThreadPoolExecutor(max_workers=2) as pool:
        x, y = draw_test_set(oracle, 120, seed=4, executor=pool)
    assert len(oracle.completed) == 120 and all(len(q) == 1 for q in oracle.completed)
    np.testing.assert_array_equal(x, make_box().draw(120, seed=4, method="uniform"))
    np.testing.assert_allclose(y[:, 0], target_fn(x))


def test_failed_test_set_runs_are_left_out_and_said_so(capsys):
    def half_fails(x):
        return np.where(x[:, 0] > 1.0, np.nan, target_fn(x))

    x, y = draw_test_set(make_oracle(half_fails), 40, seed=4)
    drawn = make_box().draw(40, seed=4, method="uniform")
    assert len(x) == int((drawn[:, 0] <= 1.0).sum()) < 40 and np.all(np.isfinite(y))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"test set: {40 - len(x)} of 40 runs failed and are left out")


def test_a_run_stopped_during_its_test_set_simulates_only_the_rest_when_resumed(tmp_path, capsys):
    crashing = RecordingOracle(make_oracle(), crash_on_call=21)  # after 20 chunks of 2 test runs
    with pytest.raises(RuntimeError, match="lost the compute node"):
        make_loop(oracle=crashing, budget=30, test_size=100).run(tmp_path / "run.zarr")
    assert (tmp_path / "run.zarr.test_set_runs").exists()
    resumed = RecordingOracle(make_oracle())
    data = make_loop(oracle=resumed, budget=30, test_size=100).run(tmp_path / "run.zarr")
    assert sum(len(q) for q in resumed.completed) == (100 - 40) + 30
    assert "test set: resuming at 40 of 100 runs" in capsys.readouterr().err
    assert not (tmp_path / "run.zarr.test_set_runs").exists()
    whole = make_loop(budget=30, test_size=100).run(tmp_path / "whole.zarr")
    assert without_timing(data).drop_attrs().identical(without_timing(whole).drop_attrs())


def test_a_simulator_that_ignores_its_inputs_is_said_so_at_the_test_set(capsys):
    draw_test_set(make_oracle(lambda x: np.full(len(x), 0.1 * 3)), 40, seed=4)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test set: every output is the same at all 40 points (0.3)")
    draw_test_set(make_oracle(), 40, seed=4)
    assert capsys.readouterr().err == ""


def test_classification_loop(tmp_path):
    oracle = FunctionOracle(fn=lambda x: (x[:, 0] + x[:, 1] > 0).astype(float), space=make_box(),
                            outputs=OutputSpec(names=("side",), task="classification", classes=("left", "right")))
    committee = make_committee(task="classification", n_classes=2)
    ds = make_loop(oracle=oracle, committee=committee, strategy=QueryByCommittee("vote_entropy"),
                   target=1.01, target_metric="accuracy").run(tmp_path / "run.zarr")
    assert ds.sizes["sample"] == 40
    assert set(np.unique(ds["y"].values)) <= {0.0, 1.0}
    assert ds.attrs["task"] == "classification" and json.loads(ds.attrs["classes"]) == ["left", "right"]
    for name in ("accuracy", "f1", "log_loss"):
        assert ds[name].dims == ("round",)
    assert ds["accuracy"].values[-1] > 0.8
    assert ds.attrs["stop_reason"] == "budget spent"  # accuracy can never reach 1.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(budget=0), "budget"), (dict(batch_size=0), "batch_size"), (dict(n_initial=0), "n_initial"),
     (dict(test_size=0), "test_size")],
)
def test_loop_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_loop(**kwargs)
    with pytest.raises(ValueError, match="candidates.size"):
        Candidates(size=0)


def test_candidates_clear_of_failures_drop_a_failing_region_and_keep_lone_failures():
    from alframe.space import Box

    box = Box(names=("a", "b", "c"), lower=(0, 0, 0), upper=(1, 1, 1))
    rng = np.random.default_rng(0)
    runs = rng.random((200, 3))
    candidates = rng.random((5000, 3))  # more than one block of distances
    inside = candidates[:, 0] > 0.7
    clear = Candidates().clear_of_failures(box, candidates, runs, runs[:, 0] <= 0.7)
    assert clear[candidates[:, 0] < 0.5].all() and clear[~inside].mean() > 0.95 and clear[inside].mean() < 0.1
    scattered = rng.random(200) > 0.05  # lost nodes, not a region
    assert Candidates().clear_of_failures(box, candidates, runs, scattered).mean() > 0.99
    assert Candidates(failure_neighbours=None).clear_of_failures(box, candidates, runs, runs[:, 0] <= 0.7).all()
    assert Candidates().clear_of_failures(box, candidates, runs, np.ones(200, bool)).all()
    with pytest.raises(ValueError, match="candidates.failure_neighbours must be an integer >= 1 or null, got 0"):
        Candidates(failure_neighbours=0)


def test_no_strategy_keeps_running_where_the_simulator_fails(tmp_path):
    def fails_on_the_right(x):
        return np.where(x[:, :1] > 0.5, np.nan, np.sin(3 * x[:, :1]) + x[:, 1:2])

    box = Box(names=("a", "b"), lower=(-1, -1), upper=(1, 1))
    oracle = FunctionOracle(fails_on_the_right, box, OutputSpec(("y",)))
    runs = {}
    for neighbours in (5, None):
        ds = make_loop(oracle=oracle, strategy=RandomSampling(), budget=80, test_size=50,
                       candidates=Candidates(size=200, failure_neighbours=neighbours)).run(tmp_path / f"{neighbours}")
        runs[neighbours] = int((~ds["ok"].values.astype(bool)).sum())
    # A quarter of the box fails: random runs keep paying for it; after the first failures, nothing does.
    assert runs[None] >= 15 and runs[5] <= runs[None] // 2


class _Broken:
    """A strategy whose answers cannot be run."""

    def __init__(self, answer):
        self.answer = answer

    def select(self, committee, candidates, k, *, key, pending=None, failed=None):
        return self.answer(np.arange(k), len(candidates))


@pytest.mark.parametrize("answer, says", [
    (lambda picks, n: np.r_[picks[:-1], picks[0]], "picked the same point 2 times (row 0"),
    (lambda picks, n: picks[:-1], "picked 9 candidates when asked for 10"),
    (lambda picks, n: np.r_[picks, len(picks)], "chose 11 points when asked for 10"),
    (lambda picks, n: picks + n, "picked candidate"),
    (lambda picks, n: picks.astype(float), "must return indices (k,)"),
])
def test_a_strategy_whose_picks_cannot_be_run_stops_the_run_naming_it(tmp_path, answer, says):
    loop = make_loop(strategy=_Broken(answer), budget=30, test_size=20)
    with pytest.raises(LoopError, match=r"^strategy tests\.test_loop\._Broken") as raised:
        loop.run(tmp_path / "run.zarr")
    assert says in str(raised.value)


# -- determinism and identity -------------------------------------------------------------


def test_one_seed_one_store(tmp_path, reference):
    ref, ref_oracle = reference
    again = ref_loop().run(tmp_path / "again.zarr", config=CONFIG)
    assert_same_store(again, ref)
    assert json.loads(ref.attrs["config"]) == CONFIG and ref.attrs["seed"] == 0
    other = ref_loop(seed=1).run(tmp_path / "other.zarr", config=CONFIG)
    assert not np.array_equal(other["x"].values, ref["x"].values)


def test_rerunning_a_finished_run_runs_nothing(tmp_path):
    path = tmp_path / "run.zarr"
    first = make_loop(budget=20).run(path, config=CONFIG)
    oracle = RecordingOracle(make_oracle())
    again = make_loop(oracle=oracle, budget=20).run(path, config=CONFIG)
    assert oracle.calls == 0
    xr.testing.assert_identical(again, first)  # timings included: nothing was redone


def test_another_config_on_the_same_path_raises(tmp_path):
    path = tmp_path / "run.zarr"
    make_loop(budget=20).run(path, config=CONFIG)
    with pytest.raises(StoreMismatchError, match="different config"):
        make_loop(budget=20).run(path, config={**CONFIG, "strategy": "random"})
    with pytest.raises(StoreMismatchError, match=r"settings \(budget 20 -> 30\); resume only with the same ones"):
        make_loop(budget=30).run(path, config=CONFIG)


def test_another_seed_on_the_same_path_raises(tmp_path):
    path = tmp_path / "run.zarr"
    make_loop(budget=20).run(path)
    with pytest.raises(StoreMismatchError):
        make_loop(budget=20, seed=1).run(path)


def test_another_budget_on_the_same_path_is_not_silently_ignored(tmp_path):
    path = tmp_path / "run.zarr"
    make_loop(budget=20).run(path)
    try:
        ds = make_loop(budget=30).run(path)
    except StoreMismatchError:
        return
    assert ds.sizes["sample"] == 30


# -- resuming ---------------------------------------------------------------------------


# The test set (200 points) is run in chunks of 4: calls 1-50.
TEST_SET_CALLS = 50


@pytest.mark.parametrize("crash_on_call", [1, TEST_SET_CALLS + 1, TEST_SET_CALLS + 3])
def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, reference, crash_on_call):
    """Calls: 1-50 test set, 51 initial design, 52.. one per round; the crash is a raise from run()."""
    ref, ref_oracle = reference
    path = tmp_path / "run.zarr"
    crashing = RecordingOracle(make_oracle(), crash_on_call=crash_on_call)
    with pytest.raises(RuntimeError, match="lost the compute node"):
        ref_loop(oracle=crashing).run(path, config=CONFIG)
    if crash_on_call >= TEST_SET_CALLS + 2:
        assert checkpoint_of(path).exists()
        assert xr.open_zarr(path).sizes["round"] >= 1
    resumed = RecordingOracle(make_oracle())
    ds = ref_loop(oracle=resumed).run(path, config=CONFIG)
    assert_same_store(ds, ref)
    # Across both attempts, every simulation was run once, in the uninterrupted order.
    both = np.vstack([crashing.all_queries(), resumed.all_queries()])
    np.testing.assert_array_equal(both, ref_oracle.all_queries())
    assert not checkpoint_of(path).exists()


def test_a_resumed_run_says_where_it_resumes(tmp_path, capsys):
    path = tmp_path / "run.zarr"
    with pytest.raises(RuntimeError, match="lost the compute node"):
        make_loop(oracle=RecordingOracle(make_oracle(), crash_on_call=TEST_SET_CALLS + 3), test_size=100).run(path)
    before = xr.open_zarr(path)
    done, rounds = before.sizes["sample"], before.sizes["round"]
    capsys.readouterr()
    make_loop(test_size=100, progress=True).run(path)
    assert f"resuming {path} at {done} runs of 40 ({rounds} round{'s' * (rounds != 1)} recorded)" in capsys.readouterr().err


def test_resume_after_a_kill_inside_a_store_append(tmp_path, reference, monkeypatch):
    ref, _ = reference
    path = tmp_path / "run.zarr"
    original, calls = zarr.consolidate_metadata, [0]

    def killed_on_fourth(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 4:  # 1 test set, 2 initial design, 3 round 1 attrs, 4 round 1 metrics
            raise KeyboardInterrupt("SIGKILL")
        return original(*args, **kwargs)

    monkeypatch.setattr(zarr, "consolidate_metadata", killed_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        ref_loop().run(path, config=CONFIG)
    monkeypatch.undo()
    assert_same_store(ref_loop().run(path, config=CONFIG), ref)


SIGKILL_CASE = '''
import pathlib, sys, time

import numpy as np

from alframe.learners import MLPCommittee
from alframe.loop import ActiveLearningLoop, Candidates
from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box
from alframe.strategies import QueryByCommittee

CONFIG = {"case": "sigkill"}


def build_loop(marker=None, pause=0.0, pause_on=0):
    calls = [0]

    def simulate(x):
        calls[0] += 1
        if marker is not None:  # tell the test which call is running; the one it waits for takes a while
            marker.write_text(str(calls[0]))
            if calls[0] == pause_on:
                time.sleep(pause)
        return np.sin(x[:, 0]) + x[:, 1] ** 2

    oracle = FunctionOracle(fn=simulate, space=Box(names=("x0", "x1"), lower=(-2, -2), upper=(2, 2)),
                            outputs=OutputSpec(names=("y",)))
    committee = MLPCommittee(members=3, hidden=(16,), steps_first=200, steps_warm=50, capacity=128)
    return ActiveLearningLoop(oracle=oracle, committee=committee, strategy=QueryByCommittee(), budget=70,
                              batch_size=10, n_initial=10, test_size=200, candidates=Candidates(size=200),
                              progress=False, seed=5)


if __name__ == "__main__":
    build_loop(pathlib.Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])).run(sys.argv[1], config=CONFIG)
'''


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "sigkill_case.py"
    script.write_text(SIGKILL_CASE)
    case: dict = {"__name__": "sigkill_case"}
    exec(compile(SIGKILL_CASE, str(script), "exec"), case)

    path, marker = tmp_path / "run.zarr", tmp_path / "calls.txt"
    # Calls: 1-50 test set, 51 initial design, 52.. a round each. Kill inside round 4's runs.
    round_4 = str(TEST_SET_CALLS + 5)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(marker), "5", round_4], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 150
        while not (marker.exists() and marker.read_text().strip() == round_4):
            assert proc.poll() is None, f"the run ended early: {proc.communicate()[1].decode()[-2000:]}"
            assert time.monotonic() < deadline, "the run never reached round 4's simulations"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_of(path).exists()
    killed = xr.open_zarr(path)
    assert killed.sizes["round"] == 4 and killed.sizes["sample"] == 40
    assert "stop_reason" not in killed.attrs

    # Uninterrupted, in this process.
    reference = case["build_loop"]().run(tmp_path / "reference.zarr", config=case["CONFIG"])
    # The killed run, finished in this process from its store and checkpoint.
    loop = case["build_loop"]()
    loop.oracle = RecordingOracle(loop.oracle)
    finished = loop.run(path, config=case["CONFIG"])
    assert_same_store(finished, reference)
    # Only the interrupted round and the ones after it were simulated again.
    np.testing.assert_array_equal(loop.oracle.all_queries(), reference["x"].values[40:])
    assert not checkpoint_of(path).exists()


def test_a_given_test_set_is_used_instead_of_drawing_one(tmp_path):
    rng = np.random.default_rng(5)
    x_test = rng.uniform(-1, 1, size=(37, 2))
    y_test = np.asarray(target_fn(x_test)).reshape(len(x_test), -1)
    oracle = RecordingOracle(make_oracle())
    data = make_loop(oracle=oracle, budget=30, test_set=(x_test, y_test[:, 0])).run(tmp_path / "run.zarr")
    np.testing.assert_array_equal(data["x_test"].values, x_test)
    np.testing.assert_allclose(data["y_test"].values, y_test)
    assert sum(len(q) for q in oracle.completed) == 30  # no simulation spent on a test set


def test_a_test_set_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(LoopError, match=r"test_set must be x \(n, 2\)"):
        make_loop(budget=30, test_set=(np.zeros((5, 3)), np.zeros(5))).run(tmp_path / "run.zarr")


def test_a_given_test_set_is_checked_against_the_simulator(tmp_path, capsys):
    """Outputs of the wrong width and inputs outside the box are refused in one line; rows
    whose outputs are not finite are left out and said so."""
    rng = np.random.default_rng(5)
    x_test = rng.uniform(-1, 1, size=(40, 2))
    y_test = np.asarray(target_fn(x_test)).reshape(len(x_test), -1)
    with pytest.raises(LoopError, match=r"test_set must be x \(n, 2\) and y \(n, 1\) .* got x \(40, 2\) and y \(40, 2\)"):
        make_loop(budget=30, test_set=(x_test, np.hstack([y_test, y_test]))).run(tmp_path / "wide.zarr")
    outside = x_test.copy()
    outside[3] = [3.0, 0.0]
    with pytest.raises(LoopError, match=r"1 of 40 inputs lie outside the simulator's space \(the first, row 3: \[3.0, 0.0\]\)"):
        make_loop(budget=30, test_set=(outside, y_test)).run(tmp_path / "outside.zarr")
    holed = y_test.copy()
    holed[[0, 7]] = np.nan
    data = make_loop(budget=30, test_set=(x_test, holed)).run(tmp_path / "holed.zarr")
    assert data.sizes["test_sample"] == 38 and np.isfinite(data["mse"].values).all()
    assert "2 of 40 given rows have outputs that are not finite and are left out" in capsys.readouterr().err

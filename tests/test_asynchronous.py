"""The asynchronous loop, faults, the result cache and steering clear of failures."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from alframe.asynchronous import AsyncActiveLearningLoop
from alframe.cache import CachedOracle, query_key
from alframe.executors import ProcessWorkers, SequentialExecutor
from alframe.loop import Candidates
from alframe.oracle import FunctionOracle, Outcome
from alframe.store import RunStore, commit_path, read_run
from alframe.strategies import AvoidFailures, QueryByCommittee, RandomSampling, Spread
from tests.conftest import make_box, make_committee, make_loop, make_oracle, target_fn, without_timing

REPO = Path(__file__).resolve().parents[1]


def _bytes(row) -> bytes:
    return np.asarray(row, dtype=np.float64).tobytes()


@dataclass(frozen=True)
class FaultyOracle:
    """The test oracle, with a fault planted on chosen queries (picklable, for workers).

    faults maps a query's float64 bytes to "raise", "hang", "die" or "once" (raise
    on the first try only; tries are counted in files under `marks`).
    """

    inner: FunctionOracle
    faults: dict
    marks: str = ""

    @property
    def space(self):
        return self.inner.space

    @property
    def outputs(self):
        return self.inner.outputs

    def run(self, queries):
        for q in queries:
            fault = self.faults.get(_bytes(q))
            if fault == "raise":
                raise RuntimeError("solver diverged")
            if fault == "hang":
                time.sleep(600)
            if fault == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == "once":
                mark = Path(self.marks) / query_key("once", q)
                if not mark.exists():
                    mark.touch()
                    raise RuntimeError("transient failure")
        return self.inner.run(queries)


@dataclass(frozen=True)
class NanWhere:
    """y = target, NaN on the planted queries: a simulator returning garbage."""

    nan_at: frozenset

    def __call__(self, x):
        y = target_fn(x)
        bad = np.array([_bytes(row) in self.nan_at for row in np.atleast_2d(x)])
        return np.where(bad, np.nan, y)


@dataclass(frozen=True)
class SlowOracle:
    """The test oracle, taking `seconds` per run: a stand-in for a long simulation."""

    inner: FunctionOracle
    seconds: float

    @property
    def space(self):
        return self.inner.space

    @property
    def outputs(self):
        return self.inner.outputs

    def run(self, queries):
        time.sleep(self.seconds * len(queries))
        return self.inner.run(queries)


def make_async(oracle=None, committee=None, **overrides) -> AsyncActiveLearningLoop:
    settings = dict(budget=40, n_initial=10, test_size=200, candidates=Candidates(size=200), progress=False,
                    seed=0, in_flight=3, refit_every=3, strategy=QueryByCommittee(batch=Spread()))
    settings.update(overrides)
    return AsyncActiveLearningLoop(oracle=make_oracle() if oracle is None else oracle,
                                   committee=make_committee() if committee is None else committee, **settings)


# -- the asynchronous loop ------------------------------------------------------------------


def test_async_loop_spends_the_budget_and_records_every_fit(tmp_path):
    data = make_async().run(tmp_path / "run.zarr")
    assert data.sizes["sample"] == 40 and data["ok"].all()
    assert len({_bytes(row) for row in data["x"].values}) == 40  # nothing proposed twice
    assert data.attrs["stop_reason"] == "budget spent"
    assert data["n_labeled"].values[-1] == 40  # the last fit saw every result
    assert np.all(np.diff(data["n_labeled"].values) > 0)
    assert data["round_of"].values[:10].tolist() == [0] * 10  # the initial design


def test_async_loop_with_a_sequential_executor_and_foreground_fits_is_reproducible(tmp_path):
    a = make_async(fit_in_background=False, executor=SequentialExecutor()).run(tmp_path / "a.zarr")
    b = make_async(fit_in_background=False, executor=SequentialExecutor()).run(tmp_path / "b.zarr")
    assert without_timing(a).drop_attrs().identical(without_timing(b).drop_attrs())


def test_async_loop_learns_like_the_batch_loop(tmp_path):
    committee = make_committee(restart_growth=None)  # no refits from scratch: a steady curve
    # Runs that take a while, as simulations do: instant ones would spend the budget during
    # the first background fits.
    data = make_async(SlowOracle(make_oracle(), 0.05), committee=committee, budget=60).run(tmp_path / "run.zarr")
    batch = make_loop(committee=committee, budget=60).run(tmp_path / "batch.zarr")
    assert data["mse"].values[-1] < 0.6 * data["mse"].values[0]
    assert data["mse"].values[-1] < 1.5 * batch["mse"].values[-1]


class SlowFit:
    """The test committee, taking `seconds` per fit: fits slower than the simulations."""

    def __init__(self, committee, seconds):
        self.committee, self.seconds = committee, seconds

    def fit(self, x, y, *, key):
        time.sleep(self.seconds)
        return SlowFit(self.committee.fit(x, y, key=key), self.seconds)

    def predict_members(self, x):
        return self.committee.predict_members(x)


def test_simulations_quicker_than_a_fit_wait_for_it_rather_than_all_follow_one_committee(tmp_path):
    def chosen_per_committee(data):
        chosen_by = data["round_of"].values
        return np.bincount(chosen_by[chosen_by > 0])

    committee = SlowFit(make_committee(), 0.3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        bounded = make_async(committee=committee, executor=pool, in_flight=2, refit_every=1, n_initial=8,
                             budget=40, design_until_fitted=False).run(tmp_path / "bounded.zarr")
        loose = make_async(committee=committee, executor=pool, in_flight=2, refit_every=1, n_initial=8,
                           budget=40, design_until_fitted=False, max_lag=40).run(tmp_path / "loose.zarr")
    assert bounded.sizes["sample"] == loose.sizes["sample"] == 40
    assert chosen_per_committee(bounded).max() <= 4 + 2  # max_lag (twice in_flight), then the W in flight
    assert chosen_per_committee(loose).max() > 12  # the instant runs outpace the fits
    assert bounded["n_labeled"].size > loose["n_labeled"].size
    with pytest.raises(ValueError, match="max_lag must be >= 1"):
        make_async(max_lag=0)


def test_a_fault_injecting_oracle_runs_to_the_end_with_every_fault_recorded(tmp_path):
    design = make_box().draw(10, seed=0, method="sobol")
    nan_at = frozenset({_bytes(design[1])})
    faults = {_bytes(design[0]): "raise", _bytes(design[2]): "hang", _bytes(design[3]): "die",
              _bytes(design[4]): "once"}
    (tmp_path / "marks").mkdir()
    inner = FunctionOracle(fn=NanWhere(nan_at), space=make_box(), outputs=make_oracle().outputs)
    oracle = FaultyOracle(inner, faults, str(tmp_path / "marks"))
    executor = ProcessWorkers(3, timeout_s=3.0)
    try:
        data = make_async(oracle, executor=executor, budget=30, retries=1, test_size=30).run(tmp_path / "run.zarr")
    finally:
        executor.shutdown()
    assert data.sizes["sample"] == 30 and data.attrs["stop_reason"] == "budget spent"
    errors = {_bytes(x): str(e) for x, e in zip(data["x"].values, data["error"].values)}
    assert "solver diverged" in errors[_bytes(design[0])] and "after 2 tries" in errors[_bytes(design[0])]
    assert "non-finite" in errors[_bytes(design[1])]
    assert "TaskTimeout" in errors[_bytes(design[2])]
    assert "WorkerLost" in errors[_bytes(design[3])]
    assert errors[_bytes(design[4])] == ""  # failed once, then succeeded on its retry
    assert int((~data["ok"].values).sum()) == 4


def test_async_loop_resumes_after_a_crash_without_losing_or_repeating_runs(tmp_path, capsys):
    path = tmp_path / "run.zarr"

    class Crash(KeyboardInterrupt):  # what stops a driver; an Exception would be a failed run
        pass

    calls = {"n": 0}

    def fn(x):
        calls["n"] += 1
        if calls["n"] == 50 + 25:  # the 25th call after the test set's 50 chunks
            raise Crash
        return target_fn(x)

    class Crashing:
        space, outputs = make_oracle().space, make_oracle().outputs

        def run(self, queries):
            return Outcome(np.asarray(fn(queries))[:, None], np.ones(len(queries), bool),
                           np.array([""] * len(queries), dtype=object), np.zeros(len(queries)))

    with pytest.raises(Crash):
        make_async(Crashing(), executor=SequentialExecutor()).run(path)
    before = xr.open_zarr(path).load()
    assert 0 < before.sizes["sample"] < 40
    capsys.readouterr()
    data = make_async(executor=SequentialExecutor(), progress=True).run(path)
    assert f"resuming {path} at {before.sizes['sample']} runs of 40" in capsys.readouterr().err
    assert data.sizes["sample"] == 40
    np.testing.assert_array_equal(data["x"].values[: before.sizes["sample"]], before["x"].values)
    assert len({_bytes(row) for row in data["x"].values}) == 40


# -- kill -9 of the driver, with a reader watching -------------------------------------------


@dataclass(frozen=True)
class Marking:
    """`inner`, leaving a file named by each query's key in `marks` once its run has finished."""

    inner: object
    marks: str

    @property
    def space(self):
        return self.inner.space

    @property
    def outputs(self):
        return self.inner.outputs

    def run(self, queries):
        outcome = self.inner.run(queries)
        for q in queries:
            (Path(self.marks) / query_key("run", q)).touch()
        return outcome


KILL_TEST_SIZE = 30  # the driver's test-set runs leave marks too


def driver(path: str, marks: str | None = None) -> None:
    """A slow asynchronous run, for the kill test: python -m tests.test_asynchronous PATH [MARKS].

    With MARKS, every finished run leaves a file there, and each store append first waits
    0.15 s, so that at any moment runs have finished whose append has not committed yet.
    """
    oracle = SlowOracle(make_oracle(), 0.1)
    if marks is not None:
        oracle = Marking(oracle, marks)
        append_runs = RunStore.append_runs

        def slow_append_runs(*args, **kwargs):
            time.sleep(0.15)
            append_runs(*args, **kwargs)

        RunStore.append_runs = slow_append_runs
    # Threads: the kill takes them with the driver, and no worker process has to start.
    with ThreadPoolExecutor(max_workers=3) as executor:
        make_async(oracle, executor=executor, budget=32, in_flight=3, test_size=KILL_TEST_SIZE).run(path)


def _committed_samples(path: Path) -> int:
    try:
        return json.loads(commit_path(path).read_text())["sizes"].get("sample", 0)
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.slow
def test_kill_9_mid_async_run_loses_and_repeats_nothing_and_readers_never_fail(tmp_path):
    path, marks = tmp_path / "run.zarr", tmp_path / "marks"
    marks.mkdir()
    command = [sys.executable, "-m", "tests.test_asynchronous", str(path)]
    reader_errors: list[str] = []
    reads = {"n": 0}
    stop = threading.Event()

    def read_continually():
        while not stop.is_set():
            if path.exists():
                try:
                    ds = read_run(path)
                    if "x" in ds:
                        assert len(ds["x"]) == len(ds["ok"]) == len(ds["error"])
                    reads["n"] += 1
                except FileNotFoundError:
                    pass  # nothing committed yet
                except Exception as exc:  # noqa: BLE001 - collected and asserted on
                    reader_errors.append(repr(exc))
            time.sleep(0.02)

    reader = threading.Thread(target=read_continually, daemon=True)
    reader.start()
    process = subprocess.Popen([*command, str(marks)], cwd=REPO)
    deadline = time.time() + 240
    # Killed once 16 runs are committed and some that finished are not yet.
    while time.time() < deadline and process.poll() is None and not (
            16 <= _committed_samples(path) < len(list(marks.iterdir())) - KILL_TEST_SIZE):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stop.set()
    reader.join()
    assert reads["n"] > 0 and not reader_errors, reader_errors[:3]
    before = xr.open_zarr(path).load()
    n_before = before.sizes["sample"]
    assert 16 <= n_before < 32

    # Runs that had finished but were not recorded yet are listed in the in-flight checkpoint.
    recorded = {query_key("run", q) for q in before["x"].values}
    finished = {p.name for p in marks.iterdir()} - {query_key("run", q) for q in before["x_test"].values}
    with open(path.with_name(path.name + ".resume.pkl"), "rb") as f:
        _, in_flight = pickle.load(f)
    assert recorded <= finished and finished - recorded
    assert finished - recorded <= {query_key("run", q) for q in in_flight}

    subprocess.run(command, cwd=REPO, check=True, timeout=300)
    after = xr.open_zarr(path).load()
    assert after.sizes["sample"] == 32 and after.attrs["stop_reason"] == "budget spent"
    np.testing.assert_array_equal(after["x"].values[:n_before], before["x"].values)
    assert len({_bytes(row) for row in after["x"].values}) == 32


# -- cache ---------------------------------------------------------------------------------


class Counting:
    def __init__(self):
        self.inner, self.runs = make_oracle(), 0
        self.space, self.outputs = self.inner.space, self.inner.outputs

    def run(self, queries):
        self.runs += len(queries)
        return self.inner.run(queries)


def test_cache_serves_identical_simulations_without_running_them(tmp_path):
    counting = Counting()
    cached = CachedOracle(counting, tmp_path / "cache", version="sin+square v1")
    first = make_loop(oracle=cached, budget=30).run(tmp_path / "a.zarr")
    ran = counting.runs
    assert ran == 200 + 30 and len(cached) == ran
    second = make_loop(oracle=cached, budget=30).run(tmp_path / "b.zarr")
    assert counting.runs == ran  # the repeated sweep computed nothing
    np.testing.assert_array_equal(first["y"].values, second["y"].values)
    other = CachedOracle(counting, tmp_path / "cache", version="sin+square v2")
    other.run(first["x"].values[:5])
    assert counting.runs == ran + 5  # another simulator version reuses nothing


def test_cache_does_not_keep_failures_and_ignores_a_torn_file(tmp_path):
    fails = FunctionOracle(fn=lambda x: np.full(len(x), np.nan), space=make_box(), outputs=make_oracle().outputs)
    cached = CachedOracle(fails, tmp_path / "cache", version="v")
    out = cached.run(np.zeros((2, 2)))
    assert not out.ok.any() and len(cached) == 0
    good = CachedOracle(make_oracle(), tmp_path / "cache", version="v")
    q = np.array([[0.5, 0.25]])
    good.run(q)
    path = next((tmp_path / "cache").glob("*/*.npy"))
    path.write_bytes(path.read_bytes()[:10])  # a crash mid-write, without the rename
    assert good.lookup(q[0]) is None
    np.testing.assert_allclose(good.run(q).y[:, 0], target_fn(q))


# -- strategies around pending and failed points ------------------------------------------------


def test_spread_discounts_candidates_near_pending_runs():
    rng = np.random.default_rng(0)
    candidates = rng.uniform(-2, 2, size=(400, 2))
    scores = np.exp(-np.sum(candidates**2, axis=1))  # one peak at the origin
    import jax

    plain = Spread(0.1)(scores, candidates, 1, key=jax.random.key(0))
    near = Spread(0.1)(scores, candidates, 1, key=jax.random.key(0), near=np.zeros((1, 2)))
    assert np.linalg.norm(candidates[plain[0]]) < 0.2
    assert np.linalg.norm(candidates[near[0]]) > 0.2  # the peak is taken by a run in flight


def test_avoid_failures_drops_candidates_near_failed_runs():
    import jax

    candidates = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [-1.0, 1.0], [2.0, -2.0], [-2.0, 2.0]])
    strategy = AvoidFailures(RandomSampling(), radius=0.05)
    for seed in range(10):
        picked = strategy.select(None, candidates, 3, key=jax.random.key(seed), failed=np.zeros((1, 2))).indices
        assert not {0, 1} & set(picked.tolist())
    picked = strategy.select(None, candidates, 5, key=jax.random.key(0), failed=np.zeros((1, 2))).indices
    assert len(set(picked.tolist())) == 5  # too few far away: the nearest are let back in
    assert len(strategy.select(None, candidates, 2, key=jax.random.key(0))) == 2
    with pytest.raises(ValueError, match="radius"):
        AvoidFailures(RandomSampling(), radius=0)


if __name__ == "__main__":
    driver(*sys.argv[1:3])


def test_idle_workers_continue_the_design_until_the_first_fit_and_no_further(tmp_path):
    oracle = SlowOracle(make_oracle(), 0.02)
    with ThreadPoolExecutor(max_workers=4) as pool:
        data = make_async(oracle, executor=pool, in_flight=4, n_initial=8, budget=40).run(tmp_path / "on.zarr")
    design = data["round_of"].values == 0
    # The first fit (compilation included) takes far longer than a run: workers went on
    # with the Sobol sequence, up to as many points again as the initial design.
    assert 8 < design.sum() <= 16
    expected = oracle.space.draw(16, seed=0, method="sobol")
    extra = {_bytes(row) for row in data["x"].values[design]}
    assert extra <= {_bytes(row) for row in expected}
    assert data.sizes["sample"] == 40 and len({_bytes(r) for r in data["x"].values}) == 40

    with ThreadPoolExecutor(max_workers=4) as pool:
        off = make_async(oracle, executor=pool, in_flight=4, n_initial=8, budget=40,
                         design_until_fitted=False).run(tmp_path / "off.zarr")
    assert (off["round_of"].values == 0).sum() == 8

    with ThreadPoolExecutor(max_workers=2) as pool:  # max_lag (twice in_flight) is fewer than n_initial
        few = make_async(oracle, committee=SlowFit(make_committee(), 0.5), executor=pool, in_flight=2, n_initial=8,
                         budget=40).run(tmp_path / "few.zarr")
    assert 8 < (few["round_of"].values == 0).sum() <= 8 + 4

"""A sweep with a failed job runs the others, names each failed one in a line, and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import xarray as xr
from hydra.types import RunMode
from omegaconf import OmegaConf

from experiments.run import FAILED_JOBS_ENV, FailedJobs, fail

REPO = Path(__file__).resolve().parents[1]


def job(num: int, *overrides: str, mode=RunMode.MULTIRUN):
    return SimpleNamespace(mode=mode, job=SimpleNamespace(num=num), overrides=SimpleNamespace(task=list(overrides)))


def test_failed_jobs_are_noted_and_reported_once_the_sweep_ends(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(FAILED_JOBS_ENV, raising=False)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "multirun")}}})
    watcher = FailedJobs()
    watcher.on_multirun_start(config)
    fail(job(3, "budget=0", "seed=1"), "budget must be an integer >= 1, got 0")  # returns: the others go on
    fail(job(1, "+nonsense=1"), "+nonsense=1: 'nonsense' is not a top-level key of this config")
    with pytest.raises(SystemExit) as exited:
        watcher.on_multirun_end(config)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "alframe: error: job 1 (+nonsense=1): +nonsense=1: 'nonsense' is not a top-level key of this config",
        "alframe: error: job 3 (budget=0 seed=1): budget must be an integer >= 1, got 0"]
    assert FAILED_JOBS_ENV not in os.environ
    assert [p.name for p in (tmp_path / "multirun").iterdir()] == []  # its notes are cleared away


def test_a_sweep_without_failures_ends_with_the_command_that_judges_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(FAILED_JOBS_ENV, raising=False)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    FailedJobs().on_multirun_start(config)
    FailedJobs().on_multirun_end(config)
    assert capsys.readouterr().err == f"alframe: sweep done; its verdict: python -m experiments.compare {tmp_path}\n"


def test_a_single_run_exits_at_once(monkeypatch, capsys):
    monkeypatch.delenv(FAILED_JOBS_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        fail(job(0, "budget=0", mode=RunMode.RUN), "budget must be an integer >= 1, got 0")
    assert exited.value.code == 2
    assert capsys.readouterr().err == "alframe: error: budget must be an integer >= 1, got 0\n"


@pytest.mark.slow
def test_a_joblib_sweep_with_a_bad_job_runs_the_good_one_and_exits_2(tmp_path):
    overrides = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "learner=extra_trees_regression",
                 "learner.estimator.n_estimators=10", "budget=20,0", "batch_size=10", "n_initial=10", "test_size=50",
                 "candidates.size=100", "progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    done = subprocess.run([sys.executable, "-m", "experiments.run", *overrides], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "alframe: error: job 1 (learner=extra_trees_regression learner.estimator.n_estimators=10 budget=0 "
        "batch_size=10 n_initial=10 test_size=50 candidates.size=100 progress=False): "  # as the sweeper writes it
        "budget must be an integer >= 1, got 0"]
    stores = list((tmp_path / "sweep").rglob("run.zarr"))
    assert len(stores) == 1 and xr.open_zarr(stores[0]).attrs["stop_reason"] == "budget spent"

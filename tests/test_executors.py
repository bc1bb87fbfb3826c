"""Executors: sequential, spawned workers with timeouts and recovery, dask, submitit."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import wait

import numpy as np
import pytest

from alframe.executors import (
    ProcessWorkers,
    RemoteError,
    SequentialExecutor,
    TaskTimeout,
    WorkerLost,
    submitit_executor,
)


def square(x):
    return x * x


def fail(x):
    raise ValueError(f"bad input {x}")


def hang(seconds):
    time.sleep(seconds)
    return seconds


def die(_):
    os.kill(os.getpid(), signal.SIGKILL)


def pid(_):
    return os.getpid()


def test_sequential_executor_runs_at_once_and_keeps_exceptions():
    ex = SequentialExecutor()
    assert ex.submit(square, 4).result() == 16
    future = ex.submit(fail, 1)
    assert isinstance(future.exception(), ValueError)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)


@pytest.fixture(scope="module")
def workers():
    ex = ProcessWorkers(2, timeout_s=3.0)
    yield ex
    ex.shutdown()


def test_process_workers_return_results_in_parallel(workers):
    futures = [workers.submit(square, i) for i in range(6)]
    assert [f.result(timeout=60) for f in futures] == [i * i for i in range(6)]
    start = time.perf_counter()
    futures = [workers.submit(hang, 1.0) for _ in range(2)]
    wait(futures, timeout=30)
    assert time.perf_counter() - start < 1.9  # two workers, two one-second tasks


def test_a_raising_task_fails_alone_with_its_message(workers):
    bad, good = workers.submit(fail, 7), workers.submit(square, 3)
    with pytest.raises(RemoteError, match="ValueError: bad input 7") as info:
        bad.result(timeout=60)
    assert "fail" in info.value.remote_traceback
    assert good.result(timeout=60) == 9


def test_a_hung_task_is_killed_at_its_timeout_and_the_pool_goes_on(workers):
    start = time.perf_counter()
    hung = workers.submit(hang, 60)
    with pytest.raises(TaskTimeout, match="3 s limit"):
        hung.result(timeout=60)
    assert time.perf_counter() - start < 20
    assert workers.submit(square, 5).result(timeout=60) == 25


def test_a_killed_worker_fails_its_task_and_is_replaced(workers):
    before = {workers.submit(pid, 0).result(timeout=60) for _ in range(4)}
    with pytest.raises(WorkerLost, match="exit code -9"):
        workers.submit(die, 0).result(timeout=60)
    assert [workers.submit(square, i).result(timeout=60) for i in range(3)] == [0, 1, 4]
    after = {workers.submit(pid, 0).result(timeout=60) for _ in range(4)}
    assert len(after) >= 1 and after != before


def test_process_workers_refuse_fork_and_bad_sizes():
    with pytest.raises(ValueError, match="fork"):
        ProcessWorkers(1, start_method="fork")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        ProcessWorkers(0)
    with pytest.raises(ValueError, match="timeout_s"):
        ProcessWorkers(1, timeout_s=0)


def test_dask_local_cluster_runs_tasks():
    pytest.importorskip("dask.distributed", reason="dask extra not installed")
    from alframe.executors import dask_executor

    ex = dask_executor(2)
    try:
        assert [f.result(timeout=120) for f in [ex.submit(square, i) for i in range(4)]] == [0, 1, 4, 9]
        with pytest.raises(ValueError, match="bad input 2"):
            ex.submit(fail, 2).result(timeout=120)
    finally:
        ex.shutdown()


def test_dask_jobqueue_slurm_job_script_runs_a_worker():
    jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue not installed")
    cluster = jobqueue.SLURMCluster(cores=4, memory="8GB", processes=1, queue="cpu", walltime="02:00:00",
                                    account="astro", job_extra_directives=["--constraint=avx2"],
                                    scheduler_options={"dashboard_address": None})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p cpu", "#SBATCH -A astro", "#SBATCH -t 02:00:00", "#SBATCH --constraint=avx2",
                 "distributed.cli.dask_worker"):
        assert line in script


def test_submitit_local_jobs_and_failures(tmp_path):
    pytest.importorskip("submitit", reason="submitit not installed")
    ex = submitit_executor(tmp_path / "jobs", cluster="local", workers=2, poll_s=0.1, timeout_min=5)
    try:
        assert ex.submit(square, 6).result(timeout=120) == 36
        with pytest.raises(Exception, match="bad input 3"):
            ex.submit(fail, 3).result(timeout=120)
    finally:
        ex.shutdown()


def exits_right_of_one(x):
    """sin(x0) + x1^2, except that the process dies outright where x0 > 1.5 (no exception, no message)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if np.any(x[..., 0] > 1.5):
        os._exit(3)
    return np.sin(x[..., 0]) + x[..., 1] ** 2


def test_the_test_set_runs_on_the_loops_executor_and_survives_dying_runs(tmp_path):
    from alframe.oracle import FunctionOracle, OutputSpec
    from tests.conftest import make_box, make_loop

    oracle = FunctionOracle(fn=exits_right_of_one, space=make_box(), outputs=OutputSpec(names=("y",)),
                            vectorized=False)
    with ProcessWorkers(2, timeout_s=20.0) as executor:
        ds = make_loop(oracle=oracle, executor=executor, test_size=16, budget=12, n_initial=6,
                       batch_size=6).run(tmp_path / "run.zarr")
    x_test = ds["x_test"].values
    assert 0 < len(x_test) < 16 and np.all(x_test[:, 0] <= 1.5)  # the dead runs are left out
    assert ds.attrs["stop_reason"] == "budget spent"
    failed = ~ds["ok"].values
    assert np.all(ds["x"].values[failed, 0] > 1.5) and all("Worker" in e for e in ds["error"].values[failed])

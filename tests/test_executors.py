"""Executors: sequential, spawned workers with timeouts and recovery, dask, submitit."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import wait

import numpy as np
import pytest
import xarray as xr

from alframe import executors
from alframe.executors import (
    ProcessWorkers,
    RemoteError,
    SequentialExecutor,
    TaskTimeout,
    WorkerLost,
    WorkersCannotStart,
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


# -- workers that cannot start -------------------------------------------------------------


def refuse_when_present(marker):
    """A worker initializer that fails once `marker` exists (a node whose environment broke)."""
    if os.path.exists(marker):
        raise RuntimeError(f"no licence server ({marker})")


def fail_the_first_time(marker):
    """A worker initializer that fails for the first worker only."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("a flaky start")


def test_workers_that_cannot_start_fail_every_waiting_task_with_the_cause():
    start = time.perf_counter()
    with ProcessWorkers(2, initializer=os.chdir, initargs=("/no/such/dir",)) as executor:
        futures = [executor.submit(square, i) for i in range(3)]
        for future in futures:
            with pytest.raises(WorkersCannotStart) as caught:
                future.result(timeout=60)
        message = str(caught.value)
        assert "ProcessWorkers (spawn start method): 3 worker processes in a row died while starting" in message
        assert "FileNotFoundError: [Errno 2] No such file or directory: '/no/such/dir'" in message
        assert "no run is recorded as failed" in message and "\n" not in message
        with pytest.raises(WorkersCannotStart):
            executor.submit(square, 1).result(timeout=60)  # and every later task
    assert time.perf_counter() - start < 30
    # Not an Exception: handlers of a simulation's errors (which record failed runs) let it through.
    assert not issubclass(WorkersCannotStart, Exception)


def test_a_worker_that_fails_to_start_once_hands_its_task_to_another(tmp_path):
    with ProcessWorkers(1, initializer=fail_the_first_time, initargs=(str(tmp_path / "tried"),)) as executor:
        assert [executor.submit(square, i).result(timeout=60) for i in range(3)] == [0, 1, 4]


def test_no_worker_is_started_once_the_interpreter_exits(monkeypatch):
    executor = ProcessWorkers(1)
    assert executor.submit(square, 2).result(timeout=60) == 4
    exiting = threading.Event()
    exiting.set()
    monkeypatch.setattr(executors, "_EXITING", exiting)
    before = {p.pid for p in multiprocessing.active_children()}
    dead = executor._pool[0].process
    dead.kill()
    executor._thread.join(timeout=30)
    dead.join(timeout=10)
    assert not executor._thread.is_alive() and executor._pool[0].process is dead  # not replaced
    assert {p.pid for p in multiprocessing.active_children()} <= before - {dead.pid}


def test_a_worker_whose_parent_has_gone_ends_quietly():
    for parent_gone_after in ("start", "ready"):
        ours, theirs = multiprocessing.Pipe()
        if parent_gone_after == "ready":
            ours.send(None)  # the parent's stop message; its pipe then closes
        ours.close()
        executors._worker_main(theirs)  # returns: no EOFError or BrokenPipeError traceback
        theirs.close()


def loses_its_node_at_215_runs(x, counter, marker):
    """sin(x0) + x1^2, until the 215th run overall: that run takes its worker's node down (the
    worker dies, and no worker can start on it since: `refuse_when_present(marker)`)."""
    import numpy as np

    with open(counter, "ab") as f:
        f.write(b".")
    if os.path.getsize(counter) >= 215:
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    x = np.asarray(x, dtype=np.float64)
    return np.sin(x[..., 0]) + x[..., 1] ** 2


def test_a_run_whose_workers_cannot_start_stops_records_no_failure_and_resumes(tmp_path):
    from alframe.oracle import FunctionOracle, OutputSpec
    from alframe.store import read_run
    from tests.conftest import make_box, make_loop, without_timing

    counter, marker = str(tmp_path / "runs"), str(tmp_path / "node-down")
    oracle = FunctionOracle(fn=functools.partial(loses_its_node_at_215_runs, counter=counter, marker=marker),
                            space=make_box(), outputs=OutputSpec(names=("y",)), vectorized=False)
    path = tmp_path / "run" / "run.zarr"
    start = time.perf_counter()
    with ProcessWorkers(1, initializer=refuse_when_present, initargs=(marker,)) as executor:
        with pytest.raises(WorkersCannotStart, match="RuntimeError: no licence server"):
            make_loop(oracle=oracle, executor=executor).run(path)  # 200 test runs, the design, 5 of round 1
    assert time.perf_counter() - start < 60
    stopped = read_run(path)
    assert stopped.sizes["sample"] == 10 and bool(stopped["ok"].values.all())  # the design; nothing failed
    finished = make_loop().run(path)  # the same loop on a working executor
    assert finished.sizes["sample"] == 40 and bool(finished["ok"].values.all())
    xr.testing.assert_identical(without_timing(finished),
                                without_timing(make_loop().run(tmp_path / "whole" / "run.zarr")))


def test_tasks_that_cannot_be_pickled_fail_each_and_the_pool_goes_on():
    """More unpicklable tasks than workers: every one fails with the reason, none is left waiting."""
    ex = ProcessWorkers(2, timeout_s=30.0)
    try:
        busy = [ex.submit(hang, 1.0) for _ in range(2)]  # the rest queue behind these, with no wakeup to come
        futures = [ex.submit(lambda x: x, i) for i in range(6)]
        assert [f.result(timeout=60) for f in busy] == [1.0, 1.0]
        for future in futures:
            with pytest.raises(RemoteError, match="could not be sent to a worker: .*pickle"):
                future.result(timeout=60)
        assert ex.submit(square, 4).result(timeout=60) == 16
    finally:
        ex.shutdown()


def lambda_oracle():
    from alframe.oracle import FunctionOracle, OutputSpec
    from alframe.space import Box
    return FunctionOracle(lambda x: x[:, :1], Box(("a",), (0.0,), (1.0,)), OutputSpec(("y",)))


def test_a_simulator_process_workers_cannot_receive_is_refused_in_one_line():
    from omegaconf import OmegaConf

    from experiments.cli import compose_config
    from experiments.run import ConfigError, build_loop
    cfg = compose_config(["executor=process", "executor.workers=1", "learner=gp"])
    OmegaConf.update(cfg, "simulator", {"_target_": f"{__name__}.lambda_oracle"}, merge=False)
    with pytest.raises(ConfigError) as refused:
        build_loop(cfg, strategy_name="qbc")
    message = str(refused.value)
    assert f"simulator '{__name__}.lambda_oracle' cannot be sent to the worker processes" in message
    assert "pickle" in message and "module level" in message and "\n" not in message
    assert executors.unsendable(SequentialExecutor(), lambda_oracle()) is None

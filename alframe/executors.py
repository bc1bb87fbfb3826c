"""Executors that run simulations: anything with `concurrent.futures.Executor`'s `submit`.

The loop takes any executor; this module builds the usual ones and adds what the standard
library lacks for long simulations:

- `SequentialExecutor`: runs each task in the calling thread (the default; no processes).
- `ProcessWorkers`: a pool of spawn-context worker processes that kills a task running past
  its timeout and survives a worker that dies (`WorkerLost`); both leave the pool usable,
  where a `ProcessPoolExecutor` is broken for good by one lost worker and cannot stop a hung
  task at all.
- `process_executor`, `dask_executor`, `SubmititExecutor`: a stdlib process pool, a dask
  cluster (local or from `dask-jobqueue`) and submitit (local processes or SLURM jobs).

Forked workers hang once JAX has started threads in the parent, so every process here is
spawned.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any


class WorkerLost(RuntimeError):
    """The process running a task died before returning (killed, out of memory, segfault)."""


class TaskTimeout(TimeoutError):
    """A task ran past its time limit and its worker was killed."""


class WorkersCannotStart(BaseException):
    """Worker processes die while starting, before running anything: this environment cannot
    run the executor. Not a failed simulation: derived from BaseException (as KeyboardInterrupt
    is) so that no handler of a simulation's errors records it as a failed run. It stops the
    run, and the queries it met are run again when the run resumes."""


class RemoteError(RuntimeError):
    """A task raised in a worker: the message is the exception's own line, and
    `remote_traceback` the worker's traceback text."""

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


class SequentialExecutor(Executor):
    """Runs every task at once, in the calling thread; futures come back already done."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if self._shutdown:
            raise RuntimeError("cannot submit to a SequentialExecutor after shutdown")
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)  # (Ctrl-C and SystemExit stop the caller, as they should)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def _send(conn: Connection, message: tuple) -> bool:
    """Send `message` to the parent; False when it has gone (it exited while this worker started)."""
    try:
        conn.send(message)
        return True
    except OSError:
        return False


def _worker_main(conn: Connection, initializer: Callable | None = None, initargs: tuple = ()) -> None:
    """Worker loop: run `initializer(*initargs)`, then reply (None, "ready", None), or
    (None, "start failed", reason) and end; then receive (task id, fn, args, kwargs); reply
    (task id, "started", None) once the task is unpickled (its modules imported), then
    (task id, "ok" | "error", value)."""
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the pool
        _send(conn, (None, "start failed", _one_line(exc)))
        return
    if not _send(conn, (None, "ready", None)):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent has gone
            return
        if message is None:
            return
        task_id, fn, args, kwargs = message
        if not _send(conn, (task_id, "started", None)):
            return
        try:
            reply = (task_id, "ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, worker goes on
            reply = (task_id, "error", (_one_line(exc), traceback.format_exc(limit=-3)))
        try:
            conn.send(reply)
        except OSError:
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
            if not _send(conn, (task_id, "error", (f"result could not be sent back: {exc!r}", ""))):
                return


# Worker starts are stopped once the interpreter exits: a worker started then would find its
# parent gone halfway through handing it its start-up data (and print a traceback about it).
_STARTING = threading.Lock()
_EXITING = threading.Event()


def _stop_starting() -> None:
    with _STARTING:  # a start under way completes first
        _EXITING.set()


atexit.register(_stop_starting)


@contextlib.contextmanager
def _known_start_method() -> Iterator[None]:
    """A spawned child first sets up its parent's global start method; one the child does not
    know ('loky', inside a joblib worker such as Hydra's joblib launcher runs jobs in) kills it
    before it runs anything. While children start, the global method is a standard one."""
    current = multiprocessing.get_start_method(allow_none=True)
    if current is None or current in multiprocessing.get_all_start_methods():
        yield
        return
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(current, force=True)


class _Worker:
    def __init__(self, context, initializer: Callable | None, initargs: tuple) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, initializer, initargs), daemon=True)
        with _STARTING, _known_start_method():
            if _EXITING.is_set():
                raise _Exiting
            self.process.start()
        child.close()
        self.ready = False  # it has started (its initializer ran): it can run tasks
        self.start_error = ""  # why it could not start, when it said so
        self.task: tuple[int, Future, float | None] | None = None  # (id, future, deadline)
        self.item: tuple | None = None  # the task as queued, to queue again should it never start

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class _Exiting(Exception):
    """The interpreter is exiting: no worker is started any more."""


class ProcessWorkers(Executor):
    """`workers` spawned processes running one task each at a time, with per-task timeouts.

    A task that runs past `timeout_s` fails with `TaskTimeout` and its worker is killed and
    replaced; a worker that dies fails its task with `WorkerLost` and is replaced. A task that
    raises fails with `RemoteError` holding the worker's traceback. Functions and arguments
    must be picklable (module-level functions, dataclasses, partials of them).

    A worker that dies while starting (before its `initializer` has run and it has said it is
    ready) runs no simulation: its task is given to another. When `START_ATTEMPTS` starts in a
    row fail so, the environment cannot run these workers: every task not yet running fails
    with `WorkersCannotStart` naming the cause, as does every later submission.

    Args:
        workers: number of worker processes.
        timeout_s: wall-clock limit per task, from the moment a worker starts it; None for none.
        start_method: "spawn" (default) or "forkserver"; never "fork" once JAX is running.
        initializer, initargs: `initializer(*initargs)` runs in each worker as it starts
            (picklable, as tasks are).
    """

    START_ATTEMPTS = 3

    def __init__(self, workers: int = 2, *, timeout_s: float | None = None, start_method: str = "spawn",
                 initializer: Callable | None = None, initargs: tuple = ()) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s}")
        if start_method == "fork":
            raise ValueError("start_method 'fork' hangs once JAX has started; use 'spawn' or 'forkserver'")
        self.workers = workers
        self.timeout_s = timeout_s
        self.start_method = start_method
        self._context = multiprocessing.get_context(start_method)
        self._initializer, self._initargs = initializer, tuple(initargs)
        self._queue: deque[tuple[int, Future, Callable, tuple, dict]] = deque()
        self._again: deque[tuple[int, Future, Callable, tuple, dict]] = deque()  # running, never started
        self._lock = threading.Lock()
        self._wakeup_r, self._wakeup_w = self._context.Pipe(duplex=False)
        self._ids = itertools.count()
        self._shutdown = False
        self._failed_starts = 0
        self._broken: WorkersCannotStart | None = None
        self._pool = [self._new_worker() for _ in range(workers)]
        self._thread = threading.Thread(target=self._dispatch, name="alframe-workers", daemon=True)
        self._thread.start()

    # -- Executor -------------------------------------------------------------------------

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to ProcessWorkers after shutdown")
            if self._broken is not None:
                future.set_exception(self._broken)
                return future
            self._queue.append((next(self._ids), future, fn, args, kwargs))
        self._wakeup_w.send(None)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[1].cancel()
        self._wakeup_w.send(None)
        if wait:
            self._thread.join()

    @property
    def busy(self) -> int:
        """Workers running a task now."""
        return sum(w.task is not None for w in self._pool)

    # -- dispatcher thread --------------------------------------------------------------

    def _start_tasks(self) -> None:
        for worker in self._pool:
            while worker.task is None and worker in self._pool and self._start_one(worker):
                pass  # a task that could not be sent leaves the worker free for the next

    def _start_one(self, worker: _Worker) -> bool:
        """Give `worker` the next task; False when none is waiting."""
        with self._lock:
            item = self._again.popleft() if self._again else None
            while self._queue and item is None:
                candidate = self._queue.popleft()
                if candidate[1].set_running_or_notify_cancel():
                    item = candidate
        if item is None:
            return False
        task_id, future, fn, args, kwargs = item
        worker.task = (task_id, future, None)  # the clock starts when the worker has unpickled it
        worker.item = item
        try:
            worker.conn.send((task_id, fn, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - unpicklable task, or the worker just died
            worker.task = worker.item = None
            future.set_exception(RemoteError(f"task could not be sent to a worker: {exc!r}"))
            if not worker.process.is_alive():
                self._replace(worker)
        return True

    def _new_worker(self) -> _Worker:
        return _Worker(self._context, self._initializer, self._initargs)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        if self._broken is None:
            self._pool[self._pool.index(worker)] = self._new_worker()
        else:
            self._pool.remove(worker)

    def _start_failed(self, worker: _Worker) -> None:
        """A worker died before it was ready: its task goes to another; after `START_ATTEMPTS`
        such deaths in a row, every task not yet running fails with `WorkersCannotStart`."""
        self._failed_starts += 1
        cause = worker.start_error or f"exit code {worker.process.exitcode}"
        with self._lock:
            if worker.item is not None:
                self._again.appendleft(worker.item)
            worker.task = worker.item = None
            if self._broken is None and self._failed_starts >= self.START_ATTEMPTS:
                self._broken = WorkersCannotStart(
                    f"executor ProcessWorkers ({self.start_method} start method): {self._failed_starts} worker "
                    f"processes in a row died while starting, before running any simulation ({cause}); no run is "
                    "recorded as failed: fix what stops them (or choose another executor) and the same command "
                    "resumes")
            doomed = []
            if self._broken is not None:
                doomed = [item[1] for item in (*self._again, *self._queue)]
                self._again.clear()
                self._queue.clear()
        for future in doomed:
            if future.running() or future.set_running_or_notify_cancel():
                future.set_exception(self._broken)
        self._replace(worker)

    def _dispatch(self) -> None:
        try:
            self._dispatch_until_shut_down()
        except _Exiting:
            return  # the interpreter is exiting: its workers are ended with it

    def _dispatch_until_shut_down(self) -> None:
        while True:
            with self._lock:
                stopping = ((self._shutdown or self._broken is not None) and not self._queue and not self._again
                            and all(w.task is None for w in self._pool))
            if stopping:
                break
            if _EXITING.is_set():
                raise _Exiting
            self._start_tasks()
            deadlines = [w.task[2] for w in self._pool if w.task is not None and w.task[2] is not None]
            wait_s = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
            ready = wait([self._wakeup_r] + [w.conn for w in self._pool] + [w.process.sentinel for w in self._pool],
                         timeout=wait_s)
            if self._wakeup_r in ready:
                while self._wakeup_r.poll():
                    self._wakeup_r.recv()
            now = time.monotonic()
            for worker in list(self._pool):
                self._collect(worker, ready, now)
        for worker in self._pool:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(timeout=2)
            worker.kill()

    def _collect(self, worker: _Worker, ready: list, now: float) -> None:
        while worker.conn in ready and worker.conn.poll():
            try:
                task_id, kind, value = worker.conn.recv()
            except (EOFError, OSError):
                break  # died while sending; the sentinel branch below reports it
            if kind == "ready":
                worker.ready, self._failed_starts = True, 0
                continue
            if kind == "start failed":
                worker.start_error = value
                continue
            if worker.task is None or worker.task[0] != task_id:
                continue
            future = worker.task[1]
            if kind == "started":
                deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
                worker.task = (task_id, future, deadline)
                continue
            worker.task = worker.item = None
            if kind == "ok":
                future.set_result(value)
            else:
                future.set_exception(RemoteError(*value))
            return
        # One look at the process: a worker that ends between two looks (having just said why it
        # could not start) must not be taken for one that died running a task.
        alive = worker.process.is_alive()
        if not worker.ready and not alive:
            self._start_failed(worker)
            return
        if worker.task is None:
            if not alive:
                self._replace(worker)
            return
        task_id, future, deadline = worker.task
        if not alive:
            code = worker.process.exitcode
            worker.task = worker.item = None
            future.set_exception(WorkerLost(f"worker process {worker.process.pid} died (exit code {code})"))
            self._replace(worker)
        elif deadline is not None and now >= deadline:
            worker.task = worker.item = None
            future.set_exception(TaskTimeout(f"ran past its {self.timeout_s:g} s limit; worker killed"))
            self._replace(worker)


def unsendable(executor: Executor, oracle: Any) -> str | None:
    """Why `executor` could not send `oracle` to its worker processes, or None. Process pools
    pickle every task; dask and submitit use cloudpickle, which also takes lambdas and local
    functions, and the sequential executor sends nothing."""
    if not isinstance(executor, ProcessWorkers | ProcessPoolExecutor):
        return None
    try:
        pickle.dumps(oracle)
    except Exception as exc:  # noqa: BLE001 - pickling raises many kinds
        return _one_line(exc)
    return None


def sequential_executor() -> SequentialExecutor:
    """The default: no parallelism, tasks run in the calling thread."""
    return SequentialExecutor()


def process_executor(workers: int = 2, *, timeout_s: float | None = None, initializer: Callable | None = None,
                     initargs: tuple = ()) -> ProcessWorkers:
    """Spawned worker processes with per-task timeouts (see `ProcessWorkers`)."""
    return ProcessWorkers(workers, timeout_s=timeout_s, initializer=initializer, initargs=tuple(initargs))


def stdlib_process_executor(workers: int = 2) -> ProcessPoolExecutor:
    """The standard library's process pool, spawn context (no per-task timeout or recovery)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def dask_executor(workers: int = 2, *, address: str | None = None, cluster: Any = None) -> Executor:
    """A dask `Client.get_executor()`: a new `LocalCluster` of `workers` single-threaded
    processes, the scheduler at `address`, or a ready `cluster` (e.g. a `dask_jobqueue.SLURMCluster`).
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("executor 'dask' needs dask.distributed: pip install 'alframe[dask]'") from exc
    if address is not None:
        client = Client(address)
    else:
        if cluster is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
    return client.get_executor()


class SubmititExecutor(Executor):
    """Each task becomes a submitit job: a local process (`cluster="local"`) or a SLURM job.

    Args:
        folder: where submitit keeps job scripts, logs and pickled results.
        cluster: "local", "slurm" or None (SLURM if `sbatch` exists).
        workers: the most jobs in flight at once (the rest wait here, not in the queue).
        poll_s: how often job states are checked.
        parameters: passed to `AutoExecutor.update_parameters`, e.g. timeout_min=60,
            slurm_partition="cpu", cpus_per_task=4.
    """

    def __init__(self, folder: str | Path = "submitit", *, cluster: str | None = "local", workers: int = 2,
                 poll_s: float = 0.5, **parameters: Any) -> None:
        try:
            import submitit
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError("executor 'submitit' needs submitit: pip install 'alframe[slurm]'") from exc
        self._executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        if parameters:
            self._executor.update_parameters(**parameters)
        self.workers = workers
        self.poll_s = poll_s
        self._waiting: deque[tuple[Future, Callable, tuple, dict]] = deque()
        self._running: list[tuple[Future, Any]] = []
        self._lock = threading.Lock()
        self._shutdown = False
        self._thread = threading.Thread(target=self._poll, name="alframe-submitit", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to SubmititExecutor after shutdown")
            self._waiting.append((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
        if wait:
            self._thread.join()

    def _poll(self) -> None:
        while True:
            with self._lock:
                while self._waiting and len(self._running) < self.workers:
                    future, fn, args, kwargs = self._waiting.popleft()
                    if future.set_running_or_notify_cancel():
                        try:
                            self._running.append((future, self._executor.submit(fn, *args, **kwargs)))
                        except Exception as exc:  # noqa: BLE001 - e.g. sbatch refused the job
                            future.set_exception(exc)
                running = list(self._running)
                done_all = self._shutdown and not self._waiting and not running
            if done_all:
                return
            for future, job in running:
                if future.cancelled():
                    job.cancel(check=False)
                elif job.done():
                    try:
                        future.set_result(job.result())
                    except Exception as exc:  # noqa: BLE001 - the job's failure, passed on
                        future.set_exception(exc)
                else:
                    continue
                with self._lock:
                    self._running.remove((future, job))
            time.sleep(self.poll_s)


def submitit_executor(folder: str | Path = "submitit", *, cluster: str | None = "local", workers: int = 2,
                      poll_s: float = 0.5, **parameters: Any) -> SubmititExecutor:
    """A `SubmititExecutor`; see its docstring for the arguments."""
    return SubmititExecutor(folder, cluster=cluster, workers=workers, poll_s=poll_s, **parameters)


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

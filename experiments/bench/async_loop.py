"""The asynchronous loop against the batch-synchronous one, on the 1-D potential.

    python -m experiments.bench.async_loop utilisation [--workers 8] [--sleep 0.5] [--budget 240] [--refit-every 8] [--n-initial 20]
    python -m experiments.bench.async_loop efficiency [--seeds 4] [--budget 500] [--in-flight 8]
    python -m experiments.bench.async_loop store [--appends 100]

utilisation: every run sleeps `--sleep` seconds (a stand-in for a long simulation) on
`--workers` spawned workers. Worker utilisation = time spent in simulations / (workers x wall
time), for the asynchronous loop (W = workers in flight, a background refit after every
`--refit-every` results) and the batch-synchronous loop (batches of `workers`, each waiting
for its slowest run and for the fit). Also reported: the steady state (the time-averaged
number of runs in flight, from the first committee-chosen submission to the last result:
without the initial design and the first fit, which nothing can overlap) and how long a
finished run's worker waits for the next submission.

efficiency: committee-chosen runs with W in flight against W = 1, both refitting after every
result, on a deterministic executor that returns results first in, first out with W - 1 runs
always pending (what W equally long simulations do). Reports the simulations each needs to
reach a set of test MSEs.

store: milliseconds per run-store append (one run; one round's metrics).

Each writes JSON (utilisation and efficiency also a plot) under results/bench/async_loop/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from alframe.asynchronous import AsyncActiveLearningLoop  # noqa: E402
from alframe.dispatch import evaluate  # noqa: E402
from alframe.executors import ProcessWorkers  # noqa: E402
from alframe.learners import MLPCommittee  # noqa: E402
from alframe.loop import ActiveLearningLoop, Candidates, draw_test_set  # noqa: E402
from alframe.metrics import simulations_to_reach  # noqa: E402
from alframe.oracle import Outcome  # noqa: E402
from alframe.store import RunStore, read_run  # noqa: E402
from alframe.strategies import QueryByCommittee, Spread  # noqa: E402
from simulators.potential1d import make_oracle  # noqa: E402

OUT = Path("results/bench")


@dataclass(frozen=True)
class Sleeping:
    """An oracle that takes `seconds` per run before answering; picklable for workers."""

    inner: object
    seconds: float

    @property
    def space(self):
        return self.inner.space

    @property
    def outputs(self):
        return self.inner.outputs

    def run(self, queries):
        time.sleep(self.seconds * len(queries))
        out = self.inner.run(queries)
        return Outcome(out.y, out.ok, out.error, out.cost_s + self.seconds)


class FirstInFirstOut(Executor):
    """Runs each task at once but holds its result until `pending` later tasks were submitted:
    the completion order of `pending + 1` equally long simulations, without the waiting.
    When submissions stop, held results are released one by one, oldest first."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self._held: deque[tuple[Future, object]] = deque()
        self._lock = threading.Lock()
        self._last_submit = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        result = fn(*args, **kwargs)
        with self._lock:
            self._held.append((future, result))
            self._last_submit = time.monotonic()
            while len(self._held) > self.pending:
                done, value = self._held.popleft()
                done.set_result(value)
        return future

    def _drain(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                idle = time.monotonic() - self._last_submit > 1.0
                if idle and self._held:
                    done, value = self._held.popleft()
                    done.set_result(value)
                    self._last_submit = time.monotonic()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._stop.set()


class Timeline(Executor):
    """Delegates to `inner`, logging when each task was submitted and when it finished."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.events: list[tuple[float, int]] = []  # (time, +1 submitted / -1 finished)
        self._lock = threading.Lock()

    def _log(self, change: int) -> None:
        with self._lock:
            self.events.append((time.perf_counter(), change))

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._log(+1)
        future = self.inner.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: self._log(-1))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)

    def response_s(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """For each task that finished between `start` and `end` and was followed by another
        submission: when it finished (seconds after `start`) and how long until that submission."""
        events = sorted(self.events)
        submits = np.array([t for t, change in events if change > 0])
        finishes = np.array([t for t, change in events if change < 0 and start <= t <= end])
        following = np.searchsorted(submits, finishes)
        has_next = following < len(submits)
        return finishes[has_next] - start, submits[following[has_next]] - finishes[has_next]

    def mean_in_flight(self, start: float, end: float) -> float:
        """Time-averaged number of tasks in flight between `start` and `end`."""
        area, running, last = 0.0, 0, start
        for t, change in sorted(self.events):
            t = min(max(t, start), end)
            area += running * (t - last)
            running, last = running + change, t
        return area / (end - start)


def _committee(budget: int, **overrides) -> MLPCommittee:
    settings = dict(capacity=budget, steps_first=10000, final_learning_rate=1e-5, warm_learning_rate=1e-3)
    settings.update(overrides)
    return MLPCommittee(**settings)


def utilisation(args) -> dict:
    oracle = make_oracle()
    x_test, y_test = draw_test_set(oracle, 2000, 20190101)
    slow = Sleeping(oracle, args.sleep)
    committee = _committee(args.budget, steps_warm=args.steps_warm)
    strategy = QueryByCommittee(batch=Spread())
    # Compile training, prediction and selection once, outside the timings.
    warm = committee.fit(x_test[:50], y_test[:50], key=jax.random.key(0))
    warm.predict_members(x_test[:1])
    strategy.select(warm, x_test, args.workers, key=jax.random.key(0), pending=x_test[:1])
    common = dict(oracle=slow, committee=committee, strategy=strategy, budget=args.budget, n_initial=args.n_initial,
                  test_set=(x_test, y_test), candidates=Candidates(2000), progress=True, seed=0)
    results = {}
    for mode in args.modes.split(","):
        workers = ProcessWorkers(args.workers)
        # Workers up and their simulator compiled before the clock starts.
        list(workers.map(evaluate, [oracle] * args.workers, list(np.zeros((args.workers, 3)))))
        executor = Timeline(workers)
        path = Path(args.out) / f"utilisation_{mode}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        if mode == "asynchronous":
            loop = AsyncActiveLearningLoop(executor=executor, in_flight=args.workers, refit_every=args.refit_every,
                                           label=mode, **common)
        else:
            loop = ActiveLearningLoop(executor=executor, batch_size=args.workers, label=mode, **common)
        start = time.perf_counter()
        data = loop.run(path)
        wall = time.perf_counter() - start
        executor.shutdown()
        busy = float(data["cost_s"].sum())
        # Steady state: from the first submission after the initial design to the last result,
        # leaving out the initial design, which no loop can overlap with anything.
        chosen_first = sorted(t for t, change in executor.events if change > 0)[args.n_initial]
        last = max(t for t, _ in executor.events)
        steady = executor.mean_in_flight(chosen_first, last) / args.workers
        finished_at, response = executor.response_s(chosen_first, last)
        # While workers are held: from the first submission to the last result (the loop's own
        # set-up before it and its last fit and store writes after it left out).
        first = min(t for t, _ in executor.events)
        span = executor.mean_in_flight(first, last) / args.workers
        results[mode] = {"wall_s": wall, "busy_s": busy, "utilisation": busy / (args.workers * wall),
                         "steady_state_utilisation": steady, "first_submission_to_last_result": span,
                         "response_ms": {"median": 1e3 * float(np.median(response)),
                                         "p90": 1e3 * float(np.percentile(response, 90)),
                                         "max": 1e3 * float(response.max())},
                         "stalls": [{"at_s": float(t), "response_ms": 1e3 * float(r)}
                                    for t, r in zip(finished_at, response) if r > 0.1],
                         "fits": int(data.sizes["round"]), "final_mse": float(data["mse"].values[-1]),
                         "mean_fit_s": float(data["fit_s"].mean())}
        print(f"{mode}: wall {wall:.1f} s, utilisation {results[mode]['utilisation']:.1%} "
              f"(first submission to last result {span:.1%}, steady state {steady:.1%}), result to next submission median "
              f"{results[mode]['response_ms']['median']:.0f} ms (90th percentile "
              f"{results[mode]['response_ms']['p90']:.0f} ms), "
              f"{results[mode]['fits']} fits, final MSE {results[mode]['final_mse']:.3g}", flush=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    modes = list(results)
    width = 0.38
    at = np.arange(len(modes))
    ax.bar(at - width / 2, [100 * results[m]["utilisation"] for m in modes], width, label="whole run")
    ax.bar(at + width / 2, [100 * results[m]["steady_state_utilisation"] for m in modes], width,
           label="steady state")
    ax.set_xticks(at, modes)
    ax.axhline(90, color="k", ls="--", lw=1, label="90 %")
    ax.set_ylabel("worker utilisation (%)")
    ax.set_title(f"{args.workers} workers, {args.sleep} s per simulation, budget {args.budget}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.out) / "async_utilisation.png", dpi=120)
    return results


def efficiency(args) -> dict:
    oracle = make_oracle()
    x_test, y_test = draw_test_set(oracle, 2000, 20190101)
    strategy = QueryByCommittee(batch=Spread())
    curves: dict[int, list] = {1: [], args.in_flight: []}
    for seed in range(args.seeds):
        for w in curves:
            path = Path(args.out) / f"efficiency_w{w}_seed{seed}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            executor = FirstInFirstOut(pending=w - 1)
            loop = AsyncActiveLearningLoop(
                oracle=oracle, committee=_committee(args.budget, steps_warm=args.steps_warm), strategy=strategy,
                executor=executor, in_flight=w, refit_every=1, fit_in_background=False, budget=args.budget,
                n_initial=20, test_set=(x_test, y_test), candidates=Candidates(2000), seed=seed,
                label=f"W={w} seed={seed}")
            data = loop.run(path)
            executor.shutdown()
            curves[w].append((data["n_labeled"].values, data["mse"].values))
    targets = [3e-2, 1e-2, 5e-3, 3e-3, 2e-3, 1e-3]
    table = []
    for target in targets:
        row = {"target_mse": target}
        for w, runs in curves.items():
            needed = [simulations_to_reach(n, m, target) for n, m in runs]
            reached = int(np.sum(~np.isnan(needed)))
            # A seed that never reached the target counts as budget + 1.
            needed = [args.budget + 1 if np.isnan(v) else v for v in needed]
            row[f"W={w}"] = {"median": float(np.median(needed)), "per_seed": [int(v) for v in needed],
                             "seeds_reached": reached}
        row["ratio"] = row[f"W={args.in_flight}"]["median"] / row["W=1"]["median"]
        table.append(row)
        print(f"MSE {target:g}: W=1 {row['W=1']['median']:.0f}, W={args.in_flight} "
              f"{row[f'W={args.in_flight}']['median']:.0f} sims (x{row['ratio']:.2f})", flush=True)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for w, color in zip(curves, ("tab:gray", "tab:blue")):
        for i, (n, m) in enumerate(curves[w]):
            ax.loglog(n, m, color=color, alpha=0.6, label=f"W = {w}" if i == 0 else None)
    ax.set_xlabel("simulations")
    ax.set_ylabel("test MSE")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.out) / "async_efficiency.png", dpi=120)
    return {"table": table}


def store_appends(args) -> dict:
    """Milliseconds per `RunStore.append_runs` (one run) and `append_round` (one round's
    metrics), on a store laid out as a loop leaves it: a 2,000-point test set, then runs and rounds."""
    path = Path(args.out) / "store_appends.zarr"
    shutil.rmtree(path, ignore_errors=True)
    store = RunStore.open(path, input_names=("x0", "v0", "t"), output_names=("x",), attrs={"config": {"bench": 1}})
    rng = np.random.default_rng(0)
    store.write_test_set(rng.uniform(size=(2000, 3)), rng.uniform(size=(2000, 1)))

    def outcome(n: int) -> Outcome:
        return Outcome(rng.uniform(size=(n, 1)), np.ones(n, bool), np.full(n, "", dtype=object), np.full(n, 0.5))

    def metrics(i: int) -> dict:
        return {"round": i, "n_runs": 8 * i, "n_labeled": 8 * i, "mse": 1e-3, "rmse": 3e-2, "mae": 2e-2,
                "max_abs_error": 0.1, "mean_variance": 1e-4, "fit_s": 0.3, "select_s": 0.01, "in_flight": 8}

    store.append_runs(rng.uniform(size=(8, 3)), outcome(8), round_index=0)
    store.append_round(metrics(1))
    timings = {}
    for name, append in (("append_runs", lambda i: store.append_runs(rng.uniform(size=(1, 3)), outcome(1), round_index=i)),
                         ("append_round", lambda i: store.append_round(metrics(i + 2)))):
        seconds = []
        for i in tqdm(range(args.appends), desc=name):
            start = time.perf_counter()
            append(i)
            seconds.append(time.perf_counter() - start)
        timings[name] = {"median_ms": 1e3 * float(np.median(seconds)), "mean_ms": 1e3 * float(np.mean(seconds))}
        print(f"{name}: median {timings[name]['median_ms']:.1f} ms, mean {timings[name]['mean_ms']:.1f} ms "
              f"per call ({args.appends} calls)", flush=True)
    data = read_run(path)
    if data.sizes["sample"] != 8 + args.appends or data.sizes["round"] != 1 + args.appends:
        raise AssertionError(f"store holds {dict(data.sizes)} after the appends")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    u = sub.add_parser("utilisation")
    u.add_argument("--workers", type=int, default=8)
    u.add_argument("--sleep", type=float, default=0.5)
    u.add_argument("--budget", type=int, default=240)
    u.add_argument("--refit-every", type=int, default=8)
    u.add_argument("--n-initial", type=int, default=20, help="initial design (the run config's default)")
    u.add_argument("--steps-warm", type=int, default=300)
    u.add_argument("--modes", default="asynchronous,batch-synchronous",
                   help="comma-separated: asynchronous, batch-synchronous")
    e = sub.add_parser("efficiency")
    e.add_argument("--seeds", type=int, default=4)
    e.add_argument("--budget", type=int, default=500)
    e.add_argument("--in-flight", type=int, default=8)
    e.add_argument("--steps-warm", type=int, default=100)
    s = sub.add_parser("store")
    s.add_argument("--appends", type=int, default=100)
    for p in (u, e, s):
        p.add_argument("--out", default=str(OUT / "async_loop"))
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = {"utilisation": utilisation, "efficiency": efficiency, "store": store_appends}[args.what](args)
    record = {"what": args.what, "settings": vars(args), "result": result, "bench_wall_s": time.perf_counter() - start,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()}}
    out = Path(args.out) / f"async_{args.what}.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()

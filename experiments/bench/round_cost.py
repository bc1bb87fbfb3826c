"""Per-round cost of the active learning loop, and JIT compilations after the first round.

    python -m experiments.bench.round_cost [--learner auto|mlp|mlp_fast|...] [--strategy qbc|qbc_spread|...]
        [--labeled 1000] [--rounds 20] [--simulation-s 0] [--out FILE.json]

Runs the rounds of the default strategy's loop on the 1-D potential as the loop does them
(fit, test-set score, candidate draw, selection, then the batch's simulations) with the
committee of a conf/learner/ preset, starting from `labeled` simulations, and reports the
median and the largest time of each part, the rounds in which `learner=auto` chose its family
again, the number of XLA compilations after round 1, and three fits from scratch on the final
runs (what a choice made within the fit costs). The committee's last fit before the measured
rounds is on `labeled / growth` runs, so that the first measured round starts a choice of
`learner=auto`'s family: made in the background, it takes effect at the next round, and
waits for nothing if each batch's simulations take longer than the families' fits. The 1-D
potential simulates in microseconds; `--simulation-s` makes each batch take that long (a
sleep, as a simulator on other cores would), so the rounds measure what a scientist waits
for beside simulations that take time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from alframe.learners.base import fit_report, start_deferred
from alframe.loop import Candidates
from alframe.metrics import regression_metrics
from experiments.run import build_learner

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class CompileCounter:
    """Counts XLA backend compilations while installed."""

    def __init__(self) -> None:
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, name: str, duration: float, **_) -> None:
        if name == "/jax/core/compile/backend_compile_duration":
            self.count += 1


def measure(labeled: int, rounds: int, batch_size: int, pool_size: int, test_size: int, learner: str,
            strategy: str = "qbc", simulation_s: float = 0.0) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"budget={labeled + rounds * batch_size}", f"learner={learner}",
                                           f"strategy={strategy}"])
    oracle = instantiate(cfg.simulator)
    unfitted = committee = build_learner(cfg, oracle)
    strategy = instantiate(cfg.strategy)
    candidates = Candidates(size=pool_size)
    x = oracle.space.draw(labeled, seed=1)
    y = oracle.run(x).y
    x_test = oracle.space.draw(test_size, seed=2)
    y_test = oracle.run(x_test).y
    counter = CompileCounter()
    # The loop's state before the measured rounds: a fit on the runs of the last choice, so that
    # the first measured round chooses again (learner=auto).
    growth = float(getattr(committee, "growth", 1.0))
    committee = committee.fit(x[: int(labeled / growth)], y[: int(labeled / growth)], key=jax.random.key(0))
    # ...which has chosen runs before: the first selection in a process pays one-off costs.
    strategy.select(committee, candidates.draw(oracle.space, seed=1, n_runs=0), batch_size, key=jax.random.key(0))

    parts: dict[str, list[float]] = {"fit": [], "score": [], "select": [], "total": []}
    compiles_after_first = 0
    chosen: list[str] = []
    choice_rounds: list[int] = []
    for r in range(rounds):
        before = counter.count
        key_fit, key_select = jax.random.split(jax.random.key(r + 1))
        t0 = time.perf_counter()
        committee = committee.fit(x, y, key=key_fit)
        np.asarray(committee.predict_members(x_test[:1]))  # waits for the fit, as the loop does
        t1 = time.perf_counter()
        report = fit_report(committee)
        if "learner" in report:
            chosen.append(str(report["learner"]))
            if getattr(committee.state, "chosen_now", False):
                choice_rounds.append(r)
        regression_metrics(y_test, np.asarray(committee.predict_members(x_test)))
        t2 = time.perf_counter()
        pool = candidates.draw(oracle.space, seed=0, n_runs=len(x))
        pick = strategy.select(committee, pool, batch_size, key=key_select)
        start_deferred(committee)  # as ActiveLearner.ask does: a pending choice runs beside the simulations
        t3 = time.perf_counter()
        outcome = oracle.run(pool[pick])
        time.sleep(simulation_s)
        x, y = np.concatenate([x, pool[pick]]), np.concatenate([y, outcome.y])
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            parts[name].append(dt)
        if r > 0:
            compiles_after_first += counter.count - before
    # A fit from scratch on the grown set: what a round costs when `learner=auto` chooses its family again.
    fresh: list[float] = []
    for r in range(3):
        t0 = time.perf_counter()
        np.asarray(unfitted.fit(x, y, key=jax.random.key(100 + r)).predict_members(x_test[:1]))
        fresh.append(time.perf_counter() - t0)
    return {
        "labeled_start": labeled,
        "fit_from_scratch_ms": [1e3 * t for t in fresh],
        "rounds": rounds,
        "batch_size": batch_size,
        "candidate_pool": pool_size,
        "test_size": test_size,
        "simulation_s_per_batch": simulation_s,
        "learner": learner,
        "committee": OmegaConf.to_container(cfg.learner, resolve=True),
        "strategy": OmegaConf.to_container(cfg.strategy, resolve=True),
        "median_ms": {k: 1e3 * float(np.median(v)) for k, v in parts.items()},
        "max_ms": {k: 1e3 * float(np.max(v)) for k, v in parts.items()},
        "per_round_ms": {k: [round(1e3 * t, 1) for t in v] for k, v in parts.items()},
        "chosen_family": chosen,
        "rounds_with_a_new_choice": choice_rounds,
        "compilations_after_round_1": compiles_after_first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--simulation-s", type=float, default=0.0,
                        help="seconds each batch's simulations take (a sleep; 0: the 1-D potential's microseconds)")
    parser.add_argument("--learner", default="auto", help="a preset of conf/learner/ (auto, mlp, mlp_fast, gp, ...)")
    parser.add_argument("--strategy", default="qbc", help="a preset of conf/strategy/ (qbc, qbc_spread, ...)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/bench/round_cost_LEARNER_STRATEGY.json")
    args = parser.parse_args()
    suffix = f"_sim{args.simulation_s:g}s" if args.simulation_s else ""
    args.out = args.out or Path(f"results/bench/round_cost_{args.learner}_{args.strategy}{suffix}.json")
    result = measure(args.labeled, args.rounds, args.batch_size, args.pool, args.test_size, args.learner,
                     args.strategy, args.simulation_s)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                         "load_average": os.getloadavg()}
    print(f"per round at {args.labeled} labelled points ({args.rounds} rounds, {args.simulation_s:g} s of "
          f"simulation a batch):")
    for k, v in result["median_ms"].items():
        print(f"  {k:>6}: {v:8.1f} ms median, {result['max_ms'][k]:8.1f} ms at most")
    if result["chosen_family"]:
        print(f"  family chosen: {sorted(set(result['chosen_family']))}; chosen again in rounds "
              f"{result['rounds_with_a_new_choice']}")
    print(f"  XLA compilations after round 1: {result['compilations_after_round_1']}")
    print(f"  a fit from scratch (a round that chooses the family again): "
          f"{', '.join(f'{t:.0f}' for t in result['fit_from_scratch_ms'])} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

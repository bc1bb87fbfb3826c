"""Held-out F1 of the forest committees on random samples of the MOCCA pool: which learner a
MOCCA loop should train, apart from any strategy.

    python -m experiments.bench.mocca_learners [--seeds 6] [--learners forest extra_trees]

For each seed, one random order of the pool; each learner (a conf/learner preset) is fitted on
the first n models of it for every n in --sizes and scored on the held-out models (macro F1, as
the loop's). Writes results/bench/mocca_learners.json and prints the mean F1 per learner and n.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from alframe.loop import score_committee

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.mocca_learners",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--learners", nargs="+", default=["forest", "extra_trees"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 100, 200, 300, 400, 0],
                        help="training-set sizes; 0 is the whole pool")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "mocca_learners.json")
    args = parser.parse_args(argv)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        configs = {learner: compose(config_name="config", overrides=["experiment=mocca_bhs", f"learner={learner}"])
                   for learner in args.learners}
    # The pool and held-out split come from the simulator settings, which the learner does not change.
    first = next(iter(configs.values()))
    oracle = instantiate(first.simulator)
    x_test, y_test = instantiate(first.test_set)
    pool = np.asarray(oracle.space.values)
    labels = np.asarray(oracle.run(pool).y).reshape(-1)
    sizes = [n if 0 < n <= len(pool) else len(pool) for n in args.sizes]
    results: dict[str, dict[int, list[float]]] = {}
    for learner, cfg in configs.items():
        results[learner] = {n: [] for n in sizes}
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(pool))
            for n in sizes:
                rows = order[:n]
                committee = instantiate(cfg.learner).fit(pool[rows], labels[rows], key=jax.random.key(seed))
                results[learner][n].append(score_committee(committee, x_test, y_test, classification=True)["f1"])
        print(learner, " ".join(f"n={n}: {np.mean(f1):.3f}" for n, f1 in results[learner].items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "mean_f1": {
        learner: {str(n): float(np.mean(v)) for n, v in per_n.items()} for learner, per_n in results.items()},
        "f1": {learner: {str(n): v for n, v in per_n.items()} for learner, per_n in results.items()}}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

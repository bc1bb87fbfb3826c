"""Labels needed on the MOCCA pool to reach a share of the full-data F1: committee strategies
against random sampling, paired seeds.

    python -m experiments.bench.mocca_active                         # 8 seeds, forest committee
    python -m experiments.bench.mocca_active --seeds 4 --learner bagged_gbt --fraction 0.9

Every (strategy, seed) run is the Hydra experiment `mocca_bhs` (the same configs and entry
point as `python -m experiments.run -m experiment=mocca_bhs`), run in this process into
OUT/<strategy>/seed=<seed>/ (an interrupted benchmark resumes its runs). The full-data F1 is
the F1 on the held-out models of the learner fitted on the whole pool (median over fit
seeds); the verdict is `experiments.compare` at the target `fraction` x that F1, written to
OUT (summary_targets.csv, learning_curves.png, ...) and to OUT/verdict.json.

F1 is the loop's: macro-averaged over the two classes. The same is reported for the
BH-subsystem class alone by refitting each run's labelled set at every round.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import xarray as xr
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from tqdm.auto import tqdm

from alframe.metrics import classification_metrics, simulations_to_reach
from experiments import compare
from experiments.run import run

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = ("random", "qbc_vote_entropy", "qbc_consensus_entropy", "qbc_max_disagreement")


def compose_config(strategy: str, seed: int, learner: str, overrides: list[str]):
    """The `mocca_bhs` experiment config for one strategy and seed."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["experiment=mocca_bhs", f"strategy={strategy}",
                                                        f"seed={seed}", f"learner={learner}", "progress=false",
                                                        *overrides])


def bhs_f1(labels: np.ndarray, probs: np.ndarray) -> float:
    """F1 of class 1 for labels (m,) and member probabilities (members, m, 2)."""
    predicted = np.asarray(probs).mean(axis=0).argmax(axis=1)
    labels = np.asarray(labels).reshape(-1)
    tp = np.sum((predicted == 1) & (labels == 1))
    wrong = np.sum(predicted != labels)
    return float(2 * tp / (2 * tp + wrong)) if tp + wrong else 1.0


def full_data_scores(cfg, n_fits: int) -> dict[str, float]:
    """Median macro and BHS-class F1 on the held-out models of the learner fitted on the whole pool."""
    oracle, (x_test, y_test) = instantiate(cfg.simulator), instantiate(cfg.test_set)
    macro, bhs = [], []
    for k in range(n_fits):
        committee = instantiate(cfg.learner).fit(oracle.space.values, oracle.labels, key=jax.random.key(k))
        probs = np.asarray(committee.predict_members(x_test))
        macro.append(classification_metrics(y_test, probs)["f1"])
        bhs.append(bhs_f1(y_test, probs))
    return {"f1": float(np.median(macro)), "f1_bhs": float(np.median(bhs)), "pool": len(oracle.space),
            "held_out": len(y_test), "pool_bhs": int(oracle.labels.sum()), "held_out_bhs": int(np.sum(y_test))}


def bhs_curve(ds: xr.Dataset, cfg, *, every: int) -> tuple[np.ndarray, np.ndarray]:
    """BHS-class F1 of the learner refitted from scratch on each round's labelled set.

    Returns (n_labeled (k,), f1 (k,)) for every `every`-th round and the last.
    """
    x, y, ok = ds["x"].values, ds["y"].values[:, 0], ds["ok"].values
    x_test, y_test = ds["x_test"].values, ds["y_test"].values[:, 0]
    n_runs = ds["n_runs"].values
    picked = sorted(set(range(0, len(n_runs), every)) | {len(n_runs) - 1})
    out = []
    for r in picked:
        n = int(n_runs[r])
        mask = ok[:n]
        committee = instantiate(cfg.learner).fit(x[:n][mask], y[:n][mask], key=jax.random.key(10_000 + r))
        out.append(bhs_f1(y_test, committee.predict_members(x_test)))
    return n_runs[picked], np.array(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.mocca_active",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--learner", default="forest", help="a conf/learner preset")
    parser.add_argument("--fraction", type=float, default=0.95, help="target share of the full-data F1")
    parser.add_argument("--full-fits", type=int, default=8, help="fits on the whole pool for the full-data F1")
    parser.add_argument("--bhs-every", type=int, default=2,
                        help="refit every k-th round for the BHS-class F1 (0: skip)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "mocca_active")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. batch_size=5")
    args = parser.parse_args(argv)
    logging.getLogger("alframe").setLevel(logging.WARNING)
    out = args.out / args.learner
    out.mkdir(parents=True, exist_ok=True)

    base = compose_config(args.strategies[0], 0, args.learner, args.overrides)
    full = full_data_scores(base, args.full_fits)
    target = args.fraction * full["f1"]
    print(f"pool {full['pool']} models ({full['pool_bhs']} BHS), "
          f"held out {full['held_out']} ({full['held_out_bhs']} BHS); full-data F1 {full['f1']:.4f} "
          f"(BHS class {full['f1_bhs']:.4f}); target {args.fraction:g} x = {target:.4f}")

    load_before = os.getloadavg()
    jobs = [(s, seed) for s in args.strategies for seed in range(args.seeds)]
    stores, wall = {}, {}
    for strategy, seed in tqdm(jobs, desc="runs"):
        cfg = compose_config(strategy, seed, args.learner, args.overrides)
        run_dir = out / strategy / f"seed={seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run(cfg, run_dir, strategy_name=strategy)
        wall[(strategy, seed)] = time.perf_counter() - start
        stores[(strategy, seed)] = (xr.open_zarr(run_dir / "run.zarr").load(), cfg)

    table = compare.compare(out, passive="random", metric="f1", targets=[target], retrain=False)

    bhs_rows = []
    if args.bhs_every > 0:
        bhs_target = args.fraction * full["f1_bhs"]
        for (strategy, seed), (ds, cfg) in tqdm(sorted(stores.items()), desc="BHS-class F1 refits"):
            n, f1 = bhs_curve(ds, cfg, every=args.bhs_every)
            need = simulations_to_reach(n, -f1, -bhs_target)
            bhs_rows.append({"strategy": strategy, "seed": seed, "labels_needed": need, "final_f1_bhs": f1[-1]})
        bhs = pd.DataFrame(bhs_rows)
        bhs.to_csv(out / "bhs_class.csv", index=False)
        budget = int(base.budget)
        med = bhs.fillna({"labels_needed": budget + 1}).groupby("strategy")["labels_needed"].median()
        print(f"\n## BH-subsystem-class F1: labels to reach {args.fraction:g} x {full['f1_bhs']:.4f} "
              f"= {bhs_target:.4f} (median over {args.seeds} seeds; refits every {args.bhs_every} rounds)\n")
        for strategy, value in med.items():
            print(f"  {strategy:<24} {value:6.0f}   ratio vs random {med.get('random', np.nan) / value:.2f}")

    verdict = {"learner": args.learner, "fraction": args.fraction, "full_data": full, "target_f1": target,
               "seeds": args.seeds, "summary": table.to_dict(orient="records"),
               "median_wall_s_per_run": {s: float(np.median([w for (k, _), w in wall.items() if k == s]))
                                         for s in args.strategies},
               "bhs_class": bhs_rows,
               # The machine may be shared: timings mean little without its load.
               "load_average_before_after": [load_before, os.getloadavg()]}
    (out / "verdict.json").write_text(json.dumps(verdict, indent=2, default=float))
    print(f"\nverdict written to {out / 'verdict.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

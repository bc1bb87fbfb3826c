"""The same simulator in other units: does the default committee and strategy notice?

    python -m experiments.bench.units [--seeds 4] [--budget 60] [--out results/bench/units]

A smooth 2-input wave, f(u) = sin(5 u0) cos(3 u1) + u0^2 on [0, 1]^2, is learnt with the
default learner and strategy (conf/config.yaml) in its natural units and in the units a
simulator from another field might use: outputs of 1e-25 with inputs spanning 1e-9 (cgs), and
inputs sitting at 1e6 +- 1 (a date, a temperature in kelvin). Each unit system runs the same
seeds; the test R^2 after every round is written to OUT/units.json, and OUT/units.png plots
its median over seeds against the simulations spent, one line per unit system. In units that
do not matter the lines lie on top of each other.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alframe.loop import ActiveLearningLoop, Candidates  # noqa: E402
from alframe.oracle import FunctionOracle, OutputSpec  # noqa: E402
from alframe.space import Box  # noqa: E402
from experiments.cli import compose_config  # noqa: E402
from experiments.run import build, build_learner  # noqa: E402

# name -> (input scale, input shift, output scale): inputs are shift + scale * u, outputs scale * f.
UNITS = {"natural": (1.0, 0.0, 1.0), "cgs (x 1e-9, y 1e-25)": (1e-9, 0.0, 1e-25), "offset (x + 1e6)": (1.0, 1e6, 1.0)}


def wave(u: np.ndarray) -> np.ndarray:
    """The simulator in natural units: u (n, 2) in [0, 1]^2 -> (n,)."""
    return np.sin(5 * u[:, 0]) * np.cos(3 * u[:, 1]) + u[:, 0] ** 2


def oracle_in(scale: float, shift: float, output_scale: float) -> FunctionOracle:
    """`wave` with inputs shift + scale * u and outputs output_scale * wave(u)."""
    box = Box(names=("a", "b"), lower=(shift,) * 2, upper=(shift + scale,) * 2)
    return FunctionOracle(lambda x: output_scale * wave((x - shift) / scale)[:, None], box, OutputSpec(("y",)),
                          version="1")


def r2_curve(oracle: FunctionOracle, *, seed: int, budget: int, store: Path, test_size: int = 500,
             candidates: int = 1000) -> tuple[list[int], list[float]]:
    """(simulations, test R^2) after each round of the default loop on `oracle` (batches of 10)."""
    cfg = compose_config([f"budget={budget}", f"seed={seed}"])
    loop = ActiveLearningLoop(oracle=oracle, committee=build_learner(cfg, oracle), strategy=build(cfg, "strategy"),
                              budget=budget, batch_size=10, n_initial=10, test_size=test_size, seed=seed,
                              candidates=Candidates(size=candidates), progress=False)
    ds = loop.run(store)
    return [int(n) for n in ds["n_labeled"].values], [float(r) for r in ds["r2"].values]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("results/bench/units"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, units in UNITS.items():
            curves = []
            for seed in range(args.seeds):
                n, r2 = r2_curve(oracle_in(*units), seed=seed, budget=args.budget,
                                 store=Path(scratch) / f"{len(results)}-{seed}.zarr")
                curves.append(r2)
                print(f"[units] {name}, seed {seed}: final R^2 {r2[-1]:.4f}", flush=True)
            results[name] = {"n_labeled": n, "r2": curves, "median_r2": list(np.median(curves, axis=0))}
    (args.out / "units.json").write_text(json.dumps(results, indent=1))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (name, result), style in zip(results.items(), ("-", "--", ":")):
        ax.plot(result["n_labeled"], result["median_r2"], style, marker="o", label=name)
    ax.set(xlabel="simulations", ylabel=f"test R^2 (median of {args.seeds} seeds)",
           title="the same simulator in other units")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "units.png", dpi=120)
    for name, result in results.items():
        print(f"[units] {name}: median R^2 by round {np.round(result['median_r2'], 4).tolist()}")
    print(f"[units] wrote {args.out / 'units.json'} and {args.out / 'units.png'}")


if __name__ == "__main__":
    main()

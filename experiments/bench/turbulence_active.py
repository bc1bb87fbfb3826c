"""Runs chosen by committee on a cheap proxy against uniform n: the sweep, then its verdict.

    python -m experiments.bench.turbulence_active --seeds 16                        # hydro 64^3
    python -m experiments.bench.turbulence_active --simulator turbulence_surrogate --seeds 2
    python -m experiments.bench.turbulence_active --name big -- budget=64 candidates.size=32

Runs the `turbulence_active` preset through the sweep machinery (`python -m experiments.run
-m experiment=turbulence_active strategy=... seed=range(N)`, one process, so JAX compiles
each program once for all jobs) into results/bench/turbulence_active/NAME, then
`python -m experiments.compare` on it with the error of the predicted n (`rmse`). Arguments
after `--` are passed to every run as Hydra overrides. The stores' `n_runs` counts full runs
plus the committee's proxy runs at their charge, so the verdict's "simulations" are full-run
cost. The strategies: `random` (uniform n, the baseline), `committee_proxy_error` (the
committee's expected error on a 16^3 proxy run of each candidate), `sobol` (the space-filling
passive design), `committee_proxy` (members' disagreement on the proxy run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

OUT = Path("results/bench/turbulence_active")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="turbulence_active", description=__doc__.split("\n")[0])
    parser.add_argument("--simulator", default="turbulence", choices=("turbulence", "turbulence_surrogate"))
    parser.add_argument("--strategies", default="random,committee_proxy_error,sobol,committee_proxy",
                        help="comma-separated strategy presets; the first is the baseline")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--name", default=None, help="sweep folder under results/bench/turbulence_active "
                                                     "(default: the simulator's name)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 for a paired comparison, got {args.seeds}")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if not args.strategies.strip(",").split(",")[0]:
        parser.error(f"--strategies must name at least one preset, got {args.strategies!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sweep_dir = OUT / (args.name or args.simulator)
    strategies = [s for s in args.strategies.split(",") if s]
    sweep = [sys.executable, "-m", "experiments.run", "-m", "experiment=turbulence_active",
             f"simulator={args.simulator}", f"strategy={','.join(strategies)}", f"seed=range({args.first_seed},{args.first_seed + args.seeds})",
             f"hydra.sweep.dir={sweep_dir}", "progress=false", *args.overrides]
    print(" ".join(sweep), flush=True)
    if subprocess.run(sweep).returncode:
        print("turbulence_active: error: the sweep failed (see above)", file=sys.stderr)
        return 2
    verdict = [sys.executable, "-m", "experiments.compare", str(sweep_dir), "--metric", "rmse",
               "--passive", strategies[0]]
    return subprocess.run(verdict).returncode


if __name__ == "__main__":
    sys.exit(main())

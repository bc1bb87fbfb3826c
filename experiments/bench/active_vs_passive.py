"""Active against passive on the 1-D potential: the headline sweep, timed.

    python -m experiments.bench.active_vs_passive [--seeds 8] [--budget 1000] [--out results/bench/active_vs_passive]
        [-- extra Hydra overrides, e.g. learner.steps_warm=200 strategy=random,qbc_spread,sobol]

Runs `experiments.run -m experiment=potential1d_compare` with the given seeds and budget into
OUT/sweep, times the whole sweep, then writes the verdict (`experiments.compare`) there and a
`bench.json` with the wall time, the overrides and the summary records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from experiments.compare import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("results/bench/active_vs_passive"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    sweep_dir = (args.out / "sweep").resolve()
    if sweep_dir.exists():
        # Finished runs would be resumed, not rerun, and the timing would mean nothing.
        sys.exit(f"error: {sweep_dir} exists; remove it or choose another --out")
    overrides = ["experiment=potential1d_compare", f"seed=range({args.seeds})", f"budget={args.budget}",
                 "progress=false", f"hydra.sweep.dir={sweep_dir}", *args.overrides]
    command = [sys.executable, "-m", "experiments.run", "-m", *overrides]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    sweep_s = time.perf_counter() - start
    print(f"sweep finished in {sweep_s:.0f} s", flush=True)
    table = compare(sweep_dir)
    result = {
        "command": " ".join(command),
        "sweep_wall_s": sweep_s,
        "seeds": args.seeds,
        "budget": args.budget,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "summary": table.to_dict(orient="records"),
    }
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    print(f"written to {args.out / 'bench.json'}")


if __name__ == "__main__":
    main()

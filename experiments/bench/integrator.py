"""Trajectories per second: the JAX velocity-Verlet integrator against scipy `solve_ivp`.

Both integrate the same random starts of the 1-D potential toy (x0, v0 in [-2, 2], t in
[0, 5]) in one process, so the speedup compares like with like on this machine:

    python -m experiments.bench.integrator [--out results/bench/integrator.json]

JAX: one vmapped batch of `--batch` trajectories of `--n-steps` fixed steps, timed after a
warm-up call (which compiles), best of `--repeats`, through the public `trajectory_end`
(host arrays in, host array out). scipy: one `solve_ivp` call per trajectory on the first
`--scipy-n` starts, adaptive steps at rtol 1e-6, best of `--repeats` as well.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
import scipy
from scipy.integrate import solve_ivp

from simulators.potential1d import POTENTIALS, trajectory_end

# Plain numpy forces: calling a JAX function per right-hand-side evaluation would time JAX's
# dispatch overhead, not scipy.
NUMPY_FORCES = {
    "anharmonic": lambda x: -x - x**3,
    "double_well": lambda x: x - x**3,
    "morse": lambda x: -2.0 * (1.0 - np.exp(-x)) * np.exp(-x),
    "pendulum": lambda x: -np.sin(x),
}


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def best_of(repeats: int, fn) -> tuple[float, object]:
    """Fastest wall time of `repeats` calls of fn(), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def scipy_ends(potential: str, x0, v0, t, *, method: str, rtol: float, atol: float) -> np.ndarray:
    force = NUMPY_FORCES[potential]
    out = np.empty(len(x0))
    for i, (a, b, c) in enumerate(zip(x0, v0, t)):
        sol = solve_ivp(lambda _, y: (y[1], force(y[0])), (0.0, c), (a, b),
                        method=method, rtol=rtol, atol=atol)
        out[i] = sol.y[0, -1]
    return out


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run(args: argparse.Namespace) -> dict:
    # Other work on the machine slows both sides unevenly; the load is recorded to judge that.
    load_before = load_average()
    rng = np.random.default_rng(args.seed)
    x0 = rng.uniform(-2.0, 2.0, args.batch)
    v0 = rng.uniform(-2.0, 2.0, args.batch)
    t = rng.uniform(0.0, 5.0, args.batch)

    def jax_call():
        return trajectory_end(x0, v0, t, potential=args.potential, n_steps=args.n_steps)

    start = time.perf_counter()
    jax_call()
    warmup_s = time.perf_counter() - start
    jax_s, x_jax = best_of(args.repeats, jax_call)

    m = args.scipy_n
    scipy_s, x_scipy = best_of(args.repeats, lambda: scipy_ends(
        args.potential, x0[:m], v0[:m], t[:m],
        method=args.scipy_method, rtol=args.rtol, atol=args.atol))

    jax_rate = args.batch / jax_s
    scipy_rate = m / scipy_s
    return {
        "benchmark": "potential1d integrator",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "potential": args.potential,
        "inputs": {"x0": [-2.0, 2.0], "v0": [-2.0, 2.0], "t": [0.0, 5.0], "seed": args.seed},
        "repeats": args.repeats,
        "jax": {
            "method": "velocity Verlet, fixed steps, jit + vmap, float32",
            "trajectories": args.batch,
            "n_steps": args.n_steps,
            "warmup_s": warmup_s,
            "best_s": jax_s,
            "trajectories_per_s": jax_rate,
            "steps_per_s": jax_rate * args.n_steps,
        },
        "scipy": {
            "method": f"solve_ivp {args.scipy_method}, one call per trajectory",
            "solver": args.scipy_method,
            "trajectories": m,
            "rtol": args.rtol,
            "atol": args.atol,
            "best_s": scipy_s,
            "trajectories_per_s": scipy_rate,
        },
        "speedup": jax_rate / scipy_rate,
        # Same starts, so a large difference would mean the two are not doing the same work.
        "max_abs_difference_jax_vs_scipy": float(np.max(np.abs(x_jax[:m] - x_scipy))),
        "machine": {**machine_info(), "load_average_1_5_15min": {"before": load_before,
                                                                   "after": load_average()}},
    }


def print_table(result: dict) -> None:
    j, s = result["jax"], result["scipy"]
    rows = [
        ("method", "trajectories", "best s", "trajectories/s"),
        (f"JAX Verlet ({j['n_steps']} steps)", f"{j['trajectories']:,}", f"{j['best_s']:.3f}",
         f"{j['trajectories_per_s']:,.0f}"),
        (f"scipy {s['solver']} (rtol {s['rtol']:g})", f"{s['trajectories']:,}",
         f"{s['best_s']:.3f}", f"{s['trajectories_per_s']:,.0f}"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells))
    m = result["machine"]
    print(f"speedup: {result['speedup']:,.0f}x   (JAX warm-up/compile {j['warmup_s']:.2f} s; "
          f"max |x_jax - x_scipy| = {result['max_abs_difference_jax_vs_scipy']:.1e})")
    print(f"machine: {m['platform']}, {m['cpu_usable']}/{m['cpu_count']} CPUs, "
          f"jax {m['jax']} on {m['jax_backend']}, load average before/after "
          f"{m['load_average_1_5_15min']['before']} / {m['load_average_1_5_15min']['after']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench/integrator.json"),
                        help="JSON file for the figures (default: %(default)s)")
    parser.add_argument("--potential", default="anharmonic", choices=sorted(POTENTIALS))
    parser.add_argument("--batch", type=int, default=2**20, help="JAX trajectories per call")
    parser.add_argument("--n-steps", type=int, default=1000)
    parser.add_argument("--scipy-n", type=int, default=200, help="scipy trajectories")
    parser.add_argument("--scipy-method", default="RK45", choices=("RK45", "DOP853"))
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch < args.scipy_n:
        parser.error(f"--batch ({args.batch}) must be at least --scipy-n ({args.scipy_n})")

    result = run(args)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()

"""Turbulence solver throughput: cell updates per second and seconds per 0.5 Myr run.

For each grid size and scheme, one talk run (Kolmogorov index 11/3, Mach 1.41, 0.5 Myr,
float32) is timed after a warm-up run that compiles:

    python -m experiments.bench.turbulence_throughput [--sizes 64 128] [--orders 1 2]

A cell update is one cell advanced by one full time step (a second-order step has two
stages and costs about twice a first-order one). Rates are given per wall second and per CPU
second of the process (all threads): on a shared machine the first includes waiting for a
core, the second does not. The time per run is the initial velocity
field plus the solver to 0.5 Myr, host arrays out; compile time is reported apart. The end
state's ln-density spread and rms Mach number go with each row, because they show how much
the scheme's numerical viscosity changes the physics at each resolution. Results go to
results/bench/turbulence_throughput.json and a PNG of the log column-density maps.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from experiments.bench.integrator import load_average, machine_info
from simulators.turbulence import CloudSetup, Scheme, evolve_checked, initial_state
from simulators.turbulence.images import log_column_image

KOLMOGOROV = 11 / 3


def one_run(n: int, scheme: Scheme, setup: CloudSetup, index: float, seed: int):
    """Initial field + solver to the end time; returns (density, velocity, steps, seconds)."""
    start = time.perf_counter()
    state = initial_state(index, n_cells=n, seed=seed, mach=setup.mach)
    result = evolve_checked(state, setup.duration_code, dx=1.0 / n, scheme=scheme)
    density = np.asarray(result.state.density)
    velocity = np.asarray(result.state.velocity)
    return density, velocity, int(result.steps), time.perf_counter() - start


def solver_only(n: int, scheme: Scheme, setup: CloudSetup, index: float,
                seed: int) -> tuple[float, float]:
    """Wall and CPU (all threads) seconds of the solver alone, from a state on the device."""
    state = initial_state(index, n_cells=n, seed=seed, mach=setup.mach)
    jax.block_until_ready(state)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = evolve_checked(state, setup.duration_code, dx=1.0 / n, scheme=scheme)
    jax.block_until_ready(result.state)
    return time.perf_counter() - start, time.process_time() - cpu_start


def measure(n: int, scheme: Scheme, args, setup: CloudSetup) -> tuple[dict, np.ndarray]:
    start = time.perf_counter()
    one_run(n, scheme, setup, args.index, args.seed)
    warmup_s = time.perf_counter() - start
    run_s, solver_s, solver_cpu_s = [], [], []
    for _ in range(args.repeats):
        density, velocity, steps, seconds = one_run(n, scheme, setup, args.index, args.seed)
        run_s.append(seconds)
        wall, cpu = solver_only(n, scheme, setup, args.index, args.seed)
        solver_s.append(wall)
        solver_cpu_s.append(cpu)
    best_solver = min(solver_s)
    row = {
        "n_cells": n,
        "scheme": scheme._asdict(),
        "steps": steps,
        "warmup_s": warmup_s,
        "run_s": run_s,
        "solver_s": solver_s,
        "solver_cpu_s": solver_cpu_s,
        "best_run_s": min(run_s),
        "cell_updates_per_s": steps * n**3 / best_solver,
        # On a shared machine the wall time includes waiting for a core; CPU time does not.
        "cell_updates_per_cpu_s": steps * n**3 / min(solver_cpu_s),
        "seconds_per_step": best_solver / steps,
        "sigma_ln_density": float(np.std(np.log(density))),
        "density_min_max": [float(density.min()), float(density.max())],
        "rms_mach_end": float(np.sqrt(np.mean(np.sum(velocity.astype(np.float64) ** 2, axis=0)))),
    }
    return row, log_column_image(density, axis=2)


def uptime_text() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def plot_maps(rows: list[dict], maps: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.4), squeeze=False)
    for ax, row, image in zip(axes[0], rows, maps):
        shown = ax.imshow(image.T, origin="lower", cmap="magma", extent=(0, 10, 0, 10))
        s = row["scheme"]
        ax.set_title(f"{row['n_cells']}^3 {s['riemann']} order {s['order']}", fontsize=9)
        ax.set_xlabel("x [pc]")
        fig.colorbar(shown, ax=ax, fraction=0.046, label="log10 N/<N>")
    axes[0][0].set_ylabel("y [pc]")
    fig.suptitle("log column density along z after 0.5 Myr, n = 11/3 (same seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(result: dict) -> None:
    print(f"{'grid':>6} {'scheme':>12} {'steps':>5} {'run s':>8} {'compile+run s':>13} "
          f"{'Mcell-upd/s':>11} {'per CPU-s':>9} {'sigma lnrho':>11} {'Mach end':>8}")
    for row in result["rows"]:
        s = row["scheme"]
        print(f"{row['n_cells']:>4}^3 {s['riemann'] + '-' + str(s['order']):>12} "
              f"{row['steps']:>5} {row['best_run_s']:>8.2f} {row['warmup_s']:>13.2f} "
              f"{row['cell_updates_per_s'] / 1e6:>11.2f} "
              f"{row['cell_updates_per_cpu_s'] / 1e6:>9.2f} {row['sigma_ln_density']:>11.4f} "
              f"{row['rms_mach_end']:>8.3f}")
    print(f"uptime before: {result['uptime_before']}")
    print(f"uptime after:  {result['uptime_after']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument("--riemann", default="rusanov", choices=("rusanov", "hll"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--index", type=float, default=KOLMOGOROV)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=Path("results/bench/turbulence_throughput.json"))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    setup = CloudSetup()
    result = {
        "benchmark": "turbulence solver throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "setup": setup.describe(),
        "index": args.index,
        "seed": args.seed,
        "dtype": "float32",
        "uptime_before": uptime_text(),
        "rows": [],
    }
    load_before = load_average()
    configs = [(n, Scheme(riemann=args.riemann, order=order))
               for n in args.sizes for order in args.orders]
    maps = []
    for n, scheme in tqdm(configs, desc="grids x schemes"):
        row, image = measure(n, scheme, args, setup)
        result["rows"].append(row)
        maps.append(image)
    result["uptime_after"] = uptime_text()
    result["machine"] = {**machine_info(), "load_average_1_5_15min": {
        "before": load_before, "after": load_average()}}
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot_maps(result["rows"], maps, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()

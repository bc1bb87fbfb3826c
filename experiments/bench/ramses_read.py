"""Read + grid + project a RAMSES output: this package's reader against yt, same files, one run.

    python -m experiments.bench.ramses_read [--repeats 3] [--n 128] \
        [--out results/bench/ramses_read.json]

Two outputs: the real 3-D AMR blast (`../shared/data/ramses/amr3d`, 45,256 leaf cells on levels
4-6) and a 128^3 uniform output of a log-normal density field written by `write_uniform`. For
each, both sides do the same three things from a cold start:
- this package: `read_output` (every variable; also timed reading density alone, which is
  all yt reads), `paint` (density at the finest level), `column_density` along z;
- yt: `yt.load`, a covering grid of ("ramses", "Density") at the finest level, a projection
  of it along z turned into an N x N image (`ds.proj(...).to_frb`).
Each side's time is the best of `--repeats`; both sides' arrays are compared (yt's projection
converted from cgs to RAMSES code units). Results go to a JSON file and a
bar chart beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from simulators.ramses import column_density, paint, read_output, write_uniform

REPO = Path(__file__).resolve().parents[2]
AMR3D = REPO / ".." / "shared" / "data" / "ramses" / "amr3d" / "output_00002"


def best_of(repeats: int, fn):
    """Fastest wall time of `repeats` calls of fn(), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def ours(path: Path, variables=None):
    out = read_output(path, variables=variables)
    grid = paint(out, "density")
    return grid, column_density(out, "z")


def with_yt(path: Path):
    import yt

    ds = yt.load(str(path))
    level = ds.index.max_level  # yt's levels count from levelmin
    n = int(ds.domain_dimensions[0]) * 2**level
    grid = ds.covering_grid(level=level, left_edge=ds.domain_left_edge, dims=[n] * 3)
    density = np.asarray(grid[("ramses", "Density")])
    image = ds.proj(("ramses", "Density"), 2).to_frb((1.0, "unitary"), (n, n))
    # The image's rows are y. Back to RAMSES code units (length unit_l, box side boxlen).
    cgs = image[("ramses", "Density")].in_cgs()
    column = np.asarray(cgs).T / (ds.parameters["unit_d"] * ds.parameters["unit_l"])
    return density, column


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def lognormal_fields(n: int, seed: int) -> dict[str, np.ndarray]:
    """A smooth log-normal density and random velocities on an n^3 grid, indexed [x, y, z]."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n) * n
    kk = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    spectrum = np.where(kk > 0, kk, np.inf) ** (-11 / 6)
    field = np.fft.ifftn(spectrum * np.fft.fftn(rng.normal(size=(n, n, n)))).real
    rho = np.exp(field / field.std())
    fields = {"density": rho / rho.mean()}
    for c in "xyz":
        fields[f"velocity_{c}"] = rng.normal(size=(n, n, n))
    fields["pressure"] = fields["density"].copy()
    return fields


def machine_info() -> dict:
    import yt

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"platform": platform.platform(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(), "cpu_usable": usable, "numpy": np.__version__,
            "yt": yt.__version__, "load_average": list(os.getloadavg())}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(results))
    ax.bar(x - 0.2, [r["ours_s"] for r in results], 0.4, label="simulators.ramses")
    ax.bar(x + 0.2, [r["yt_s"] for r in results], 0.4, label="yt")
    for i, r in enumerate(results):
        ax.text(i, max(r["ours_s"], r["yt_s"]) * 1.3, f"{r['speedup']:.0f}x faster",
                ha="center")
    ax.set_xticks(x, [r["name"] for r in results])
    ax.set_yscale("log")
    ax.set_ylabel("read + grid + project [s]")
    ax.set_ylim(top=max(r["yt_s"] for r in results) * 5)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=128, help="side of the uniform output")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" /
                        "ramses_read.json")
    args = parser.parse_args(argv)
    try:
        import yt
    except ImportError:
        parser.exit(2, "ramses_read: error: yt is not installed (pip install yt)\n")
    yt.set_log_level(40)
    yt.config.ytcfg["yt", "skip_dataset_cache"] = True
    if not AMR3D.is_dir():
        parser.exit(2, f"ramses_read: error: fixture not found: {AMR3D}\n")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        uniform = write_uniform(Path(tmp) / "output_00001", lognormal_fields(args.n, seed=0),
                                boxlen=10.0, time=1.0)
        size_mb = sum(f.stat().st_size for f in uniform.iterdir()) / 1e6
        cases = [("amr3d (real, levels 4-6)", AMR3D),
                 (f"uniform {args.n}^3 (writer)", uniform)]
        for name, path in cases:
            ours_s, (grid, column) = best_of(args.repeats, lambda p=path: ours(p))
            density_s, _ = best_of(args.repeats, lambda p=path: ours(p, ["density"]))
            yt_s, (yt_grid, yt_column) = best_of(args.repeats, lambda p=path: with_yt(p))
            result = {
                "name": name, "path": str(path), "cells": int(read_output(path).cells.level.size),
                "grid_shape": list(grid.shape), "ours_s": ours_s, "yt_s": yt_s,
                "speedup": yt_s / ours_s, "ours_density_only_s": density_s,
                "speedup_density_only": yt_s / density_s,
                "grid_max_rel_diff": relative_difference(grid, yt_grid),
                "column_max_rel_diff": relative_difference(column, yt_column),
            }
            if path == uniform:
                result["files_mb"] = size_mb
            results.append(result)
            print(f"{name}: ours {ours_s:.3f} s (density only {density_s:.3f} s), yt "
                  f"{yt_s:.3f} s, {result['speedup']:.1f}x; "
                  f"grid diff {result['grid_max_rel_diff']:.1e}, "
                  f"column diff {result['column_max_rel_diff']:.1e}", flush=True)

    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "repeats": args.repeats, "machine": machine_info(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return report


if __name__ == "__main__":
    main()

"""Kolmogorov or Burgers from a column-density map: the turbulence talk's classification, reproduced.

    python -m simulators.turbulence.classification                          # hydro, 32^3, 40 + 40 runs
    python -m simulators.turbulence.classification --surrogate --grid 32    # the lognormal surrogate
    python -m simulators.turbulence.classification --n-runs 100 --grid 64 --duration-myr 2
    python -m experiments.run experiment=turbulence_index job.n_runs=100   # the same, through Hydra

1. Simulates `--n-runs` runs at n = 11/3 (Kolmogorov) and as many at n = 4 (Burgers), takes the
   talk's 48 augmented quarter-box images of each (`simulators.turbulence.build_dataset`) and
   splits the runs 80/10/10 into train, test and holdout, by run.
2. Trains a `CNNCommittee` (the talk's layout: convolutions with max pooling, dense layers,
   ReLU, dropout) on the training images; label 1 = Burgers.
3. Scores the test and holdout images (the committee's mean probability, threshold 1/2) and
   draws the holdout confusion matrix.
4. Simulates `--probe-runs` further runs with n evenly spread over [3, 4.5] and draws the
   fraction of their images predicted Burgers against n, as the talk did.

Writes into `--out` (default results/turbulence_index/): dataset.zarr, probe.zarr,
confusion.png, response.png and figures.json (settings, confusion matrices, accuracies,
response curve, timings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from alframe.learners import CNNCommittee
from alframe.learners.cnn import ImageShapeError
from simulators.turbulence import (
    CloudSetup,
    InvalidSetting,
    Scheme,
    build_dataset,
    hydro_density,
)
from simulators.turbulence.surrogate import lognormal_density

KOLMOGOROV, BURGERS = 11.0 / 3.0, 4.0
CLASS_NAMES = ("Kolmogorov", "Burgers")
PROBE_SEED_OFFSET = 1_000_000  # probe runs never share a velocity field with a training run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="turbulence_index", description=__doc__.split("\n")[0])
    parser.add_argument("--n-runs", type=int, default=40, help="runs per class (default 40)")
    parser.add_argument("--grid", type=int, default=32, help="cells per side; images are grid/2 (default 32)")
    parser.add_argument("--surrogate", action="store_true", help="lognormal surrogate instead of the solver")
    parser.add_argument("--duration-myr", type=float, default=0.5, help="evolution time (default 0.5, the talk's)")
    parser.add_argument("--order", type=int, default=1, choices=(1, 2), help="solver order (default 1)")
    parser.add_argument("--probe-runs", type=int, default=16, help="runs over n in [3, 4.5] (default 16)")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--conv", type=str, default="8,16,32,32", help="conv channels, comma-separated")
    parser.add_argument("--dense", type=str, default="64,32", help="hidden dense widths, comma-separated")
    parser.add_argument("--steps", type=int, default=1500, help="optimisation steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/turbulence_index"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for name in ("conv", "dense"):
        try:
            setattr(args, name, tuple(int(v) for v in getattr(args, name).split(",")))
        except ValueError:
            parser.error(f"--{name} must be comma-separated integers, got {getattr(args, name)!r}")
    problem = settings_error(args, lambda name: f"--{name.replace('_', '-')}")
    if problem:
        parser.error(problem)
    return args


def settings_error(args: argparse.Namespace, spell) -> str | None:
    """What is wrong with the settings, naming the setting as `spell(name)` writes it; None if nothing."""
    for name in ("n_runs", "probe_runs", "members", "steps", "batch_size"):
        if getattr(args, name) < 1:
            return f"{spell(name)} must be >= 1, got {getattr(args, name)}"
    if args.n_runs < 5:
        return f"{spell('n_runs')} must be >= 5 so that every split holds a run of each class, got {args.n_runs}"
    return None


def reproduce(*, out: str | Path, n_runs: int = 40, grid: int = 32, surrogate: bool = False,
              duration_myr: float = 0.5, order: int = 1, probe_runs: int = 16, members: int = 3,
              conv=(8, 16, 32, 32), dense=(64, 32), steps: int = 1500, batch_size: int = 32,
              seed: int = 0, progress: bool = True) -> dict[str, float]:
    """The reproduction with the command line's settings as keywords (the Hydra preset
    `experiment=turbulence_index` calls this); writes into `out` what the script writes.

    Returns the headline figures: holdout `accuracy` and `f1` (macro, both classes), and
    `test_accuracy`. Raises InvalidSetting naming a bad setting.
    """
    try:
        conv, dense = tuple(int(c) for c in conv), tuple(int(d) for d in dense)
    except (TypeError, ValueError):
        raise InvalidSetting(f"job.conv and job.dense must be lists of integers, got {conv!r} and {dense!r}") from None
    args = argparse.Namespace(n_runs=n_runs, grid=grid, surrogate=surrogate, duration_myr=duration_myr,
                              order=order, probe_runs=probe_runs, members=members, conv=conv, dense=dense,
                              steps=steps, batch_size=batch_size, seed=seed, out=Path(out),
                              no_progress=not progress)
    problem = settings_error(args, lambda name: f"job.{name}")
    if problem:
        raise InvalidSetting(problem)
    scores = run(args)["scores"]
    matrix = np.array(scores["holdout"]["confusion"])
    f1 = np.mean([2 * matrix[c, c] / max(matrix[c].sum() + matrix[:, c].sum(), 1) for c in (0, 1)])
    return {"accuracy": scores["holdout"]["accuracy"], "f1": float(f1),
            "test_accuracy": scores["test"]["accuracy"] if scores["test"]["accuracy"] is not None else float("nan")}


def density_function(args: argparse.Namespace):
    """(n, seed) -> final density cube (grid,) * 3, from the solver or the surrogate."""
    if args.surrogate:
        return lambda index, seed: lognormal_density(index, n_cells=args.grid, seed=seed)
    return hydro_density(args.grid, setup=CloudSetup(duration_myr=args.duration_myr),
                         scheme=Scheme(order=args.order))


def flat_images(dataset, mask: np.ndarray) -> np.ndarray:
    """Images of the selected rows, flattened: (n, H*W) float32."""
    images = dataset["log_column"].values[mask]
    return images.reshape(len(images), images.shape[1] * images.shape[2]).astype(np.float32)


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(2, 2) counts, rows true class, columns predicted class."""
    return np.array([[np.sum((labels == t) & (predicted == p)) for p in (0, 1)] for t in (0, 1)])


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for t in range(2):
        for p in range(2):
            share = matrix[t, p] / max(matrix[t].sum(), 1)
            ax.text(p, t, f"{matrix[t, p]}\n({share:.0%})", ha="center", va="center",
                    color="white" if share > 0.6 else "black")
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_response(indices: np.ndarray, fraction: np.ndarray, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(indices, fraction, "o-")
    for value, name in ((KOLMOGOROV, "Kolmogorov"), (BURGERS, "Burgers")):
        ax.axvline(value, color="grey", ls="--", lw=0.8)
        ax.text(value, 1.02, name, ha="center", fontsize=8)
    ax.set_ylim(-0.02, 1.08)
    ax.set_xlabel("velocity spectral index n")
    ax.set_ylabel("fraction of images predicted Burgers")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> dict:
    """Build the data, train, score and plot; returns what figures.json holds."""
    args.out.mkdir(parents=True, exist_ok=True)
    density = density_function(args)
    progress = not args.no_progress
    timings = {}

    start = time.perf_counter()
    indices = [KOLMOGOROV] * args.n_runs + [BURGERS] * args.n_runs
    seeds = np.arange(2 * args.n_runs) + 1000 * args.seed
    dataset = build_dataset(args.out / "dataset.zarr", indices, density, seeds=seeds,
                            split_seed=args.seed, progress=progress)
    probe_indices = np.linspace(3.0, 4.5, args.probe_runs)
    probe = build_dataset(args.out / "probe.zarr", probe_indices, density,
                          seeds=np.arange(args.probe_runs) + PROBE_SEED_OFFSET + 1000 * args.seed,
                          fractions=(1.0, 0.0, 0.0), strata=np.zeros(args.probe_runs),
                          progress=progress)
    timings["simulate_s"] = time.perf_counter() - start

    splits = dataset["split"].values.astype(str)
    labels = (dataset["index"].values == BURGERS).astype(np.int64)
    image_shape = dataset["log_column"].shape[1:]
    train = splits == "train"
    committee = CNNCommittee(image_shape=image_shape, members=args.members, conv_features=args.conv,
                             dense=args.dense, batch_size=args.batch_size, steps_first=args.steps,
                             steps_per_sample=None, capacity=int(train.sum()))
    start = time.perf_counter()
    committee = committee.fit(flat_images(dataset, train), labels[train], key=jax.random.key(args.seed))
    jax.block_until_ready(committee.state.params)
    timings["train_s"] = time.perf_counter() - start

    def burgers_probability(x: np.ndarray) -> np.ndarray:
        return np.asarray(committee.predict_members(x)).mean(axis=0)[:, 1]

    scores = {}
    for split in ("train", "test", "holdout"):
        mask = splits == split
        predicted = (burgers_probability(flat_images(dataset, mask)) > 0.5).astype(np.int64) \
            if mask.any() else np.zeros(0, np.int64)
        matrix = confusion(labels[mask], predicted)
        scores[split] = {"confusion": matrix.tolist(),
                         # None for a split without runs (tiny data sets round it away).
                         "accuracy": float(np.trace(matrix) / matrix.sum()) if mask.any() else None,
                         "runs": len(np.unique(dataset["run"].values[mask])),
                         "images": int(mask.sum())}

    probe_predicted = burgers_probability(flat_images(probe, np.ones(probe.sizes["image"], bool))) > 0.5
    probe_run = probe["run"].values
    fraction = np.array([probe_predicted[probe_run == r].mean() for r in range(args.probe_runs)])

    model = "lognormal surrogate" if args.surrogate else \
        f"hydro order {args.order}, {args.duration_myr:g} Myr"
    setting = f"{model}, {args.grid}^3, {args.n_runs}+{args.n_runs} runs"
    holdout = scores["holdout"]
    plot_confusion(np.array(holdout["confusion"]), args.out / "confusion.png",
                   f"holdout: {model}\n{args.grid}^3, {args.n_runs}+{args.n_runs} runs, "
                   f"accuracy {holdout['accuracy']:.1%}")
    plot_response(probe_indices, fraction, args.out / "response.png",
                  f"{setting}; {args.probe_runs} probe runs")
    figures = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "image_shape": list(image_shape),
        "images_per_run": int(dataset.attrs["images_per_run"]),
        "class_names": list(CLASS_NAMES),
        "scores": scores,
        "response": {"index": probe_indices.tolist(), "fraction_burgers": fraction.tolist()},
        "log_column_std": float(dataset["log_column"].values.std(axis=(1, 2)).mean()),
        "timings": timings,
    }
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        figures = run(args)
    except (InvalidSetting, ImageShapeError) as exc:
        print(f"turbulence_index: error: {exc}", file=sys.stderr)
        return 2
    holdout = figures["scores"]["holdout"]
    print(f"holdout accuracy {holdout['accuracy']:.3f} on {holdout['images']} images "
          f"({holdout['runs']} runs); confusion [[KK, KB], [BK, BB]] = {holdout['confusion']}")
    print(f"fraction predicted Burgers at n = {np.round(figures['response']['index'], 2).tolist()}: "
          f"{np.round(figures['response']['fraction_burgers'], 2).tolist()}")
    print(f"wrote {args.out}/figures.json, confusion.png, response.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

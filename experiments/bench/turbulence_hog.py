"""A t-SNE look at HOG features of the turbulence maps: do Kolmogorov (n = 11/3) and Burgers
(n = 4) runs fall apart, in the map, in HOG space, and on the raw pixels?

    python -m experiments.bench.turbulence_hog [--per-class 24] [--continuous 24] [--grid 64]
                                               [--cell 4] [--perplexity 30] [--seed 0] [--surrogate]
                                               [--out-dir results/bench/turbulence_hog]

Simulates --per-class runs at n = 11/3 and as many at n = 4 (the scored set) and --continuous
runs with n uniform in [3, 4.5] (for the colouring), every run with its own field seed, on
--grid cells per side (the hydro solver; --surrogate: the lognormal stand-in, no physics).
Each run gives three log10 column-density maps (lines of sight x, y, z), each map its HOG
vector (cells of --cell pixels, blocks of 2 x 2 cells, 9 orientations). One t-SNE fit embeds
the HOG vectors of all maps.

Scores, on the maps of the scored set: the leave-one-run-out k-NN accuracy of Kolmogorov
against Burgers (the other maps of a map's own run never vote: they are projections of the
same cube) and the adjusted Rand index of k-means with two clusters, in the t-SNE map, in
the standardised HOG space and on the raw pixels (the map's log10 column densities as one
vector), beside the same scores of eight summary statistics of each map (its spread, skewness,
kurtosis, spectral slope, gradients, dense fraction and peak: the features the labelling demo's
committee reads) as the yardstick a physicist's features set. Writes OUT_DIR/turbulence_hog.json, .md and .png and prints one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from alframe import embedding, plots
from simulators.turbulence import lognormal_density
from simulators.turbulence.hog import BURGERS, KOLMOGOROV, hog_features, hydro_density, maps
from simulators.turbulence.label_demo import map_features

REPO = Path(__file__).resolve().parents[2]
KNN_K = 5
N_RANGE = (3.0, 4.5)


def scores(points: np.ndarray, groups: np.ndarray, runs: np.ndarray, *, seed: int) -> dict[str, float]:
    """k-NN accuracy (leave one run out) and k-means ARI of `groups` among `points`."""
    return {"knn_accuracy": embedding.knn_accuracy(points, groups, k=KNN_K, blocks=runs),
            "cluster_recovery": embedding.cluster_recovery(points, groups, seed=seed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.turbulence_hog",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=24, help="runs at n = 11/3 and as many at n = 4")
    parser.add_argument("--continuous", type=int, default=24, help="runs with n uniform in [3, 4.5]")
    parser.add_argument("--grid", type=int, default=64, help="cells per side")
    parser.add_argument("--cell", type=int, default=4, help="HOG cell size in pixels")
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws of n, the field seeds and t-SNE")
    parser.add_argument("--surrogate", action="store_true", help="the lognormal surrogate instead of the solver")
    parser.add_argument("--out-dir", type=Path, default=REPO / "results" / "bench" / "turbulence_hog")
    args = parser.parse_args(argv)
    if args.per_class < 4 or args.continuous < 0:
        parser.error("--per-class must be at least 4 and --continuous at least 0")
    rng = np.random.default_rng(args.seed)
    indices = np.concatenate([np.full(args.per_class, KOLMOGOROV), np.full(args.per_class, BURGERS),
                              rng.uniform(*N_RANGE, args.continuous)])
    field_seeds = 1000 * args.seed + np.arange(len(indices))
    density_fn = ((lambda n, s: lognormal_density(n, n_cells=args.grid, seed=int(s))) if args.surrogate
                  else hydro_density(args.grid))
    start = time.perf_counter()
    print(f"turbulence_hog: simulating {len(indices)} runs at {args.grid}^3 "
          f"({'lognormal surrogate' if args.surrogate else 'hydro solver'}) ...", file=sys.stderr, flush=True)
    images, run, index = maps(indices, field_seeds, density_fn)
    simulated_s = time.perf_counter() - start
    features = hog_features(images, pixels_per_cell=args.cell)
    pixels = images.reshape(len(images), -1)
    points, model = embedding.tsne(features, perplexity=args.perplexity, seed=args.seed)

    scored = run < 2 * args.per_class
    groups = np.where(index[scored] == KOLMOGOROV, "Kolmogorov n=11/3", "Burgers n=4").astype(object)
    hog_space, _, _ = embedding.standardise(features)
    statistics, _, _ = embedding.standardise(np.stack([map_features(image) for image in images]))
    result = {
        "settings": {"per_class": args.per_class, "continuous": args.continuous, "grid": args.grid,
                     "hog_cell": args.cell,
                     "perplexity": model.perplexity, "seed": args.seed, "k": KNN_K,
                     "model": "lognormal surrogate" if args.surrogate else "hydro solver",
                     "maps_per_run": 3, "hog_features": int(features.shape[1]), "pixels": int(pixels.shape[1])},
        "scored_maps": int(scored.sum()),
        "tsne_map": scores(points[scored], groups, run[scored], seed=args.seed),
        "hog": scores(hog_space[scored], groups, run[scored], seed=args.seed),
        "pixels": scores(pixels[scored], groups, run[scored], seed=args.seed),
        "map_statistics": scores(statistics[scored], groups, run[scored], seed=args.seed),
        "chance_knn_accuracy": embedding.chance_accuracy(groups),
        "simulation_s": simulated_s,
        "seconds": time.perf_counter() - start,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    figure = args.out_dir / "turbulence_hog.png"
    rest = ~scored
    panels = [plots.Panel(points, index, categorical=False, colour_label="velocity index n",
                          title=f"all {len(points)} maps by n"),
              plots.Panel(points[scored], groups, categorical=True, colour_label="scored runs",
                          background=points[rest] if rest.any() else None,
                          background_label="n in [3, 4.5]",
                          title=f"k-NN {result['tsne_map']['knn_accuracy']:.2f} (HOG "
                                f"{result['hog']['knn_accuracy']:.2f}, pixels {result['pixels']['knn_accuracy']:.2f})")]
    plots.embedding_map(panels, figure, title=f"t-SNE of HOG features of {len(points)} log column-density maps "
                                              f"({result['settings']['model']}, {args.grid}^3, "
                                              f"perplexity {model.perplexity:.3g})")
    result["figure"] = figure.name
    out = args.out_dir / "turbulence_hog.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# t-SNE of HOG features of turbulence maps ({result['settings']['model']})", "",
             f"{args.per_class} runs at n = 11/3 and {args.per_class} at n = 4 ({result['scored_maps']} maps, three "
             f"lines of sight per run) scored, {args.continuous} runs with n in [3, 4.5] for the colouring; "
             f"{args.grid}^3 cells, seed {args.seed}. k-NN: leave-one-run-out {KNN_K}-NN accuracy of the class; "
             f"ARI: k-means with 2 clusters. Chance k-NN accuracy {result['chance_knn_accuracy']:.3f}.", "",
             "| space | k-NN accuracy | ARI |", "|---|---|---|"]
    for name, key in (("t-SNE map of HOG", "tsne_map"), ("HOG (standardised)", "hog"), ("raw pixels", "pixels"),
                      ("map statistics (standardised)", "map_statistics")):
        lines.append(f"| {name} | {result[key]['knn_accuracy']:.3f} | {result[key]['cluster_recovery']:.3f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"turbulence_hog: Kolmogorov vs Burgers k-NN accuracy {result['tsne_map']['knn_accuracy']:.3f} in the t-SNE "
          f"map, {result['hog']['knn_accuracy']:.3f} in HOG space, {result['pixels']['knn_accuracy']:.3f} on raw pixels "
          f"(ARI {result['tsne_map']['cluster_recovery']:.3f} / {result['hog']['cluster_recovery']:.3f} / "
          f"{result['pixels']['cluster_recovery']:.3f}; map statistics k-NN {result['map_statistics']['knn_accuracy']:.3f}; chance {result['chance_knn_accuracy']:.3f}; "
          f"{result['scored_maps']} maps of {2 * args.per_class} runs); written to {out}, {out.with_suffix('.md')}, "
          f"{figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chemical tagging on SYNTHETIC stars: do t-SNE's two dimensions find the parent clusters of
stars from their abundances better than PCA's first two components?

    python -m experiments.bench.chemical_tagging [--clusters 8] [--stars 330] [--seeds 5]
                                                 [--perplexity 30] [--out-dir results/bench/chemical_tagging]

The stars are made up by `synthetic_stars` (no survey data is read): open clusters with their
own mean abundances, stars scattered about them. For generator seed 0 the table is written as
CSV and embedded through the command line (`python -m experiments.embed --table ...`), which
writes the figure and its scores; every seed in --seeds is scored the same way. Writes
OUT_DIR/stars_seed0.csv, stars_seed0_embedding.png/.json, and chemical_tagging.json and
chemical_tagging.md (k-NN accuracy and adjusted Rand index of t-SNE, PCA and the full
12-dimensional space, per seed and their mean), and prints one line per seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import embed

REPO = Path(__file__).resolve().parents[2]

# Twelve elements of an optical survey of FGK dwarfs (Gaia-ESO measures all of them): [Fe/H]
# and eleven ratios [X/Fe], grouped by the nucleosynthesis that makes them, which is why
# clusters differ in them together rather than one element at a time.
ELEMENTS = ("fe", "mg", "si", "ca", "ti", "na", "al", "ni", "cr", "mn", "ba", "y")
FAMILY = {"mg": "alpha", "si": "alpha", "ca": "alpha", "ti": "alpha", "na": "odd_z", "al": "odd_z",
          "ni": "iron_peak", "cr": "iron_peak", "mn": "iron_peak", "ba": "s_process", "y": "s_process"}
# Cluster-to-cluster spread [dex] of each family's common offset and of each element's own.
FAMILY_SPREAD = {"alpha": 0.04, "odd_z": 0.05, "iron_peak": 0.02, "s_process": 0.08}
ELEMENT_SPREAD = 0.02
FE_H_SPREAD = 0.10  # open clusters near the Sun: [Fe/H] within about +-0.2 dex
# Trends with [Fe/H] of the Galactic disc, d[X/Fe]/d[Fe/H]: alpha elements fall, Mn rises.
TREND = {"mg": -0.2, "si": -0.1, "ca": -0.15, "ti": -0.2, "mn": 0.2}
INTRINSIC_SCATTER = 0.02  # within one cluster [dex]
# Typical measurement error [dex] per element for a dwarf at moderate S/N.
MEASUREMENT_ERROR = {"fe": 0.03, "mg": 0.04, "si": 0.04, "ca": 0.04, "ti": 0.05, "na": 0.05, "al": 0.05,
                     "ni": 0.04, "cr": 0.05, "mn": 0.05, "ba": 0.05, "y": 0.05}


def column_name(element: str) -> str:
    """The table column of an element: fe_h for iron, x_fe for the others."""
    return "fe_h" if element == "fe" else f"{element}_fe"


def synthetic_stars(n_clusters: int = 8, n_stars: int = 330, n_elements: int = 12, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC abundances of main-sequence stars in open clusters (made up, not observed).

    Each cluster draws its mean [Fe/H] (spread 0.10 dex) and, per nucleosynthetic family
    (alpha: Mg Si Ca Ti; odd-Z: Na Al; iron peak: Ni Cr Mn; s-process: Ba Y), a common offset
    of [X/Fe] (spread 0.02-0.08 dex) plus each element's own (0.02 dex), on top of the disc's
    trends of [X/Fe] with [Fe/H]: cluster means differ by about 0.05-0.1 dex. Each star is its
    cluster's mean plus an intrinsic scatter (0.02 dex) and a measurement error of 0.03-0.05
    dex per element, scaled per star by a factor in [0.75, 1.5] (its signal-to-noise). Cluster
    sizes are a multinomial draw of `n_stars` (at least 5 stars each).

    Args:
        n_clusters: parent clusters, >= 2.
        n_stars: stars in all.
        n_elements: the first n of `ELEMENTS` (Fe, Mg, Si, Ca, Ti, Na, Al, Ni, Cr, Mn, Ba, Y).
        seed: the generator's seed.
    Returns:
        One row per star: `star` (an id), `cluster` (its parent, e.g. "OC03"), then `fe_h`
        and one `x_fe` column per further element, in dex.
    """
    if n_clusters < 2 or n_stars < 5 * n_clusters:
        raise ValueError(f"need n_clusters >= 2 and at least 5 stars per cluster, got {n_clusters} clusters "
                         f"for {n_stars} stars")
    if not 1 <= n_elements <= len(ELEMENTS):
        raise ValueError(f"n_elements must be in [1, {len(ELEMENTS)}], got {n_elements}")
    elements = ELEMENTS[:n_elements]
    rng = np.random.default_rng(seed)
    fe_h = rng.normal(0.0, FE_H_SPREAD, n_clusters)
    family_offset = {f: rng.normal(0.0, s, n_clusters) for f, s in FAMILY_SPREAD.items()}
    means = np.empty((n_clusters, n_elements))
    for j, element in enumerate(elements):
        if element == "fe":
            means[:, j] = fe_h
            continue
        means[:, j] = (TREND.get(element, 0.0) * fe_h + family_offset[FAMILY[element]]
                       + rng.normal(0.0, ELEMENT_SPREAD, n_clusters))
    extra = rng.multinomial(n_stars - 5 * n_clusters, rng.dirichlet(np.full(n_clusters, 5.0)))
    sizes = 5 + extra
    parent = np.repeat(np.arange(n_clusters), sizes)
    errors = np.array([MEASUREMENT_ERROR[e] for e in elements])
    snr_factor = rng.uniform(0.75, 1.5, (n_stars, 1))
    values = (means[parent] + rng.normal(0.0, INTRINSIC_SCATTER, (n_stars, n_elements))
              + rng.normal(0.0, 1.0, (n_stars, n_elements)) * errors * snr_factor)
    order = rng.permutation(n_stars)  # a survey lists stars by field position, not by cluster
    frame = pd.DataFrame(np.round(values[order], 3), columns=[column_name(e) for e in elements])
    frame.insert(0, "cluster", [f"OC{c + 1:02d}" for c in parent[order]])
    frame.insert(0, "star", [f"star{i + 1:04d}" for i in range(n_stars)])
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.chemical_tagging",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--stars", type=int, default=330)
    parser.add_argument("--elements", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=5, help="generator seeds 0 .. N-1")
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--out-dir", type=Path, default=REPO / "results" / "bench" / "chemical_tagging")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.seeds):
        stars = synthetic_stars(args.clusters, args.stars, args.elements, seed=seed)
        table = args.out_dir / f"stars_seed{seed}.csv"
        stars.to_csv(table, index=False)
        features = [c for c in stars.columns if c not in ("star", "cluster")]
        figure = args.out_dir / f"stars_seed{seed}_embedding.png"
        status = embed.main(["--table", str(table), "--features", *features, "--group", "cluster",
                             "--out", str(figure), "--perplexity", str(args.perplexity), "--seed", "0"])
        if status != 0:
            return status
        scores = json.loads(figure.with_suffix(".json").read_text())
        views = {"tsne": "tsne", "pca": "pca", "features": "feature_space"}
        rows.append({"seed": seed, **{f"{short}_{name}": scores[view][key] for short, view in views.items()
                                      for name, key in (("knn", "knn_accuracy"), ("ari", "cluster_recovery"))},
                     "chance_knn": scores["chance_knn_accuracy"]})
        if seed > 0:  # the CSVs and figures of seed 0 are the showcase; the others only give scores
            table.unlink()
            figure.unlink()
            figure.with_suffix(".json").unlink()
    per_seed = pd.DataFrame(rows)
    mean = per_seed.drop(columns="seed").mean()
    settings = {"clusters": args.clusters, "stars": args.stars, "elements": args.elements, "seeds": args.seeds,
                "perplexity": args.perplexity, "k": embed.KNN_K, "synthetic": True}
    out = args.out_dir / "chemical_tagging.json"
    out.write_text(json.dumps({"settings": settings, "mean": mean.to_dict(), "per_seed": rows}, indent=2) + "\n")
    lines = ["# Chemical tagging on SYNTHETIC open-cluster stars", "",
             f"{args.stars} stars, {args.clusters} clusters, {args.elements} abundances, generator seeds "
             f"0-{args.seeds - 1}; k-NN = leave-one-out {embed.KNN_K}-NN accuracy of the parent cluster, "
             "ARI = adjusted Rand index of k-means with as many clusters; `features` = the full standardised "
             "abundance space.", "",
             "| seed | t-SNE k-NN | t-SNE ARI | PCA k-NN | PCA ARI | features k-NN | features ARI | chance k-NN |",
             "|---|---|---|---|---|---|---|---|"]
    for r in [*rows, {"seed": "mean", **mean.to_dict()}]:
        lines.append(f"| {r['seed']} | {r['tsne_knn']:.3f} | {r['tsne_ari']:.3f} | {r['pca_knn']:.3f} | "
                     f"{r['pca_ari']:.3f} | {r['features_knn']:.3f} | {r['features_ari']:.3f} | {r['chance_knn']:.3f} |")
    (args.out_dir / "chemical_tagging.md").write_text("\n".join(lines) + "\n")
    print(f"chemical_tagging: mean over {args.seeds} seeds: t-SNE k-NN {mean.tsne_knn:.3f} ARI {mean.tsne_ari:.3f}, "
          f"PCA k-NN {mean.pca_knn:.3f} ARI {mean.pca_ari:.3f}, all features k-NN {mean.features_knn:.3f} "
          f"ARI {mean.features_ari:.3f}; written to {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

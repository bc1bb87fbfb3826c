"""Real clusters: train on the MOCCA models, predict observed clusters, compare with the paper.

A classifier trained on all models (or on the fallback-enabled ones) gives each observed
cluster a probability of hosting a BH subsystem (the committee's mean member probability)
and a class (probability > 1/2). Clusters of the Harris catalogue with all six features are
predicted with the six-feature classifier; those without a central velocity dispersion with
one trained on the other five.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pandas as pd

from alframe.learners import Committee, predict_mean
from simulators.mocca.data import DATA_DIR, FEATURES, VELOCITY_FEATURE, MoccaDataError, load_models
from simulators.mocca.harris import Clusters, read_harris
from simulators.mocca.learners import make_classifier

PAPER_PREDICTIONS = {True: DATA_DIR / "paper_predictions_harris.csv",
                     False: DATA_DIR / "paper_predictions_harris_novelocity.csv"}
PAPER_COLUMNS = {False: "BHS", True: "BHS (Fallback)"}


def feature_names(velocity_dispersion: bool) -> tuple[str, ...]:
    """The features used, in `FEATURES` order, with or without the velocity dispersion."""
    return tuple(n for n in FEATURES if velocity_dispersion or n != VELOCITY_FEATURE)


def train(classifier: str, *, fallback_only: bool = False, velocity_dispersion: bool = True, seed: int = 0,
          models_path: str | Path | None = None) -> Committee:
    """A classifier of `CLASSIFIERS` fitted on every model (or the fallback-enabled ones).

    Raises MoccaDataError when the models are all of one class: a classifier trained on them
    would answer that class for every cluster, whatever its features.
    """
    table = load_models(models_path, fallback_only=fallback_only, velocity_dispersion=velocity_dispersion)
    hosts = int(table.labels.sum())
    if hosts in (0, len(table)):
        raise MoccaDataError(f"{table.source}: all {len(table)} models {'host' if hosts else 'lack'} a BH subsystem; "
                             "a classifier needs models of both classes")
    return make_classifier(classifier).fit(table.features, table.labels, key=jax.random.key(seed))


def predict(committee: Committee, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability of a BH subsystem (n,), predicted class (n,) bool) for features (n, dim)."""
    probability = predict_mean(committee, np.asarray(features, dtype=np.float64))[:, 1]
    return probability, probability > 0.5


def paper_predictions(velocity_dispersion: bool) -> pd.DataFrame | None:
    """The source study's Harris predictions (name, BHS, BHS (Fallback)), or None if absent."""
    path = PAPER_PREDICTIONS[velocity_dispersion]
    if not path.exists():
        return None
    return pd.read_csv(path, usecols=["Cluster Name", *PAPER_COLUMNS.values()]).set_index("Cluster Name")


def harris_selection(clusters: Clusters, velocity_dispersion: bool) -> np.ndarray:
    """(n,) bool: clusters with all six features, or (without velocity) those lacking only it."""
    full = clusters.complete(FEATURES)
    return full if velocity_dispersion else clusters.complete(feature_names(False)) & ~full


def harris_predictions(classifier: str, *, velocity_dispersion: bool = True, seed: int = 0,
                       harris_path: str | Path | None = None, models_path: str | Path | None = None) -> pd.DataFrame:
    """Predictions for the Harris clusters, trained on all models and on the fallback ones.

    Returns one row per cluster: name, the features, probability, bhs, probability_fallback,
    bhs_fallback, and the paper's bhs / bhs_fallback where it lists the cluster (else NA).
    """
    clusters = read_harris(harris_path)
    names = feature_names(velocity_dispersion)
    chosen = harris_selection(clusters, velocity_dispersion)
    x = clusters.features[chosen][:, [FEATURES.index(n) for n in names]]
    table = pd.DataFrame(x, columns=list(names))
    table.insert(0, "name", np.array(clusters.names)[chosen])
    for fallback, suffix in ((False, ""), (True, "_fallback")):
        committee = train(classifier, fallback_only=fallback, velocity_dispersion=velocity_dispersion, seed=seed,
                          models_path=models_path)
        table[f"probability{suffix}"], table[f"bhs{suffix}"] = predict(committee, x)
    paper = paper_predictions(velocity_dispersion)
    for fallback, suffix in ((False, ""), (True, "_fallback")):
        values = paper[PAPER_COLUMNS[fallback]] if paper is not None else pd.Series(dtype="boolean")
        table[f"paper_bhs{suffix}"] = table["name"].map(values).astype("boolean")
    return table


def agreement(table: pd.DataFrame) -> dict[str, float]:
    """Share of the paper's clusters given the paper's class, trained on all and on fallback models."""
    out = {}
    for suffix in ("", "_fallback"):
        known = table[f"paper_bhs{suffix}"].notna()
        out[f"n_compared{suffix}"] = int(known.sum())
        same = table.loc[known, f"bhs{suffix}"] == table.loc[known, f"paper_bhs{suffix}"]
        out[f"agreement{suffix}"] = float(same.mean()) if known.any() else float("nan")
    return out


def talk_table(table: pd.DataFrame) -> str:
    """The predictions as a fixed-width table: cluster, P(BHS) and class for all and fallback
    models, the paper's classes, and `*` where a class differs from the paper's."""

    def mark(ours, paper) -> str:
        if pd.isna(paper):
            return "   "
        return "   " if bool(ours) == bool(paper) else "  *"

    def yes(v) -> str:
        return "-" if pd.isna(v) else ("BHS" if bool(v) else "no")

    lines = [f"{'cluster':<11} {'P(BHS)':>7} {'class':>5} {'paper':>5}    {'P(fb)':>7} {'class':>5} {'paper':>5}",
             "-" * 62]
    for r in table.itertuples(index=False):
        lines.append(f"{r.name:<11} {r.probability:7.3f} {yes(r.bhs):>5} {yes(r.paper_bhs):>5}"
                     f"{mark(r.bhs, r.paper_bhs)} {r.probability_fallback:7.3f} {yes(r.bhs_fallback):>5} "
                     f"{yes(r.paper_bhs_fallback):>5}{mark(r.bhs_fallback, r.paper_bhs_fallback)}")
    return "\n".join(lines)
